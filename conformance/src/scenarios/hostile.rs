//! `hostile` scenarios: no credential leaves when the Vault address answers
//! like an adversary, when a job names a foreign git host, or when a token
//! is pasted where a ref belongs (`spec/resolver.md` S6, G10; `protocol.md`
//! §6).
//!
//! The Vault-facing scenarios talk to `vaultref::testing::hostile`'s fake
//! server, not to OpenBao: the hostility is the scenario. Its answers are
//! chosen per path (a `307` towards a [`Catcher`], a huge or endlessly
//! dripping body, malformed JSON), and the catcher records every byte that
//! reaches it. The foreign-host scenario uses the real Vault and two real git
//! servers.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use vaultref::testing::git_server::GitServer;
use vaultref::testing::hostile::{Answer, Catcher, HostileVault};

use super::rig::{
    REPO, describe as describe_job, expect_action_pushed, job, outcome, put_token, rig, run_job,
    run_job_with_action,
};
use super::support::{AUDIT, Session, and, expect_code, expect_no_vault_request, resolve, verr};
use crate::backend::{APPROLE_MOUNT, KV_MOUNT, random_hex};
use crate::cx::Cx;
use crate::live_scenario;
use crate::scenario::{Level, Needs, Profile, Scenario};
use crate::verdict::{Failure, Verdict};

/// How long a hostile answer may hold a `resolve` (the IUT's own request
/// timeout, configured at 2 s, plus slack).
const ANSWER_BOUND: Duration = Duration::from_secs(10);

/// The most an IUT may grow (peak RSS, `VmHWM`) while a 256 MiB answer is
/// thrown at it.
const MEMORY_BOUND_KIB: u64 = 128 * 1024;

const HUGE: usize = 256 << 20;

pub(crate) fn login_ok(token: &SecretString) -> Answer {
    Answer::Json(
        200,
        format!(
            r#"{{"auth":{{"client_token":"{}","lease_duration":3600,"renewable":true}}}}"#,
            token.expose_secret()
        ),
    )
}

/// An IUT configured for AppRole at `addr` (the hostile server), with fake
/// credential files; role id, secret id and the token the server will issue
/// are registered as secrets.
pub(crate) async fn front_session(cx: &Cx, addr: &str) -> Result<Session, Verdict> {
    let dirs = cx.dirs()?;
    let role_id = SecretString::from(format!("role-FAKE-{}", random_hex(8)));
    let secret_id = SecretString::from(format!("secret-FAKE-{}", random_hex(8)));
    cx.register(&role_id);
    cx.register(&secret_id);
    let rf = cx.write_secret_file(&dirs, "role_id", &role_id)?;
    let sf = cx.write_secret_file(&dirs, "secret_id", &secret_id)?;
    let key = random_hex(32);
    let mut iut = cx.start_iut(&dirs).await?;
    let reply = iut
        .request(
            "configure",
            json!({
                "vault": {"addr": addr, "timeout_ms": 2000,
                          "auth": {"method": "approle", "mount": APPROLE_MOUNT,
                                   "role_id_file": rf, "secret_id_file": sf}},
                "fingerprint_key": key,
                "work_dir": dirs.work,
                "temp_dir": dirs.tmp,
                "worker_id": "executor-01",
            }),
        )
        .await?;
    if reply.get("outcome").and_then(Value::as_str) != Some("configured") {
        return Err(Verdict::Fail(Failure::new(
            "protocol.md §3.2: valid settings are accepted",
            "outcome configured",
            format!("outcome {}", reply.get("outcome").unwrap_or(&Value::Null)),
        )));
    }
    Ok(Session {
        iut,
        key: hex::decode(key).expect("hex"),
        dirs,
    })
}

/// Nothing reached the catcher (checked after the IUT shut down, so a
/// revocation at exit counts too).
fn expect_nothing_caught(catcher: &Catcher, what: &str) -> Verdict {
    std::thread::sleep(Duration::from_millis(200));
    if catcher.connections() == 0 {
        Verdict::Pass
    } else {
        Verdict::Fail(Failure::new(
            "resolver.md S6: a redirect is never followed to an address outside the configured Vault",
            format!("no connection to the redirect target ({what})"),
            format!(
                "{} connection(s), {} byte(s) sent to the redirect target",
                catcher.connections(),
                catcher.received().len()
            ),
        ))
    }
}

