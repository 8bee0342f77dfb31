//! `codex` scenarios: Codex auth volume shards and their encrypted backups
//! (`spec/codex-shards.md`, `spec/codex-backups.md`; protocol §3.8).
//!
//! Each scenario gets a Transit mount and key of its own, shard records
//! under its own prefix, and a directory of the harness's (the store, the
//! volume, restore targets) outside the implementation's directories. The
//! volume holds a marker registered as a secret, so hygiene finds it in any
//! output or in the implementation's directories; the store is searched for
//! it here. Each backup's data key is unwrapped by the harness from the
//! file's header (`codex-backups.md` §2) and registered too.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use super::support::{Auth, Session, VAULT, session_hcl, verr};
use crate::backend::{KV_MOUNT, random_hex};
use crate::cx::Cx;
use crate::scenario::{BoxFuture, Level, Profile, Scenario};
use crate::verdict::{Failure, Verdict};
use vaultref::testing::relay::{Relay, Rendezvous};
use vaultref::testing::tls::loopback_server;

/// What a scenario's token may do with Transit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `datakey/plaintext` only.
    Writer,
    /// `datakey/plaintext`, `decrypt` and `rewrap`.
    All,
}

/// The scenario's Transit mount, record prefix and directories.
struct CodexRig {
    transit: String,
    prefix: String,
    dir: tempfile::TempDir,
    store: PathBuf,
}

impl CodexRig {
    async fn new(cx: &Cx) -> Result<CodexRig, Verdict> {
        let admin = &cx.vault()?.admin;
        let transit = cx.name("transit");
        admin
            .call(
                "POST",
                &format!("sys/mounts/{transit}"),
                Some(json!({"type": "transit"})),
            )
            .await
            .map_err(verr)?;
        admin
            .call("POST", &format!("{transit}/keys/codex"), None)
            .await
            .map_err(verr)?;
        // Named like the harness's other directories, so the stray-file
        // check (H5) leaves it alone: the volume's marker is here on purpose.
        let dir = tempfile::Builder::new()
            .prefix("vaultref-conf-codex-")
            .tempdir()
            .map_err(|e| Verdict::Error(format!("temp dir: {e}")))?;
        let store = dir.path().join("store");
        std::fs::create_dir(&store).map_err(|e| Verdict::Error(format!("store: {e}")))?;
        Ok(CodexRig {
            transit,
            prefix: format!("{}/codex/shards", cx.prefix()),
            dir,
            store,
        })
    }

    /// A process whose token has `role` on the key and the shard records.
    async fn session(&self, cx: &Cx, role: Role) -> Result<Session, Verdict> {
        self.session_via(cx, role, None).await
    }

