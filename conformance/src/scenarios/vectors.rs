//! Vector scenarios: each vector file entry becomes one `check_ref` or
//! `check_payload` request whose reply is compared with the vector's `expect`.
//! The vectors are the contract (`fixtures/refs/README.md`); this module only
//! carries them over the protocol.

use std::path::Path;

use secrecy::SecretString;
use serde_json::{Map, Value, json};

use crate::scenario::{Body, Level, Meta, Profile, Scenario};
use crate::verdict::{Failure, Verdict};

/// The vector files of `dir` (schema-checked: a malformed vector is an
/// error, never a scenario that tests nothing).
fn read_vector_files(dir: &Path) -> Result<Vec<(String, Value)>, String> {
    Ok(vaultref::testing::vectors::load_dir(dir)?
        .into_iter()
        .map(|f| (f.name, f.doc))
        .collect())
}

/// One `check_ref` scenario per vector in `dir` (`fixtures/refs/`).
pub fn ref_vectors(dir: &Path) -> Result<Vec<Scenario>, String> {
    let mut out = Vec::new();
    for (file, doc) in read_vector_files(dir)? {
        let vectors = doc["vectors"]
            .as_array()
            .ok_or_else(|| format!("{file}: no `vectors` array"))?;
        for v in vectors {
            let id = v["id"]
                .as_str()
                .ok_or_else(|| format!("{file}: a vector without id"))?;
            let mut request = Map::new();
            match (v.get("ref"), v.get("ref_hex")) {
                (Some(r), _) => request.insert("input".into(), r.clone()),
                (None, Some(h)) => request.insert("input_hex".into(), h.clone()),
                _ => return Err(format!("{file}: vector {id} has neither ref nor ref_hex")),
            };
            for key in ["policy", "context"] {
                if let Some(x) = v.get(key) {
                    request.insert(key.into(), x.clone());
                }
            }
            let expect = v["expect"].clone();
            if expect.get("valid").is_none() && expect.get("invalid").is_none() {
                return Err(format!(
                    "{file}: vector {id}: `expect` is neither valid nor invalid"
                ));
            }
            let requirement = v["requirement"].as_str().unwrap_or("§2").to_string();
            let title = v["comment"]
                .as_str()
                .map_or_else(|| format!("ref vector {id}"), str::to_string);
            let spec = format!("secret-ref.md {requirement}");
            let check_spec = spec.clone();
            out.push(Scenario {
                meta: Meta {
                    id: id.to_string(),
                    profile: Profile::Refs,
                    level: Level::Must,
                    spec,
                    title,
                },
                body: Body::Vector {
                    op: "check_ref",
                    request: Value::Object(request),
                    check: Box::new(move |reply| check_ref_reply(&check_spec, &expect, reply)),
                    secrets: Vec::new(),
                },
            });
        }
    }
    Ok(out)
}

fn check_ref_reply(spec: &str, expect: &Value, reply: &Map<String, Value>) -> Verdict {
    let got_valid = reply.get("valid").and_then(Value::as_bool).unwrap_or(false);
    let describe_reply = || {
        if got_valid {
            format!("valid {}", reply.get("ref").unwrap_or(&Value::Null))
        } else {
            format!(
                "invalid: code {}, offset {}",
                reply.get("code").unwrap_or(&Value::Null),
                reply.get("offset").unwrap_or(&Value::Null)
            )
        }
    };
    let requirement = format!("{spec}: the same verdict, code and offset as the vector");
    if let Some(want) = expect.get("valid") {
        let got = reply.get("ref").cloned().unwrap_or(Value::Null);
        let same = got_valid
            && ["mount", "path", "version", "field"]
                .iter()
                .all(|k| got.get(*k) == want.get(*k));
        if same {
            return Verdict::Pass;
        }
        let want = json!({"mount": want["mount"], "path": want["path"], "version": want["version"], "field": want["field"]});
        return Verdict::Fail(Failure::new(
            requirement,
            format!("valid {want}"),
            describe_reply(),
        ));
    }
    let want = &expect["invalid"];
    let same = !got_valid
        && reply.get("code") == want.get("code")
        && reply.get("offset").unwrap_or(&Value::Null)
            == want.get("offset").unwrap_or(&Value::Null);
    if same {
        Verdict::Pass
    } else {
        Verdict::Fail(Failure::new(
            requirement,
            format!("invalid: code {}, offset {}", want["code"], want["offset"]),
            describe_reply(),
        ))
    }
}

