//! Codex volume backups (`spec/codex-backups.md`) against a real OpenBao with
//! Transit enabled by the test: round trip, the two policies, tampering of
//! every kind a store can suffer, rotation with rewrap, and hygiene.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{cli_env, transcript, vault};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use vaultref::ErrorCode;
use vaultref::testing::TestVault;
use vaultref::vault::{BackupInfo, ResolveError, Resolver, ShardStore, TransitKey};

const SHARDS: &str =
    r#"path "kv/data/moonmind/codex/shards/*" { capabilities = ["create", "read", "update"] }"#;
const WRITER: &str = r#"path "transit/datakey/plaintext/codex" { capabilities = ["update"] }"#;
const RESTORER: &str = r#"path "transit/decrypt/codex" { capabilities = ["update"] }"#;
const REWRAPPER: &str = r#"path "transit/rewrap/codex" { capabilities = ["update"] }"#;

/// Transit on, key `codex`, and the four policies (`spec/codex-backups.md` §5).
async fn setup(v: &TestVault) {
    let a = v.admin();
    a.call(
        "POST",
        "sys/mounts/transit",
        Some(json!({"type": "transit"})),
    )
    .await
    .unwrap();
    a.call(
        "POST",
        "transit/keys/codex",
        Some(json!({"type": "aes256-gcm96"})),
    )
    .await
    .unwrap();
    for (name, hcl) in [
        ("codex-shards", SHARDS),
        ("codex-writer", WRITER),
        ("codex-restorer", RESTORER),
        ("codex-rewrapper", REWRAPPER),
    ] {
        a.put_policy(name, hcl).await.unwrap();
    }
}

async fn token(v: &TestVault, policies: &[&str]) -> SecretString {
    v.admin().create_token(policies, "10m", true).await.unwrap()
}

async fn resolver(v: &TestVault, name: &str, policies: &[&str]) -> Resolver {
    let t = token(v, policies).await;
    Resolver::new(v.token_file_config(name, &t).unwrap())
        .await
        .unwrap()
}