    /// [`CodexRig::session`] reaching Vault through `relay` (a [`Relay`]'s
    /// address and the CA of its certificate, for HTTPS).
    async fn session_via(
        &self,
        cx: &Cx,
        role: Role,
        relay: Option<(&str, Option<&Path>)>,
    ) -> Result<Session, Verdict> {
        let t = &self.transit;
        let mut hcl = format!(
            "path \"{KV_MOUNT}/data/{}/*\" {{ capabilities = [\"create\", \"read\", \"update\"] }}\n\
             path \"{t}/datakey/plaintext/codex\" {{ capabilities = [\"update\"] }}\n",
            self.prefix
        );
        if role == Role::All {
            hcl.push_str(&format!(
                "path \"{t}/decrypt/codex\" {{ capabilities = [\"update\"] }}\n\
                 path \"{t}/rewrap/codex\" {{ capabilities = [\"update\"] }}\n"
            ));
        }
        let mut extra = json!({"codex": {
            "records": {"mount": KV_MOUNT, "prefix": self.prefix},
            "transit": {"mount": self.transit, "key": "codex"},
            "store": self.store,
        }});
        if let Some((addr, ca)) = relay {
            extra["vault_addr"] = json!(addr);
            if let Some(ca) = ca {
                extra["vault_ca_cert"] = json!(ca);
            }
        }
        session_hcl(cx, &hcl, Auth::Token { ttl: "10m" }, extra, &[]).await
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a volume at `name`: nested directories, modes, a link, an empty
    /// file, 3 MiB of data, and a marker (registered as a secret) in
    /// `auth.json`.
    fn volume(&self, cx: &Cx, name: &str) -> Result<PathBuf, Verdict> {
        let root = self.path(name);
        let marker = SecretString::from(format!("FAKE-CODEX-REFRESH-{}", random_hex(16)));
        cx.register(&marker);
        let io = |e: std::io::Error| Verdict::Error(format!("volume: {e}"));
        std::fs::create_dir_all(root.join("sessions/2026")).map_err(io)?;
        let auth = format!("{{\"refresh_token\": \"{}\"}}", marker.expose_secret());
        std::fs::write(root.join("auth.json"), auth).map_err(io)?;
        std::fs::set_permissions(
            root.join("auth.json"),
            std::fs::Permissions::from_mode(0o600),
        )
        .map_err(io)?;
        std::fs::write(root.join("config.toml"), "model = \"o3\"\n").map_err(io)?;
        std::fs::write(root.join("sessions/2026/empty.log"), "").map_err(io)?;
        let data: Vec<u8> = (0..3u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        std::fs::write(root.join("sessions/2026/rollout.jsonl"), data).map_err(io)?;
        std::fs::set_permissions(
            root.join("sessions/2026"),
            std::fs::Permissions::from_mode(0o750),
        )
        .map_err(io)?;
        std::os::unix::fs::symlink("../auth.json", root.join("sessions/current")).map_err(io)?;
        Ok(root)
    }

    /// The backup file `codex-backups.md` R1 names.
    fn backup_file(&self, shard: &str, version: u64) -> PathBuf {
        self.store
            .join(shard)
            .join(format!("backup-{version}.vrcb"))
    }

    /// Unwraps the data key of a backup file (its header, §2) and registers
    /// it in base64 and hex, so that hygiene looks for it everywhere.
    async fn register_data_key(&self, cx: &Cx, file: &Path) -> Result<(), Verdict> {
        let bytes = std::fs::read(file).map_err(|e| {
            fail(
                "codex-backups.md R1: backup N of shard S is <store>/S/backup-N.vrcb",
                "the backup file",
                format!("{}: {e}", file.display()),
            )
        })?;
        let header = parse_header(&bytes).ok_or_else(|| {
            fail(
                "codex-backups.md §2.1-2.2: magic, length, JSON header",
                "a backup file in the specified layout",
                "no `VRCXBAK1` header with a `wrapped_key`",
            )
        })?;
        let admin = &cx.vault()?.admin;
        let answer = admin
            .call(
                "POST",
                &format!("{}/decrypt/codex", self.transit),
                Some(json!({"ciphertext": header["wrapped_key"]})),
            )
            .await
            .map_err(|_| {
                fail(
                    "codex-backups.md B1: the wrapped key is Transit's ciphertext of the data key",
                    "a wrapped key Transit can unwrap",
                    "Transit refused it",
                )
            })?;
        let b64 = answer["data"]["plaintext"].as_str().unwrap_or_default();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap_or_default();
        cx.register(&SecretString::from(b64.to_owned()));
        cx.register(&SecretString::from(hex::encode(&raw)));
        Ok(())
    }
}

fn fail(spec: &str, expected: impl Into<String>, actual: impl Into<String>) -> Verdict {
    Verdict::Fail(Failure::new(spec, expected, actual))
}

fn parse_header(file: &[u8]) -> Option<Value> {
    if file.len() < 12 || &file[..8] != b"VRCXBAK1" {
        return None;
    }
    let len = u32::from_be_bytes(file[8..12].try_into().ok()?) as usize;
    let header: Value = serde_json::from_slice(file.get(12..12 + len)?).ok()?;
    header["wrapped_key"].is_string().then_some(header)
}

/// `reply` must be `outcome` (or `failed` with `code` when `outcome` is
/// `failed:<code>`).
fn expect(spec: &str, what: &str, reply: &Map<String, Value>, want: &str) -> Result<(), Verdict> {
    let outcome = reply.get("outcome").and_then(Value::as_str).unwrap_or("");
    let got = match outcome {
        "failed" => format!(
            "failed:{}",
            reply.get("code").and_then(Value::as_str).unwrap_or("")
        ),
        o => o.to_owned(),
    };
    if got == want {
        Ok(())
    } else {
        Err(fail(
            spec,
            format!("{what}: {want}"),
            format!("{what}: {got}"),
        ))
    }
}

async fn claim(s: &mut Session, shard: &str, worker: &str) -> Result<Map<String, Value>, Verdict> {
    Ok(s.iut
        .request(
            "codex_claim",
            json!({"shard": shard, "worker_id": worker, "ttl_ms": 600_000}),
        )
        .await?)
}

async fn backup(
    s: &mut Session,
    shard: &str,
    volume: &Path,
) -> Result<Map<String, Value>, Verdict> {
    Ok(s.iut
        .request(
            "codex_backup",
            json!({"shard": shard, "worker_id": "worker-a", "volume": volume}),
        )
        .await?)
}

async fn restore(s: &mut Session, shard: &str, to: &Path) -> Result<Map<String, Value>, Verdict> {
    Ok(s.iut
        .request(
            "codex_restore",
            json!({"shard": shard, "worker_id": "worker-a", "to": to}),
        )
        .await?)
}

/// Every entry under `root`: path -> (kind, permission bits, contents or link target).
fn tree(root: &Path) -> BTreeMap<PathBuf, (char, u32, Vec<u8>)> {
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, (char, u32, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
            return;
        };
        for e in entries.flatten() {
            let rel = rel.join(e.file_name());
            let p = root.join(&rel);
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_symlink() {
                let t = std::fs::read_link(&p).unwrap_or_default();
                out.insert(rel, ('l', 0, t.into_os_string().into_encoded_bytes()));
            } else if m.is_dir() {
                out.insert(rel.clone(), ('d', m.mode() & 0o777, Vec::new()));
                walk(root, &rel, out);
            } else {
                let data = std::fs::read(&p).unwrap_or_default();
                out.insert(rel, ('f', m.mode() & 0o777, data));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

/// The restored tree must equal the volume.
fn same_tree(spec: &str, volume: &Path, restored: &Path) -> Result<(), Verdict> {
    let (a, b) = (tree(volume), tree(restored));
    if a == b {
        return Ok(());
    }
    let differs = a
        .iter()
        .find(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, _)| k.display().to_string())
        .or_else(|| {
            b.keys()
                .find(|k| !a.contains_key(*k))
                .map(|k| k.display().to_string())
        })
        .unwrap_or_default();
    Err(fail(
        spec,
        "the restored tree equals the volume (kinds, permission bits, contents, link targets)",
        format!("`{differs}` differs"),
    ))
}

/// Whether any file under `root` holds `needle`.
fn holds(root: &Path, needle: &[u8]) -> Option<PathBuf> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => {
                    let data = std::fs::read(&p).unwrap_or_default();
                    if data.windows(needle.len()).any(|w| w == needle) {
                        return Some(p);
                    }
                }
                _ => {}
            }
        }
    }
    None
}