/// One `check_payload` scenario per vector in `dir` (`fixtures/payloads/`), if
/// that directory exists. Format: `fixtures/payloads/vectors.schema.json`:
/// `job` (or `job_text`), optional `options`, and `expect` either
/// `{"valid": {...}}` or `{"invalid": [{"code", "pointer"}...]}`.
pub fn payload_vectors(dir: &Path) -> Result<Vec<Scenario>, String> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (file, doc) in read_vector_files(dir)? {
        let Some(vectors) = doc["vectors"].as_array() else {
            continue;
        };
        for v in vectors {
            let id = v["id"]
                .as_str()
                .ok_or_else(|| format!("{file}: a vector without id"))?;
            let mut request = Map::new();
            for key in ["job", "job_text", "options"] {
                if let Some(x) = v.get(key) {
                    request.insert(key.into(), x.clone());
                }
            }
            let expect = v["expect"].clone();
            let secrets = planted_tokens(v);
            out.push(Scenario {
                meta: Meta {
                    id: id.to_string(),
                    profile: Profile::Payload,
                    level: Level::Must,
                    spec: format!("codex-exec.md {}", v["section"].as_str().unwrap_or("")),
                    title: v["comment"]
                        .as_str()
                        .unwrap_or("payload vector")
                        .to_string(),
                },
                body: Body::Vector {
                    op: "check_payload",
                    request: Value::Object(request),
                    check: Box::new(move |reply| check_payload_reply(&expect, reply)),
                    secrets,
                },
            });
        }
    }
    Ok(out)
}

/// The tokens a payload vector says it planted (its `planted` member): the
/// harness takes them from the data, never from a detector of its own, so an
/// implementation is not judged with the reference's code.
fn planted_tokens(v: &Value) -> Vec<SecretString> {
    v["planted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|t| SecretString::from(t.to_string()))
        .collect()
}

/// `(code, pointer, rule)` of each error, sorted and deduplicated. The rule
/// is `None` unless `with_rules` (the reply carried rule ids).
fn error_set(errors: &Value, with_rules: bool) -> Vec<(String, String, Option<String>)> {
    let mut set: Vec<_> = errors
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["code"].as_str().unwrap_or("").to_string(),
                        e["pointer"].as_str().unwrap_or("").to_string(),
                        with_rules
                            .then(|| e["rule"].as_str().map(str::to_string))
                            .flatten(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    set.sort();
    set.dedup();
    set
}

/// Compares a `check_payload` reply with the vector (`protocol.md` §3.4):
/// the verdict, the `(code, pointer)` set, and, when the reply carries them,
/// rule ids (then the set is `(code, pointer, rule)`) and the valid job's
/// `summary`.
fn check_payload_reply(expect: &Value, reply: &Map<String, Value>) -> Verdict {
    let got_valid = reply.get("valid").and_then(Value::as_bool).unwrap_or(false);
    let errors = reply.get("errors").unwrap_or(&Value::Null);
    let with_rules = errors
        .as_array()
        .is_some_and(|a| a.iter().any(|e| e.get("rule").is_some()));
    let got = error_set(errors, with_rules);
    let want_valid = expect
        .get("valid")
        .is_some_and(|v| v != &Value::Bool(false));
    let want = error_set(expect.get("invalid").unwrap_or(&Value::Null), with_rules);
    let show = |valid: bool, set: &[(String, String, Option<String>)]| {
        if valid {
            "valid".to_string()
        } else {
            format!("invalid {set:?}")
        }
    };
    if got_valid != want_valid || (!want_valid && got != want) {
        return Verdict::Fail(Failure::new(
            if with_rules {
                "codex-exec.md §5.1: the same verdict and (code, pointer, rule) set as the vector"
            } else {
                "codex-exec.md §5.1: the same verdict and (code, pointer) set as the vector"
            },
            show(want_valid, &want),
            show(got_valid, &got),
        ));
    }
    if let (true, Some(summary), Some(wanted)) = (
        want_valid,
        reply.get("summary"),
        expect.get("valid").filter(|v| v.is_object()),
    ) {
        for key in ["repository_slug", "publish_auth_ref"] {
            if let Some(w) = wanted.get(key)
                && summary.get(key).unwrap_or(&Value::Null) != w
            {
                return Verdict::Fail(Failure::new(
                    "codex-exec.md §7: the typed job's slug and effective publish ref",
                    format!("{key} {w}"),
                    format!("{key} {}", summary.get(key).unwrap_or(&Value::Null)),
                ));
            }
        }
    }
    Verdict::Pass
}
