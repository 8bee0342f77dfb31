//! Runs every vector in `fixtures/payloads/` through `payload::validate`.
//!
//! Each file is first checked against `fixtures/payloads/vectors.schema.json`,
//! so a malformed vector fails loudly instead of testing nothing. Results are
//! compared as sets of `(code, pointer, rule)` (spec/codex-exec.md §5.1). For
//! every vector, whatever the outcome, no text that a token rule matches in the
//! input may appear in the error output.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use vaultref::payload::{PublishMode, ValidationOptions, validate};
use vaultref::redact::rules::find_tokens;
use vaultref::testing::vectors;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/payloads")
}

fn load_files() -> Vec<(String, Value)> {
    vectors::load_dir(&fixtures_dir())
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|f| (f.name, f.doc))
        .collect()
}

type Triple = (String, String, Option<String>);

#[test]
fn every_vector_gives_its_expected_result() {
    let files = load_files();
    let mut ids = HashSet::new();
    let mut failures = Vec::new();
    let mut count = 0;
    for (file, value) in &files {
        for v in value["vectors"].as_array().expect("vectors array") {
            count += 1;
            let id = v["id"].as_str().expect("id").to_string();
            assert!(ids.insert(id.clone()), "duplicate vector id {id}");
            if let Err(why) = run(v) {
                failures.push(format!("{file} {id}: {why}"));
            }
        }
    }
    assert!(
        count >= 60,
        "only {count} vectors; the suite promises at least 60"
    );
    assert!(
        failures.is_empty(),
        "{} of {count} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn run(v: &Value) -> Result<(), String> {
    let input: Vec<u8> = match (v.get("job_text"), v.get("job")) {
        (Some(Value::String(t)), None) => t.as_bytes().to_vec(),
        (None, Some(job)) => serde_json::to_vec(job).unwrap(),
        _ => return Err("needs exactly one of job, job_text".into()),
    };
    let options: ValidationOptions = match v.get("options") {
        Some(o) => serde_json::from_value(o.clone()).map_err(|e| format!("bad options: {e}"))?,
        None => ValidationOptions::default(),
    };
    let result = validate(&input, &options);

    // Whatever the outcome: nothing a rule matches in the input is echoed.
    if let Err(errors) = &result {
        let out = serde_json::to_string(errors).unwrap()
            + &errors.iter().map(|e| e.to_string()).collect::<String>();
        let text = String::from_utf8_lossy(&input);
        for m in find_tokens(&text) {
            let secret = &text[m.range.clone()];
            if out.contains(secret) {
                return Err(format!("output echoes a match of rule {}", m.rule_id()));
            }
        }
    }

    let expect = &v["expect"];
    match (expect.get("valid"), expect.get("invalid"), result) {
        (Some(want), None, Ok(job)) => {
            let slug = job.repository_slug();
            let publish = job.publish_auth_ref().map(|r| r.to_string());
            if want["repository_slug"].as_str() != slug.as_deref() {
                return Err(format!(
                    "slug {slug:?}, expected {}",
                    want["repository_slug"]
                ));
            }
            if want["publish_auth_ref"].as_str() != publish.as_deref() {
                return Err(format!(
                    "publish ref {publish:?}, expected {}",
                    want["publish_auth_ref"]
                ));
            }
            if let Some(mode) = want.get("publish_mode") {
                let got = match job.publish().mode() {
                    PublishMode::None => "none",
                    PublishMode::Branch => "branch",
                    PublishMode::Pr => "pr",
                };
                if mode.as_str() != Some(got) {
                    return Err(format!("publish mode {got}, expected {mode}"));
                }
            }
            Ok(())
        }
        (Some(_), None, Err(errors)) => Err(format!(
            "expected valid, got {:?}",
            errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()
        )),
        (None, Some(want), Ok(_)) => Err(format!("expected {want}, got valid")),
        (None, Some(want), Err(errors)) => {
            let want: BTreeSet<Triple> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["code"].as_str().unwrap().to_string(),
                        e["pointer"].as_str().unwrap().to_string(),
                        e.get("rule").and_then(Value::as_str).map(String::from),
                    )
                })
                .collect();
            let got: BTreeSet<Triple> = errors
                .iter()
                .map(|e| {
                    (
                        e.code.as_str().to_string(),
                        e.pointer.clone(),
                        e.rule_id.clone(),
                    )
                })
                .collect();
            if want == got {
                Ok(())
            } else {
                Err(format!(
                    "\n  expected {want:?}\n  got      {got:?}\n  messages {:?}",
                    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()
                ))
            }
        }
        _ => Err("expect must hold exactly one of valid, invalid".into()),
    }
}