/// How long the relay of `codex.claim-race` holds one process's read of a
/// record for the other's: well under the default 5 s request timeout.
const RACE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// `codex.claim-race`: two processes claim each of 12 fresh shards at the
/// same moment; exactly one wins each, and the record names the winner.
///
/// Both reach Vault through a [`Relay`] that holds the first read of each
/// shard's record until both processes have sent theirs, and the answers
/// until Vault has answered both (each at most [`RACE_WAIT`]): without it,
/// a loaded machine often runs one claim to the end before the other reads,
/// and a claim without check-and-set passed by luck. A round whose reads
/// could not be lined up is an `error`, not a pass. An implementation that
/// writes without reading first is not held and races as it is.
async fn claim_race(cx: Cx) -> Result<Verdict, Verdict> {
    let spec = "codex-shards.md §2: every write is check-and-set; at most one worker owns a shard";
    let rig = CodexRig::new(&cx).await?;
    let vault = cx.vault()?;
    let tls = match &vault.ca_cert {
        Some(_) => {
            let dir = rig.path("relay-tls");
            std::fs::create_dir(&dir).map_err(|e| Verdict::Error(format!("relay TLS: {e}")))?;
            Some(loopback_server(&dir).map_err(|e| Verdict::Error(e.to_string()))?)
        }
        None => None,
    };
    let relay = Relay::start(
        vault.addr(),
        vault.ca_cert.as_deref(),
        tls.as_ref(),
        Rendezvous {
            prefix: format!("{KV_MOUNT}/data/{}/race-", rig.prefix),
            parties: 2,
            wait: RACE_WAIT,
        },
    )
    .map_err(|e| Verdict::Error(e.to_string()))?;
    let relay_url = relay.url();
    let via = Some((relay_url.as_str(), tls.as_ref().map(|t| t.ca.as_path())));
    let mut a = rig.session_via(&cx, Role::Writer, via).await?;
    let mut b = rig.session_via(&cx, Role::Writer, via).await?;
    let admin = &cx.vault()?.admin;
    for round in 0..12 {
        let shard = format!("race-{round}");
        let (ra, rb) = tokio::join!(
            claim(&mut a, &shard, "worker-a"),
            claim(&mut b, &shard, "worker-b")
        );
        let (ra, rb) = (ra?, rb?);
        let won =
            |r: &Map<String, Value>| r.get("outcome").and_then(Value::as_str) == Some("claimed");
        let winner = match (won(&ra), won(&rb)) {
            (true, false) => ("worker-a", &rb),
            (false, true) => ("worker-b", &ra),
            (true, true) => {
                return Ok(fail(
                    spec,
                    "exactly one of two concurrent claims succeeds",
                    format!("{shard}: both claimed it"),
                ));
            }
            (false, false) => {
                return Ok(fail(
                    spec,
                    "exactly one of two concurrent claims succeeds",
                    format!("{shard}: neither claimed it"),
                ));
            }
        };
        expect(
            spec,
            &format!("{shard}: the other claim"),
            winner.1,
            "failed:codex_shard_not_owned",
        )?;
        let rec = admin
            .call(
                "GET",
                &format!("{KV_MOUNT}/data/{}/{shard}", rig.prefix),
                None,
            )
            .await
            .map_err(verr)?;
        if rec["data"]["data"]["owner"].as_str() != Some(winner.0) {
            return Ok(fail(
                "codex-shards.md §1: the record names the owner",
                format!("{shard}: owner `{}`", winner.0),
                format!("{shard}: owner {}", rec["data"]["data"]["owner"]),
            ));
        }
    }
    if relay.short() > 0 {
        return Err(Verdict::Error(format!(
            "the two processes' reads of {} shard records did not both reach the relay \
             within {} s: those races were not run",
            relay.short(),
            RACE_WAIT.as_secs()
        )));
    }
    Ok(Verdict::Pass)
}