/// `resolve` answered in time with `vault_unavailable`.
pub(crate) async fn expect_unavailable_in_time(
    s: &mut Session,
    reference: &str,
    spec: &str,
) -> Result<Verdict, Verdict> {
    let t = Instant::now();
    let r = resolve(s, reference, "job-hostile", None).await?;
    let took = t.elapsed();
    let v = expect_code(spec, &r, "vault_unavailable");
    if v != Verdict::Pass {
        return Ok(v);
    }
    Ok(if took > ANSWER_BOUND {
        Verdict::Fail(Failure::new(
            spec,
            format!("an answer within {} s", ANSWER_BOUND.as_secs()),
            format!("{:.1} s", took.as_secs_f32()),
        ))
    } else {
        Verdict::Pass
    })
}

/// Every `hostile` scenario.
pub fn scenarios() -> Vec<Scenario> {
    let none = Needs::default();
    vec![
        Scenario::live(
            "hostile.redirect-login",
            Profile::Hostile,
            Level::Must,
            "resolver.md S6 (redirects)",
            "A 307 on the AppRole login: the role id and secret id go nowhere else",
            none,
            live_scenario!(cx, {
                let (v, _, catcher, _) = against_front(
                    &cx,
                    "resolver.md S6: a redirected login is vault_unavailable",
                    |away, _| vec![(login_path(), away(&login_path()))],
                )
                .await?;
                Ok(and(v, expect_nothing_caught(&catcher, "login")))
            }),
        ),
        Scenario::live(
            "hostile.redirect-token",
            Profile::Hostile,
            Level::Must,
            "resolver.md S6 (redirects)",
            "307s on the KV read, lookup, renew and revoke: the token goes nowhere else",
            none,
            live_scenario!(cx, {
                let (v, _, catcher, _) = against_front(
                    &cx,
                    "resolver.md S6: a redirected read is vault_unavailable",
                    |away, token| {
                        let mut answers = vec![(login_path(), login_ok(token))];
                        for p in [
                            "kv/data/app",
                            "auth/token/lookup-self",
                            "auth/token/renew-self",
                            "auth/token/revoke-self",
                        ] {
                            answers.push((p.to_string(), away(p)));
                        }
                        answers
                    },
                )
                .await?;
                Ok(and(
                    v,
                    expect_nothing_caught(&catcher, "read, renew, revoke"),
                ))
            }),
        ),
        Scenario::live(
            "hostile.slow-drip",
            Profile::Hostile,
            Level::Must,
            "resolver.md S6, V6 (bounded requests)",
            "A KV answer that drips one byte every 100 ms: vault_unavailable in time",
            none,
            live_scenario!(cx, {
                body_scenario(&cx, Answer::Drip(Duration::from_millis(100))).await
            }),
        ),
        Scenario::live(
            "hostile.huge-body",
            Profile::Hostile,
            Level::Must,
            "resolver.md S6 (bounded answers)",
            "A 256 MiB KV answer: vault_unavailable, and the IUT's memory stays under 128 MiB",
            none,
            live_scenario!(cx, { body_scenario(&cx, Answer::Huge(HUGE)).await }),
        ),
        Scenario::live(
            "hostile.bad-json",
            Profile::Hostile,
            Level::Must,
            "resolver.md V3 (200 that is not a JSON object)",
            "A 200 whose body is not JSON: vault_unavailable, not secret_not_found",
            none,
            live_scenario!(cx, {
                body_scenario(&cx, Answer::Json(200, "{\"data\": not json".into())).await
            }),
        ),
        Scenario::live(
            "hostile.token-as-ref",
            Profile::Hostile,
            Level::Must,
            "protocol.md §6 H2; errors.md (messages carry no secret)",
            "Tokens where a ref or a member name belongs: no reply or output repeats them",
            none,
            live_scenario!(cx, { token_as_ref(&cx).await }),
        ),
        Scenario::live(
            "hostile.tls-untrusted",
            Profile::Hostile,
            Level::Must,
            "resolver.md S6 (TLS trust only from vaultref's settings)",
            "A server whose certificate is from another CA, with VAULT_SKIP_VERIFY=1 and friends in the environment: no credential is sent",
            none,
            live_scenario!(cx, { tls_untrusted(&cx).await }),
        ),
        Scenario::live(
            "hostile.escaped-action",
            Profile::Hostile,
            Level::Must,
            "resolver.md W9 (an action cannot outlive itself)",
            "The job action starts a setsid scraper of every process's environment: it dies with the action and gets no token",
            crate::scenarios::support::VAULT,
            live_scenario!(cx, { escaped_action(&cx).await }),
        ),
        Scenario::live(
            "hostile.action-reads-worker-files",
            Profile::Hostile,
            Level::Must,
            "resolver.md W9 (an action cannot read the worker's files)",
            "The job action reads every file under the implementation's directories: it gets no token",
            crate::scenarios::support::VAULT,
            live_scenario!(cx, { action_reads_worker_files(&cx).await }),
        ),
        Scenario::live(
            "hostile.foreign-host",
            Profile::Hostile,
            Level::Must,
            "resolver.md G10",
            "A job on another git host with this host's ref, and a document bound to another host: nothing is sent",
            AUDIT,
            live_scenario!(cx, { foreign_host(&cx).await }),
        ),
    ]
}