/// A volume: nested directories, modes, a link, an empty file, and a file
/// of 2.5 chunks.
fn make_volume(root: &Path) {
    fs::create_dir_all(root.join("sessions/2026")).unwrap();
    fs::write(
        root.join("auth.json"),
        br#"{"fake_refresh_token": "FAKE-CODEX-AUTH-0001"}"#,
    )
    .unwrap();
    fs::set_permissions(root.join("auth.json"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(root.join("config.toml"), b"model = \"o3\"\n").unwrap();
    fs::set_permissions(root.join("config.toml"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::write(root.join("sessions/2026/empty.log"), b"").unwrap();
    let big: Vec<u8> = (0..(5u32 << 19))
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    fs::write(root.join("sessions/2026/rollout.jsonl"), big).unwrap();
    std::os::unix::fs::symlink("../auth.json", root.join("sessions/current")).unwrap();
    fs::set_permissions(
        root.join("sessions/2026"),
        fs::Permissions::from_mode(0o750),
    )
    .unwrap();
}

/// Every entry under `root`: path -> (kind, mode, contents or link target).
fn tree(root: &Path) -> BTreeMap<PathBuf, (char, u32, Vec<u8>)> {
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, (char, u32, Vec<u8>)>) {
        for e in fs::read_dir(root.join(rel)).unwrap() {
            let e = e.unwrap();
            let rel = rel.join(e.file_name());
            let p = root.join(&rel);
            let m = fs::symlink_metadata(&p).unwrap();
            let mode = m.mode() & 0o7777;
            if m.is_symlink() {
                let t = fs::read_link(&p).unwrap();
                out.insert(rel, ('l', 0, t.into_os_string().into_encoded_bytes()));
            } else if m.is_dir() {
                out.insert(rel.clone(), ('d', mode, Vec::new()));
                walk(root, &rel, out);
            } else {
                out.insert(rel, ('f', mode, fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

/// Names in `dir` (to see that nothing was left beside a failed restore).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The header of a backup file as JSON, and where its frames start.
fn header_of(file: &[u8]) -> (Value, usize) {
    assert_eq!(&file[..8], b"VRCXBAK1");
    let len = u32::from_be_bytes(file[8..12].try_into().unwrap()) as usize;
    (
        serde_json::from_slice(&file[12..12 + len]).unwrap(),
        12 + len,
    )
}

fn with_header(file: &[u8], header: &Value) -> Vec<u8> {
    let (_, start) = header_of(file);
    let json = serde_json::to_vec(header).unwrap();
    let mut out = b"VRCXBAK1".to_vec();
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&file[start..]);
    out
}

fn code(r: Result<impl Sized, ResolveError>) -> ErrorCode {
    match r {
        Ok(_) => panic!("must fail"),
        Err(e) => e.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_policies_and_tampering() {
    let v = vault().await;
    setup(&v).await;
    let (shards, transit) = (ShardStore::default(), TransitKey::default());
    let ttl = Duration::from_secs(600);
    let work = tempfile::tempdir().unwrap();
    let (vol, store) = (work.path().join("vol"), work.path().join("store"));
    make_volume(&vol);
    let writer = resolver(&v, "writer", &["codex-shards", "codex-writer"]).await;
    let restorer = resolver(&v, "restorer", &["codex-shards", "codex-restorer"]).await;

    // Only the owner backs up.
    assert_eq!(
        code(
            writer
                .codex_backup(&shards, &transit, &store, "s1", "w1", &vol)
                .await
        ),
        ErrorCode::CodexShardNotOwned
    );
    writer.shard_claim(&shards, "s1", "w1", ttl).await.unwrap();
    let b1 = writer
        .codex_backup(&shards, &transit, &store, "s1", "w1", &vol)
        .await
        .unwrap();
    assert_eq!((b1.version, b1.key.as_str()), (1, "s1/backup-1.vrcb"));
    assert_eq!((b1.files, b1.dirs, b1.links), (4, 2, 1));
    let file1 = fs::read(store.join(&b1.key)).unwrap();
    let (header, start) = header_of(&file1);
    assert_eq!(b1.size, (file1.len() - start) as u64);
    assert_eq!(header["shard"], "s1");
    assert!(
        header["wrapped_key"]
            .as_str()
            .unwrap()
            .starts_with("vault:v1:")
    );
    // The volume's bytes are not in the store in the clear.
    assert!(memchr::memmem::find(&file1, b"FAKE-CODEX-AUTH-0001").is_none());
    let rec = writer.shard_status(&shards, "s1").await.unwrap();
    let latest = &rec.data["latest_backup"];
    assert_eq!(
        (
            latest["key"].as_str(),
            latest["size"].as_u64(),
            latest["sha256"].as_str()
        ),
        (
            Some(b1.key.as_str()),
            Some(b1.size),
            Some(b1.sha256.as_str())
        )
    );
    assert_eq!(latest["transit_key_version"], 1);

    // The writer's policy cannot unwrap: it backs up but does not restore.
    let to = work.path().join("restored");
    assert_eq!(
        code(
            writer
                .codex_restore(&shards, &transit, &store, "s1", "w1", &to, None)
                .await
        ),
        ErrorCode::VaultPermissionDenied
    );
    assert!(!to.exists());
    // The restorer's can; the tree comes back as it was.
    let r1 = restorer
        .codex_restore(&shards, &transit, &store, "s1", "w1", &to, None)
        .await
        .unwrap();
    assert_eq!((r1.version, r1.sha256.as_str()), (1, b1.sha256.as_str()));
    assert_eq!(tree(&to), tree(&vol));
    // Never over an existing volume.
    assert_eq!(
        code(
            restorer
                .codex_restore(&shards, &transit, &store, "s1", "w1", &to, None)
                .await
        ),
        ErrorCode::ConfigInvalid
    );
    // Another worker's restore is refused before anything is read.
    assert_eq!(
        code(
            restorer
                .codex_restore(
                    &shards,
                    &transit,
                    &store,
                    "s1",
                    "w2",
                    &work.path().join("x"),
                    None
                )
                .await
        ),
        ErrorCode::CodexShardNotOwned
    );

    // A second backup; both versions restore.
    fs::write(vol.join("config.toml"), b"model = \"o4\"\n").unwrap();
    let b2 = writer
        .codex_backup(&shards, &transit, &store, "s1", "w1", &vol)
        .await
        .unwrap();
    assert_eq!(b2.version, 2);
    let old = work.path().join("old");
    restorer
        .codex_restore(&shards, &transit, &store, "s1", "w1", &old, Some(1))
        .await
        .unwrap();
    assert_eq!(
        fs::read(old.join("config.toml")).unwrap(),
        b"model = \"o3\"\n"
    );

    // Tampering. Each case is written over backup 2 and must be refused
    // with nothing at the target and nothing left beside it.
    let file2 = fs::read(store.join(&b2.key)).unwrap();
    let (h2, start2) = header_of(&file2);
    let mut flipped = file2.clone();
    flipped[start2 + 700_000] ^= 0x20;
    let truncated = file2[..file2.len() - 100].to_vec();
    let mut h_other = h2.clone();
    h_other["version"] = json!(1);
    let mut h_shard = h2.clone();
    h_shard["shard"] = json!("s2");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("an altered byte", flipped),
        ("a truncated file", truncated),
        ("backup 1 in backup 2's place", file1.clone()),
        (
            "backup 1 relabelled as 2",
            with_header(&file1, &{
                let (mut h1, _) = header_of(&file1);
                h1["version"] = json!(2);
                h1
            }),
        ),
        (
            "a header naming another version",
            with_header(&file2, &h_other),
        ),
        (
            "a header naming another shard",
            with_header(&file2, &h_shard),
        ),
        (
            "a wrapped key of another backup",
            with_header(&file2, &{
                let mut h = h2.clone();
                h["wrapped_key"] = header_of(&file1).0["wrapped_key"].clone();
                h
            }),
        ),
        ("garbage", b"VRCXBAK1\0\0\0\x02{}".to_vec()),
    ];
    for (what, bytes) in cases {
        fs::write(store.join(&b2.key), &bytes).unwrap();
        let to = work.path().join("t");
        let e = restorer
            .codex_restore(&shards, &transit, &store, "s1", "w1", &to, None)
            .await
            .expect_err(what);
        assert_eq!(e.code(), ErrorCode::CodexBackupCorrupt, "{what}: {e}");
        assert!(!to.exists(), "{what}");
        assert_eq!(
            names(work.path()),
            ["old", "restored", "store", "vol"],
            "{what}"
        );
    }
    // And the genuine file still restores.
    fs::write(store.join(&b2.key), &file2).unwrap();
    let now = work.path().join("now");
    restorer
        .codex_restore(&shards, &transit, &store, "s1", "w1", &now, None)
        .await
        .unwrap();
    assert_eq!(tree(&now), tree(&vol));

    // A backup of shard s1 put in shard s2's place does not restore as s2's.
    writer.shard_claim(&shards, "s2", "w1", ttl).await.unwrap();
    fs::create_dir_all(store.join("s2")).unwrap();
    let (mut h, _) = header_of(&file1);
    h["shard"] = json!("s2");
    fs::write(store.join("s2/backup-1.vrcb"), with_header(&file1, &h)).unwrap();
    let e = restorer
        .codex_restore(
            &shards,
            &transit,
            &store,
            "s2",
            "w1",
            &work.path().join("t"),
            Some(1),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::CodexBackupCorrupt, "{e}");
    assert!(e.message().contains("does not authenticate"), "{e}");
}

/// A rotation after one backup: shard `s1` claimed by `w1` and backed up
/// by a worker that may also restore, an operator that may only rewrap.
struct Rotated {
    v: TestVault,
    work: tempfile::TempDir,
    vol: PathBuf,
    store: PathBuf,
    shards: ShardStore,
    transit: TransitKey,
    worker: Resolver,
    operator: Resolver,
    b1: BackupInfo,
}

async fn backed_up_then_rotated() -> Rotated {
    let v = vault().await;
    setup(&v).await;
    let (shards, transit) = (ShardStore::default(), TransitKey::default());
    let work = tempfile::tempdir().unwrap();
    let (vol, store) = (work.path().join("vol"), work.path().join("store"));
    make_volume(&vol);
    let worker = resolver(&v, "w", &["codex-shards", "codex-writer", "codex-restorer"]).await;
    let operator = resolver(&v, "op", &["codex-rewrapper"]).await;
    worker
        .shard_claim(&shards, "s1", "w1", Duration::from_secs(600))
        .await
        .unwrap();
    let b1 = worker
        .codex_backup(&shards, &transit, &store, "s1", "w1", &vol)
        .await
        .unwrap();
    assert_eq!(b1.transit_key_version, 1);
    v.admin()
        .call("POST", "transit/keys/codex/rotate", None)
        .await
        .unwrap();
    Rotated {
        v,
        work,
        vol,
        store,
        shards,
        transit,
        worker,
        operator,
        b1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_rewrap_and_min_decryption_version() {
    let Rotated {
        v,
        work,
        vol,
        store,
        shards,
        transit,
        worker,
        operator,
        b1,
    } = backed_up_then_rotated().await;
    let a = v.admin();
    a.call(
        "POST",
        "transit/keys/codex/config",
        Some(json!({"min_decryption_version": 2})),
    )
    .await
    .unwrap();
    // Before the rewrap, version 1 of the key is gone for decryption.
    let e = worker
        .codex_restore(
            &shards,
            &transit,
            &store,
            "s1",
            "w1",
            &work.path().join("a"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::CodexBackupCorrupt, "{e}");
    assert!(e.message().contains("will not unwrap"), "{e}");
    // The rewrap needs the old version too: the minimum is raised after it.
    let e = operator
        .codex_rewrap(&transit, &store, None)
        .await
        .unwrap_err();
    assert!(e.message().contains("too old"), "{e}");
    let min = |n: u64| {
        a.call(
            "POST",
            "transit/keys/codex/config",
            Some(json!({"min_decryption_version": n})),
        )
    };
    min(1).await.unwrap();
    // The operator's token may only rewrap: it never sees a plaintext key.
    let report = operator.codex_rewrap(&transit, &store, None).await.unwrap();
    assert_eq!(
        (report.backups, report.rewrapped, report.min_key_version),
        (1, 1, 2)
    );
    min(2).await.unwrap();
    let again = operator.codex_rewrap(&transit, &store, None).await.unwrap();
    assert_eq!((again.backups, again.rewrapped), (1, 0));
    let file = fs::read(store.join(&b1.key)).unwrap();
    assert!(
        header_of(&file).0["wrapped_key"]
            .as_str()
            .unwrap()
            .starts_with("vault:v2:")
    );
    // The record's hash still holds: a rewrap does not touch the chunks.
    let to = work.path().join("b");
    let r = worker
        .codex_restore(&shards, &transit, &store, "s1", "w1", &to, None)
        .await
        .unwrap();
    assert_eq!((r.sha256, r.transit_key_version), (b1.sha256, 2));
    assert_eq!(tree(&to), tree(&vol));
    // The rewrapper cannot back up or restore.
    assert_eq!(
        code(
            operator
                .codex_restore(
                    &shards,
                    &transit,
                    &store,
                    "s1",
                    "w1",
                    &work.path().join("c"),
                    None
                )
                .await
        ),
        ErrorCode::VaultPermissionDenied
    );
}

/// Two rewraps of one store run one after the other, and rewraps and
/// backups exclude each other (spec §5): while another rewrap holds the
/// store's lock, a rewrap waits and changes no header; when it is released,
/// it goes on. A backup's shared lock holds a rewrap back too, and a
/// rewrap's holds a backup back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrap_waits_while_another_holds_the_store() {
    // The server and the directory live as long as the test.
    let Rotated {
        v: _v,
        work: _work,
        vol,
        store,
        shards,
        transit,
        worker,
        operator,
        b1,
    } = backed_up_then_rotated().await;
    // Another rewrap, as far as the lock can tell.
    let held = fs::File::create(store.join(vaultref::vault::REWRAP_LOCK)).unwrap();
    let flock = |op| {
        use std::os::fd::AsRawFd;
        // SAFETY: `flock` on a descriptor owned by `held`.
        assert_eq!(unsafe { libc::flock(held.as_raw_fd(), op) }, 0);
    };
    flock(libc::LOCK_EX);
    let (t, s) = (transit.clone(), store.clone());
    let waiting = tokio::spawn(async move {
        let r = operator.codex_rewrap(&t, &s, None).await;
        (r, operator)
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !waiting.is_finished(),
        "a rewrap ran while another held the store"
    );
    let version = || header_of(&fs::read(store.join(&b1.key)).unwrap()).0["key_version"].clone();
    assert_eq!(version(), json!(1));
    flock(libc::LOCK_UN);
    let (report, operator) = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the rewrap goes on once the lock is released")
        .unwrap();
    let report = report.unwrap();
    assert_eq!((report.rewrapped, report.min_key_version), (1, 2));
    assert_eq!(version(), json!(2));

    // A backup in progress holds the lock shared: a rewrap waits for it too.
    flock(libc::LOCK_SH);
    let (t, s) = (transit.clone(), store.clone());
    let waiting = tokio::spawn(async move {
        let r = operator.codex_rewrap(&t, &s, None).await;
        (r, operator)
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!waiting.is_finished(), "a rewrap ran during a backup");
    flock(libc::LOCK_UN);
    let (report, _) = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the rewrap goes on once the backup is done")
        .unwrap();
    assert_eq!(report.unwrap().backups, 1);

    // And a backup waits while a rewrap holds it.
    flock(libc::LOCK_EX);
    let (t, s, vol) = (transit.clone(), store.clone(), vol.clone());
    let backing_up =
        tokio::spawn(async move { worker.codex_backup(&shards, &t, &s, "s1", "w1", &vol).await });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!backing_up.is_finished(), "a backup ran during a rewrap");
    flock(libc::LOCK_UN);
    let b2 = tokio::time::timeout(Duration::from_secs(30), backing_up)
        .await
        .expect("the backup goes on once the rewrap is done")
        .unwrap()
        .unwrap();
    assert_eq!((b2.version, b2.transit_key_version), (2, 2));
}

/// `vaultref codex backup|restore|rewrap` as an operator runs them: exit
/// codes, and no volume content, data key or token in the output, in TMPDIR
/// or in the store; a volume holding the worker's token is not backed up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_backs_up_and_restores_without_leaving_traces() {
    let v = vault().await;
    setup(&v).await;
    let t = token(
        &v,
        &[
            "codex-shards",
            "codex-writer",
            "codex-restorer",
            "codex-rewrapper",
        ],
    )
    .await;
    let file = v.write_file("cli-token", t.expose_secret()).unwrap();
    let file = file.to_string_lossy().into_owned();
    let work = tempfile::tempdir().unwrap();
    let tmp = work.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let (vol, store) = (work.path().join("vol"), work.path().join("store"));
    make_volume(&vol);
    let tmp_s = tmp.to_string_lossy().into_owned();
    let env = [
        ("VAULT_ADDR", v.addr()),
        ("VAULT_AUTH_METHOD", "token"),
        ("VAULT_TOKEN_FILE", file.as_str()),
        ("VAULT_TOKEN", ""),
        ("TMPDIR", tmp_s.as_str()),
    ];
    let mut outputs = String::new();
    let mut run = |args: &[&str]| {
        let out = cli_env(args, "", &env);
        let text = transcript(&out);
        outputs.push_str(&text);
        (out.status.code(), text)
    };
    let p = |p: &Path| p.to_string_lossy().into_owned();
    let (vol_s, store_s) = (p(&vol), p(&store));
    assert_eq!(
        run(&["codex", "claim", "--shard", "s1", "--worker-id", "w1"]).0,
        Some(0)
    );
    let (code, text) = run(&[
        "codex",
        "backup",
        "--shard",
        "s1",
        "--worker-id",
        "w1",
        "--volume",
        &vol_s,
        "--store",
        &store_s,
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(
            "backup: shard `s1` backup 1 (s1/backup-1.vrcb): 4 files, 2 directories, 1 links"
        ),
        "{text}"
    );
    let to = p(&work.path().join("restored"));
    let (code, text) = run(&[
        "codex",
        "restore",
        "--shard",
        "s1",
        "--worker-id",
        "w1",
        "--to",
        &to,
        "--store",
        &store_s,
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON line");
    let info: Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        (info["version"].as_u64(), info["files"].as_u64()),
        (Some(1), Some(4))
    );
    assert_eq!(tree(Path::new(&to)), tree(&vol));
    let (code, text) = run(&["codex", "rewrap", "--store", &store_s]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(
            "rewrap: 1 backups, 0 rewrapped; every data key is wrapped by key version 1 or later"
        ),
        "{text}"
    );

    // A tampered backup: exit 1 with the code.
    let bk = store.join("s1/backup-1.vrcb");
    let mut bytes = fs::read(&bk).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&bk, &bytes).unwrap();
    let (code, text) = run(&[
        "codex",
        "restore",
        "--shard",
        "s1",
        "--worker-id",
        "w1",
        "--to",
        &p(&work.path().join("t")),
        "--store",
        &store_s,
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "error[codex_backup_corrupt]: backup s1/backup-1.vrcb of shard `s1` does not verify"
        ),
        "{text}"
    );
    bytes[last] ^= 1;
    fs::write(&bk, &bytes).unwrap();

    // A volume holding the worker's token (a token file put inside it).
    fs::write(vol.join("vault-token"), format!("{}\n", t.expose_secret())).unwrap();
    let (code, text) = run(&[
        "codex",
        "backup",
        "--shard",
        "s1",
        "--worker-id",
        "w1",
        "--volume",
        &vol_s,
        "--store",
        &store_s,
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("error[config_invalid]") && text.contains("holds the worker's Vault token"),
        "{text}"
    );
    assert_eq!(
        names(&store.join("s1")),
        ["backup-1.vrcb"],
        "nothing else stored"
    );
    // Usage.
    assert_eq!(run(&["codex", "backup", "--shard", "s1"]).0, Some(2));

    // No trace: the data key (as Transit unwraps it for root), the volume's
    // secret, the token: not in any output, not in TMPDIR (empty), and the
    // store holds neither the volume's secret nor the token in the clear.
    let h = header_of(&bytes).0;
    let plain = v
        .admin()
        .call(
            "POST",
            "transit/decrypt/codex",
            Some(json!({"ciphertext": h["wrapped_key"]})),
        )
        .await
        .unwrap()["data"]["plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_hex = hex::encode(base64_decode(&plain));
    for needle in [
        plain.as_str(),
        key_hex.as_str(),
        "FAKE-CODEX-AUTH-0001",
        t.expose_secret(),
    ] {
        assert!(!outputs.contains(needle), "a secret is in the CLI's output");
    }
    assert!(names(&tmp).is_empty(), "TMPDIR holds {:?}", names(&tmp));
    for needle in ["FAKE-CODEX-AUTH-0001", t.expose_secret()] {
        assert!(memchr::memmem::find(&bytes, needle.as_bytes()).is_none());
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