/// A rig, a process with `role`, a volume, shard `s1` claimed by
/// `worker-a` and backed up once: where every backup scenario starts.
async fn backed_up(
    cx: &Cx,
    role: Role,
    spec: &str,
) -> Result<(CodexRig, Session, PathBuf), Verdict> {
    let rig = CodexRig::new(cx).await?;
    let mut s = rig.session(cx, role).await?;
    let vol = rig.volume(cx, "vol")?;
    expect(
        spec,
        "claim",
        &claim(&mut s, "s1", "worker-a").await?,
        "claimed",
    )?;
    expect(
        spec,
        "backup",
        &backup(&mut s, "s1", &vol).await?,
        "backed_up",
    )?;
    Ok((rig, s, vol))
}

/// `codex.backup-round-trip`.
async fn round_trip(cx: Cx) -> Result<Verdict, Verdict> {
    let spec = "codex-backups.md §3, R1-R4: a backup restores the volume as it was";
    let (rig, mut s, vol) = backed_up(&cx, Role::All, spec).await?;
    let marker = std::fs::read(vol.join("auth.json")).unwrap_or_default();
    if let Some(p) = holds(&rig.store, &marker) {
        return Ok(fail(
            "codex-backups.md B1-B2: the volume is encrypted before it reaches the store",
            "no volume content in the store in the clear",
            format!("{} holds the volume's auth.json", p.display()),
        ));
    }
    rig.register_data_key(&cx, &rig.backup_file("s1", 1))
        .await?;
    let to = rig.path("restored");
    expect(
        spec,
        "restore",
        &restore(&mut s, "s1", &to).await?,
        "restored",
    )?;
    same_tree(spec, &vol, &to)?;
    Ok(Verdict::Pass)
}