/// The login path the harness configures (`auth/vc-approle/login`).
pub(crate) fn login_path() -> String {
    format!("auth/{APPROLE_MOUNT}/login")
}

/// An IUT configured for AppRole at a hostile front whose answers are
/// `answers(away, token)`: `away(path)` is a `307` to that path on a
/// catcher, `token` the token the front issues at login. Resolves once,
/// reads the IUT's peak memory, shuts it down; returns the verdict of the
/// resolution (`vault_unavailable` in time), the peak, the catcher, and how
/// many times the KV path was requested.
async fn against_front(
    cx: &Cx,
    spec: &str,
    answers: impl FnOnce(&dyn Fn(&str) -> Answer, &SecretString) -> Vec<(String, Answer)>,
) -> Result<(Verdict, Option<u64>, Catcher, usize), Verdict> {
    let catcher = Catcher::start().map_err(verr)?;
    let token = cx.fake_token();
    let away = |p: &str| Answer::Redirect(format!("{}/v1/{p}", catcher.url()));
    let answers = answers(&away, &token);
    let table: Vec<(&str, Answer)> = answers
        .iter()
        .map(|(p, a)| (p.as_str(), a.clone()))
        .collect();
    let front = HostileVault::start(&table).map_err(verr)?;
    let mut s = front_session(cx, &front.url()).await?;
    let v = expect_unavailable_in_time(&mut s, "vault://kv/app#token", spec).await?;
    let peak = s.iut.peak_rss_kib();
    let _ = s.iut.shutdown().await;
    let reads = front
        .requests()
        .iter()
        .filter(|(_, p)| p.contains("kv/data/app"))
        .count();
    Ok((v, peak, catcher, reads))
}

/// Login works; the KV read is answered with `body`: `vault_unavailable` in
/// time, bounded memory, and one read (V6: no retry).
async fn body_scenario(cx: &Cx, body: Answer) -> Result<Verdict, Verdict> {
    let (v, peak, _, reads) = against_front(
        cx,
        "resolver.md S6: an unusable answer is vault_unavailable, in time",
        |_, token| {
            vec![
                (login_path(), login_ok(token)),
                ("kv/data/app".into(), body),
            ]
        },
    )
    .await?;
    let bounded = match peak {
        Some(kib) if kib > MEMORY_BOUND_KIB => Verdict::Fail(Failure::new(
            "resolver.md S6: an answer is bounded (the reference reads at most 4 MiB)",
            format!("peak memory under {} MiB", MEMORY_BOUND_KIB / 1024),
            format!("{} MiB", kib / 1024),
        )),
        _ => Verdict::Pass,
    };
    let once = if reads == 1 {
        Verdict::Pass
    } else {
        Verdict::Fail(Failure::new(
            "resolver.md V6: a resolution MUST NOT retry on vault_unavailable",
            "one read of kv/data/app",
            format!("{reads} reads"),
        ))
    };
    Ok(and(v, and(bounded, once)))
}

