//! Step 2: the JSON Schema in `spec/codex-exec.schema.json`, embedded at build time.
//!
//! The schema file is the single source of truth for the job's shape: it is
//! compiled once with the `jsonschema` crate, and none of its rules is
//! repeated in Rust. Every violation becomes one `payload_schema` error at the
//! failing instance location.
//!
//! Messages never quote the instance: the failing keyword is described with
//! the instance value masked (jsonschema's `masked()`), followed by the
//! `description` of the subschema that failed, so what was expected is
//! written once, in the spec file, for every implementation. For the few
//! keywords whose masked text is unreadable (a long `pattern`, a `not`) the
//! description alone is used.

use std::sync::LazyLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::PayloadError;
use crate::error::ErrorCode;

/// The schema text, as shipped in `spec/codex-exec.schema.json`.
pub const SCHEMA_JSON: &str = include_str!("../../spec/codex-exec.schema.json");

static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    // The file is part of this crate; a unit test proves it parses.
    serde_json::from_str(SCHEMA_JSON).expect("spec/codex-exec.schema.json is valid JSON")
});

static VALIDATOR: LazyLock<Validator> = LazyLock::new(|| {
    jsonschema::draft202012::options()
        .build(&SCHEMA)
        .expect("spec/codex-exec.schema.json is a valid 2020-12 schema")
});

/// The parsed schema document (`spec/codex-exec.schema.json`).
pub fn schema() -> &'static Value {
    &SCHEMA
}

/// Every schema violation of `job`, one [`PayloadError`] each.
pub(crate) fn check(job: &Value) -> Vec<PayloadError> {
    VALIDATOR
        .iter_errors(job)
        .map(|e| PayloadError {
            code: ErrorCode::PayloadSchema,
            pointer: e.instance_path().as_str().to_string(),
            message: message(&e),
            rule_id: None,
        })
        .collect()
}

fn message(e: &ValidationError<'_>) -> String {
    let expected = description(e.schema_path().as_str());
    match (e.kind(), expected) {
        // The inner error's instance is the offending name. Names are scrubbed
        // like every message (`super::scrub`), and this one is needed to say
        // which member to rename.
        (ValidationErrorKind::PropertyNames { error }, Some(d)) => {
            match error.instance().as_str() {
                Some(name) => format!("the member name `{name}` is not allowed: expected {d}"),
                None => format!("expected {d}"),
            }
        }
        (
            ValidationErrorKind::Required { .. }
            | ValidationErrorKind::Constant { .. }
            | ValidationErrorKind::Enum { .. },
            _,
        )
        | (_, None) => e.masked().to_string(),
        (
            ValidationErrorKind::Pattern { .. }
            | ValidationErrorKind::Not { .. }
            | ValidationErrorKind::AnyOf { .. }
            | ValidationErrorKind::OneOfNotValid { .. },
            Some(d),
        ) => format!("expected {d}"),
        (_, Some(d)) => format!("{}; expected {d}", e.masked()),
    }
}

/// The `description` of the innermost schema object on `schema_path` that has
/// one (the failing keyword's own schema first, then its parents).
fn description(schema_path: &str) -> Option<&'static str> {
    let mut path = schema_path;
    while let Some(cut) = path.rfind('/') {
        path = &path[..cut];
        if let Some(d) = SCHEMA
            .pointer(path)
            .and_then(|s| s.get("description"))
            .and_then(Value::as_str)
        {
            return Some(d);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schema_compiles_and_accepts_the_design_example() {
        let example = json!({
            "type": "codex_exec",
            "payload": {
                "repository": "MoonLadderStudios/MoonMind",
                "repoAuthRef": "vault://kv/moonmind/repos/MoonLadderStudios/MoonMind#github_token",
                "instruction": "Implement the assigned task"
            }
        });
        assert_eq!(check(&example), vec![]);
    }

    #[test]
    fn the_schema_is_a_valid_2020_12_schema() {
        assert!(jsonschema::draft202012::meta::is_valid(schema()));
    }

    /// The spec promises patterns in the common subset of ECMA-262, RE2 and
    /// PCRE: no look-around, no backreferences. The `regex` crate (RE2-like)
    /// refuses both, so every pattern compiling there is the check.
    #[test]
    fn every_pattern_is_portable() {
        fn walk(v: &Value, found: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        match (k.as_str(), x) {
                            ("pattern", Value::String(p)) => found.push(p.clone()),
                            _ => walk(x, found),
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, found)),
                _ => {}
            }
        }
        let mut patterns = Vec::new();
        walk(schema(), &mut patterns);
        assert!(patterns.len() >= 5, "{patterns:?}");
        for p in patterns {
            assert!(regex::Regex::new(&p).is_ok(), "not portable: {p}");
        }
    }

    #[test]
    fn every_violation_is_reported_with_what_was_expected() {
        let job = json!({
            "type": "x",
            "payload": {"repository": "nope", "instruction": "", "workdirMode": 3}
        });
        let errors = check(&job);
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        for p in [
            "/type",
            "/payload/repository",
            "/payload/instruction",
            "/payload/workdirMode",
        ] {
            assert!(pointers.contains(&p), "{p} missing from {pointers:?}");
        }
        let repo = errors
            .iter()
            .find(|e| e.pointer == "/payload/repository")
            .unwrap();
        assert!(
            repo.message.starts_with("expected `owner/repo`"),
            "{}",
            repo.message
        );
        assert!(!repo.message.contains("nope"));
    }
}