/// `codex.backup-tampered`: one altered byte, then a cut file.
async fn tampered(cx: Cx) -> Result<Verdict, Verdict> {
    let spec =
        "codex-backups.md §2.3, R4: a backup that does not verify is refused, nothing written";
    let (rig, mut s, vol) = backed_up(&cx, Role::All, spec).await?;
    let file = rig.backup_file("s1", 1);
    let genuine = std::fs::read(&file).map_err(|e| {
        fail(
            "codex-backups.md R1: backup N of shard S is <store>/S/backup-N.vrcb",
            "the backup file",
            format!("{}: {e}", file.display()),
        )
    })?;
    let mut flipped = genuine.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x04;
    let cut = genuine[..genuine.len().saturating_sub(20)].to_vec();
    for (what, bytes) in [
        ("one byte altered", flipped),
        ("the last 20 bytes cut", cut),
    ] {
        std::fs::write(&file, &bytes).map_err(|e| Verdict::Error(format!("store: {e}")))?;
        let to = rig.path("t");
        expect(
            spec,
            what,
            &restore(&mut s, "s1", &to).await?,
            "failed:codex_backup_corrupt",
        )?;
        if to.exists() {
            return Ok(fail(
                spec,
                format!("{what}: nothing at the target"),
                "the target exists",
            ));
        }
    }
    std::fs::write(&file, &genuine).map_err(|e| Verdict::Error(format!("store: {e}")))?;
    let to = rig.path("restored");
    expect(
        spec,
        "the genuine file",
        &restore(&mut s, "s1", &to).await?,
        "restored",
    )?;
    same_tree(spec, &vol, &to)?;
    Ok(Verdict::Pass)
}

/// `codex.restore-after-rewrap`: rotate, rewrap, raise the minimum, restore.
async fn after_rewrap(cx: Cx) -> Result<Verdict, Verdict> {
    let spec =
        "codex-backups.md §5: after a rotation and a rewrap, min_decryption_version can be raised";
    let (rig, mut s, vol) = backed_up(&cx, Role::All, spec).await?;
    let admin = &cx.vault()?.admin;
    let key = format!("{}/keys/codex", rig.transit);
    admin
        .call("POST", &format!("{key}/rotate"), None)
        .await
        .map_err(verr)?;
    let r = s.iut.request("codex_rewrap", json!({})).await?;
    expect(spec, "rewrap", &r, "rewrapped")?;
    admin
        .call(
            "POST",
            &format!("{key}/config"),
            Some(json!({"min_decryption_version": 2})),
        )
        .await
        .map_err(verr)?;
    let to = rig.path("restored");
    expect(
        spec,
        "restore after the minimum was raised",
        &restore(&mut s, "s1", &to).await?,
        "restored",
    )?;
    same_tree(spec, &vol, &to)?;
    Ok(Verdict::Pass)
}