async fn token_as_ref(cx: &Cx) -> Result<Verdict, Verdict> {
    let dirs = cx.dirs()?;
    let mut iut = cx.start_iut(&dirs).await?;
    let t = cx.fake_token();
    let t = t.expose_secret();
    let refs = [
        json!({"input": t}),
        json!({"input": format!("vault://kv/{t}#f x")}),
        json!({"input": format!("vault://{t}/a#f")}),
        json!({"input": format!("vault://kv/a/{t}#f"),
               "policy": {"scopes": ["other/{repository}"]},
               "context": {"repository": "Acme/Api"}}),
        json!({"input": format!("{t}://kv/a#f")}),
    ];
    let job = |payload: Value| json!({"job": {"type": "codex_exec", "payload": payload}});
    let payloads = [
        job(json!({"repository": "Acme/Api", "instruction": format!("use {t}")})),
        job(json!({"repository": t, "instruction": "x"})),
        job(
            json!({"repository": "Acme/Api", "instruction": "x", format!("{t}AuthRef"): "vault://kv/a#f"}),
        ),
        job(
            json!({"repository": "Acme/Api", "instruction": "x", "repoAuthRef": format!("vault://kv/{t} #f")}),
        ),
        job(json!({"repository": "Acme/Api", "instruction": "x", t: {"a": 1}})),
    ];
    for (op, requests) in [("check_ref", &refs[..]), ("check_payload", &payloads[..])] {
        for req in requests {
            // Any reply is fine; the run's hygiene check reads every byte.
            let _: Result<Map<String, Value>, _> = iut.request(op, req.clone()).await;
        }
    }
    let _ = iut.shutdown().await;
    // The verdict on leaks is the scenario's hygiene check (H1/H2) over this
    // process's stdout (the replies) and stderr, with the planted tokens.
    Ok(Verdict::Pass)
}

async fn foreign_host(cx: &Cx) -> Result<Verdict, Verdict> {
    let spec = "resolver.md G10: a credential is used only for its host";
    let token = cx.fake_token();
    let r = put_token(cx, "github", &token).await?;
    let mut rig = rig(cx, None, None).await?;
    rig.git.set_tokens(REPO, &token);
    let other = GitServer::start().map_err(|e| Verdict::Error(format!("git server: {e}")))?;
    other
        .create_repo(REPO)
        .map_err(|e| Verdict::Error(format!("git server: {e}")))?;
    other.set_tokens(REPO, &token);
    // 1. The same slug on another host, with this host's ref.
    let mut foreign = job(Some(&r), None, false);
    foreign["payload"]["repository"] = json!(format!("https://{}/{REPO}", other.addr()));
    let reply = run_job(&mut rig.s, "job-foreign-1", foreign).await?;
    let refused = if outcome(&reply) == ("failed", "git_host_not_allowed") {
        Verdict::Pass
    } else {
        Verdict::Fail(Failure::new(
            spec,
            "failed with code \"git_host_not_allowed\", before any Vault request",
            describe_job(&reply),
        ))
    };
    let no_read = expect_no_vault_request(
        cx,
        "resolver.md G10: a job on a foreign host is refused before any Vault request",
    );
    let untouched = if other.requests().is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(Failure::new(
            spec,
            "no request to the foreign git server",
            format!("{} request(s) reached it", other.requests().len()),
        ))
    };
    // 2. A document bound to another host, for a job on this host.
    let path = format!("{}/repos/{REPO}/bound", cx.prefix());
    cx.vault()?
        .admin
        .kv_put(
            KV_MOUNT,
            &path,
            &[
                ("token", &token),
                ("host", &SecretString::from(other.addr().to_string())),
            ],
        )
        .await
        .map_err(verr)?;
    let before = rig.git.requests().len();
    let reply = run_job(
        &mut rig.s,
        "job-foreign-2",
        job(
            Some(&format!("vault://{KV_MOUNT}/{path}#token")),
            None,
            false,
        ),
    )
    .await?;
    let bound = if outcome(&reply) == ("failed", "git_host_not_allowed")
        && rig.git.requests().len() == before
    {
        Verdict::Pass
    } else {
        Verdict::Fail(Failure::new(
            spec,
            "failed with code \"git_host_not_allowed\", no git request",
            format!(
                "{}; {} git request(s)",
                describe_job(&reply),
                rig.git.requests().len() - before
            ),
        ))
    };
    let _ = rig.s.iut.shutdown().await;
    Ok(and(and(refused, no_read), and(untouched, bound)))
}

/// The variables other Vault clients read to weaken TLS, all set at once.
const TLS_ENV: &[(&str, &str)] = &[
    ("VAULT_SKIP_VERIFY", "1"),
    ("VAULT_CAPATH", "/etc/ssl/certs"),
    ("VAULT_TLS_SERVER_NAME", "vault.example"),
];