/// `codex.rewrap-locked`: while the harness holds the store's rewrap lock,
/// as another rewrap would, the implementation's rewrap waits: no reply and
/// no header rewritten while it is held; once it is released, the rewrap
/// is done. (An implementation that locked each file on its own, not the
/// store, would pass: the scenario sees only the store's lock.)
async fn rewrap_locked(cx: Cx) -> Result<Verdict, Verdict> {
    let spec = "codex-backups.md §5: a rewrap holds an exclusive flock on \
                <store>/.rewrap.lock, and a second rewrap waits for it";
    let (rig, mut s, _) = backed_up(&cx, Role::All, spec).await?;
    let admin = &cx.vault()?.admin;
    admin
        .call("POST", &format!("{}/keys/codex/rotate", rig.transit), None)
        .await
        .map_err(verr)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(rig.store.join(".rewrap.lock"))
        .map_err(|e| Verdict::Error(format!("the rewrap lock: {e}")))?;
    let flock = |op: libc::c_int| {
        use std::os::fd::AsRawFd;
        // SAFETY: `flock` on a descriptor owned by `lock`; no memory passes.
        unsafe { libc::flock(lock.as_raw_fd(), op) == 0 }
    };
    if !flock(libc::LOCK_EX | libc::LOCK_NB) {
        return Err(Verdict::Error(
            "the harness could not take the rewrap lock".into(),
        ));
    }
    let file = rig.backup_file("s1", 1);
    let version = || {
        std::fs::read(&file)
            .ok()
            .and_then(|b| parse_header(&b))
            .and_then(|h| h["key_version"].as_u64())
    };
    // No reply while the lock is held (a rewrap takes well under a second
    // here, so one that ignores the lock answers within it), and the header
    // unchanged at the end of the hold; then the lock is released and the
    // reply awaited.
    let hold = std::time::Duration::from_secs(3);
    let timeout = s.iut.timeout() + hold;
    let request = s
        .iut
        .request_with_timeout("codex_rewrap", json!({}), timeout);
    tokio::pin!(request);
    let early = tokio::select! {
        reply = &mut request => Some(reply),
        () = tokio::time::sleep(hold) => None,
    };
    let during = version();
    flock(libc::LOCK_UN);
    if early.is_some() || during != Some(1) {
        return Ok(fail(
            spec,
            "no reply and no header rewritten while another rewrap holds the lock",
            match early {
                Some(_) => "the rewrap answered while the lock was held".to_string(),
                None => format!("key version {during:?} in the backup's header"),
            },
        ));
    }
    let reply = request.await?;
    expect(
        spec,
        "rewrap once the lock was released",
        &reply,
        "rewrapped",
    )?;
    if version() != Some(2) {
        return Ok(fail(
            spec,
            "the header rewrapped by version 2 after the rewrap",
            format!("key version {:?}", version()),
        ));
    }
    Ok(Verdict::Pass)
}

/// `codex.writer-cannot-restore`.
async fn writer_only(cx: Cx) -> Result<Verdict, Verdict> {
    let spec =
        "codex-backups.md §6: a token allowed only datakey/plaintext backs up but cannot restore";
    let (rig, mut s, _) = backed_up(&cx, Role::Writer, spec).await?;
    let to = rig.path("restored");
    expect(
        spec,
        "restore",
        &restore(&mut s, "s1", &to).await?,
        "failed:vault_permission_denied",
    )?;
    if to.exists() {
        return Ok(fail(spec, "nothing at the target", "the target exists"));
    }
    Ok(Verdict::Pass)
}

type Body = fn(Cx) -> BoxFuture<Result<Verdict, Verdict>>;

/// Every `codex` scenario.
pub fn scenarios() -> Vec<Scenario> {
    let rows: [(&str, &str, &str, Body); 6] = [
        (
            "codex.claim-race",
            "codex-shards.md §2",
            "Two processes claim one shard at once: exactly one wins",
            |cx| Box::pin(claim_race(cx)),
        ),
        (
            "codex.backup-round-trip",
            "codex-backups.md §3-4",
            "A volume backed up and restored comes back as it was, never in the clear in the store",
            |cx| Box::pin(round_trip(cx)),
        ),
        (
            "codex.backup-tampered",
            "codex-backups.md §2.3",
            "An altered or cut backup is refused with codex_backup_corrupt, nothing written",
            |cx| Box::pin(tampered(cx)),
        ),
        (
            "codex.restore-after-rewrap",
            "codex-backups.md §5",
            "Rotate, rewrap, raise min_decryption_version: the backup still restores",
            |cx| Box::pin(after_rewrap(cx)),
        ),
        (
            "codex.rewrap-locked",
            "codex-backups.md §5",
            "A rewrap waits while the store's rewrap lock is held, and rewraps once it is released",
            |cx| Box::pin(rewrap_locked(cx)),
        ),
        (
            "codex.writer-cannot-restore",
            "codex-backups.md §6",
            "A writer-only token backs up but gets vault_permission_denied on restore",
            |cx| Box::pin(writer_only(cx)),
        ),
    ];
    rows.into_iter()
        .map(|(id, section, title, body)| {
            let run = Arc::new(move |cx: Cx| -> BoxFuture<Verdict> {
                Box::pin(async move {
                    match body(cx).await {
                        Ok(v) | Err(v) => v,
                    }
                })
            });
            Scenario::live(id, Profile::Codex, Level::Must, section, title, VAULT, run)
        })
        .collect()
}