async fn tls_untrusted(cx: &Cx) -> Result<Verdict, Verdict> {
    use crate::backend::BackendSpec;
    let binary = match &cx.env.backend {
        BackendSpec::Process { binary, .. }
        | BackendSpec::Container {
            binary: Some(binary),
            ..
        } => binary,
        _ => {
            return Ok(Verdict::Skip(
                "needs a local `bao` binary (process backend, or container backend with the \
                 local image): the scenario starts TLS servers of its own"
                    .into(),
            ));
        }
    };
    let spec = "resolver.md S6: TLS trust comes only from vaultref's settings";
    let start = || vaultref::testing::TestVault::dev_tls_with_binary(binary);
    let (server, other) = (start().await.map_err(verr)?, start().await.map_err(verr)?);
    let admin = server.admin();
    admin
        .ensure_auth(APPROLE_MOUNT, "approle")
        .await
        .map_err(verr)?;
    let role = cx.name("role");
    let role_id = admin
        .approle_role(APPROLE_MOUNT, &role, &["default"], "10m", "20m")
        .await
        .map_err(verr)?;
    let secret_id = admin
        .approle_secret_id(APPROLE_MOUNT, &role)
        .await
        .map_err(verr)?;
    cx.register(&secret_id);
    let dirs = cx.dirs()?;
    let rf = cx.write_secret_file(&dirs, "role_id", &SecretString::from(role_id))?;
    let sf = cx.write_secret_file(&dirs, "secret_id", &secret_id)?;
    // The CA given is another server's: this server cannot be trusted.
    let ca = dirs.creds.join("other-ca.pem");
    std::fs::copy(other.ca_cert().expect("a TLS server"), &ca)
        .map_err(|e| Verdict::Error(format!("CA file: {e}")))?;
    let env: Vec<(String, std::ffi::OsString)> = TLS_ENV
        .iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect();
    let mut iut = cx.start_iut_env(&dirs, &env).await?;
    let reply = iut
        .request(
            "configure",
            json!({
                "vault": {"addr": server.addr(), "ca_cert": ca, "timeout_ms": 2000,
                          "auth": {"method": "approle", "mount": APPROLE_MOUNT,
                                   "role_id_file": rf, "secret_id_file": sf}},
                "fingerprint_key": random_hex(32),
                "work_dir": dirs.work,
                "temp_dir": dirs.tmp,
            }),
        )
        .await?;
    let mut verdict = Verdict::Pass;
    if reply.get("outcome").and_then(Value::as_str) == Some("configured") {
        // Accepted the settings: the resolution must fail without a login.
        let r = iut
            .request(
                "resolve",
                json!({"ref": "vault://kv/app#token", "job_id": "job-untrusted"}),
            )
            .await?;
        if r.get("outcome").and_then(Value::as_str) != Some("failed") {
            verdict = Verdict::Fail(Failure::new(
                spec,
                "the resolution fails (the certificate is not trusted)",
                "resolved",
            ));
        }
    }
    let _ = iut.shutdown().await;
    let logins = server
        .audit_entries()
        .map_err(verr)?
        .iter()
        .filter(|e| e.is_request() && e.path() == format!("auth/{APPROLE_MOUNT}/login"))
        .count();
    Ok(and(
        verdict,
        if logins == 0 {
            Verdict::Pass
        } else {
            Verdict::Fail(Failure::new(
                spec,
                "no login reaches a server whose certificate is not trusted",
                format!("{logins} login request(s) reached it"),
            ))
        },
    ))
}

async fn escaped_action(cx: &Cx) -> Result<Verdict, Verdict> {
    let spec = "resolver.md W9: a job action cannot outlive itself or reach the credential";
    let token = cx.fake_token();
    let r = put_token(cx, "github", &token).await?;
    // AppRole: the worker holds a token of its own making, which must not
    // reach the action either (its environment is scraped too).
    let approle = super::support::Auth::AppRole {
        ttl: "10m",
        max_ttl: "20m",
        bad_secret_id: false,
    };
    let mut rig = super::rig::rig_with(cx, None, serde_json::json!({}), approle).await?;
    rig.git.set_tokens(REPO, &token);
    // The action may run as another user: its scraper and loot live in a
    // directory anyone may use.
    let open = cx.open_dir()?;
    let loot = open.join("loot");
    let marker = format!("vaultref-conf-escape-{}", random_hex(6));
    let scraper = open.join("scraper.sh");
    // Every 50 ms: every process's environment and command line, and every
    // file they have open that looks like a credential, into `loot`.
    std::fs::write(
        &scraper,
        format!(
            "while true; do for p in /proc/[0-9]*; do tr '\\0' '\\n' < \"$p/environ\"; tr '\\0' ' ' < \"$p/cmdline\"; echo; done >> '{}' 2>/dev/null; sleep 0.05; done\n",
            loot.display()
        ),
    )
    .map_err(|e| Verdict::Error(format!("scraper: {e}")))?;
    let job_id = "job-escape-1";
    // The action waits (at most 5 s) until the scraper has written once:
    // a fixed sleep was sometimes too short on a loaded machine, and an
    // empty loot makes the scenario an error.
    let script = format!(
        "printf 'action:%s' '{job_id}' > VAULTREF_CONFORMANCE; \
         setsid sh '{}' {marker} </dev/null >/dev/null 2>&1 & \
         i=0; while [ ! -s '{}' ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done",
        scraper.display(),
        loot.display()
    );
    let reply = run_job_with_action(&mut rig.s, job_id, job(Some(&r), None, true), &script).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let alive = std::process::Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    let _ = std::process::Command::new("pkill")
        .args(["-f", &marker])
        .status();
    let _ = rig.s.iut.shutdown().await;
    let pushed = expect_action_pushed(&reply, &rig.git, job_id);
    let survived = if alive {
        Verdict::Fail(Failure::new(
            spec,
            "every process the action started dies with it (setsid included)",
            "the action's setsid child was still running after the job",
        ))
    } else {
        Verdict::Pass
    };
    let scraped = std::fs::read(&loot).unwrap_or_default();
    // The scraper sees at least its own process: an empty loot means it
    // never ran, and the scenario would prove nothing.
    if scraped.is_empty() && verdict_is_pass(&pushed) {
        return Ok(Verdict::Error(
            "the action's scraper left nothing: it did not run, so nothing was tested".into(),
        ));
    }
    // The job's token, every secret the scenario handed out, and every token
    // the server issued (the worker's own login among them).
    let mut secrets = cx.secrets();
    secrets.extend(cx.vault()?.issued_tokens());
    let leaked = match vaultref::testing::leak::find_leak(&scraped, &secrets) {
        Some(form) => Verdict::Fail(Failure::new(
            spec,
            "the action's processes read no token",
            format!("the scraper found the token ({form})"),
        )),
        None => Verdict::Pass,
    };
    Ok(and(pushed, and(survived, leaked)))
}

fn verdict_is_pass(v: &Verdict) -> bool {
    matches!(v, Verdict::Pass)
}

/// The action tries to read every file under the implementation's
/// directories (its token file among them) and its `TMPDIR`, and lists
/// what is there; the harness looks for any secret of the run in what it
/// got.
async fn action_reads_worker_files(cx: &Cx) -> Result<Verdict, Verdict> {
    let spec = "resolver.md W9: a job action cannot read the worker's files";
    let token = cx.fake_token();
    let r = put_token(cx, "github", &token).await?;
    let mut rig = rig(cx, None, None).await?;
    rig.git.set_tokens(REPO, &token);
    let open = cx.open_dir()?;
    let loot = open.join("loot");
    let job_id = "job-files-1";
    // Its own work dir is `<root>/work/...`; everything else under `<root>`
    // (the token file, the temp dir, other work dirs) is the worker's.
    let root = &rig.s.dirs.root;
    let script = format!(
        r#"printf 'action:%s' '{job_id}' > VAULTREF_CONFORMANCE
echo probe > '{loot}'
find '{root}' '(' -type f -o -type s ')' -print 2>/dev/null | while read -r f; do
  echo "== $f"; head -c 65536 "$f" 2>/dev/null; echo
done >> '{loot}'"#,
        loot = loot.display(),
        root = root.display(),
    );
    let reply = run_job_with_action(&mut rig.s, job_id, job(Some(&r), None, true), &script).await?;
    let _ = rig.s.iut.shutdown().await;
    let pushed = expect_action_pushed(&reply, &rig.git, job_id);
    let got = std::fs::read(&loot).unwrap_or_default();
    if got.is_empty() && verdict_is_pass(&pushed) {
        return Ok(Verdict::Error(
            "the action left no loot file: it did not run, so nothing was tested".into(),
        ));
    }
    let leaked = match vaultref::testing::leak::find_leak(&got, &cx.secrets()) {
        Some(form) => Verdict::Fail(Failure::new(
            spec,
            "the action reads no secret of the worker's (token file, temp files)",
            format!("the action read a secret of the run from the worker's directories ({form})"),
        )),
        None => Verdict::Pass,
    };
    Ok(and(pushed, leaked))
}
