//! Runs the secret-ref test vectors in `fixtures/refs/` against [`RefPolicy`].
//!
//! The vectors are data that any implementation, in any language, can consume
//! (format: `fixtures/refs/README.md`). This runner is vaultref's consumer:
//!
//! 1. every `fixtures/refs/*.json` file (except the schema) must validate
//!    against `vectors.schema.json`, so a malformed vector fails loudly instead
//!    of being half-read;
//! 2. ids must be unique across all files, because other suites cite them;
//! 3. every vector runs through `PolicySettings` → `RefPolicy::try_from` →
//!    `check_bytes`, and the result is compared with `expect`: code and offset
//!    for invalid vectors, the parts, the KV v2 paths (when given) and the
//!    canonical round trip (R12) for valid ones;
//! 4. the ids that `spec/secret-ref.md`'s requirement table names must exist,
//!    and every `ref_*` error code must be exercised by at least one vector.
//!
//! All mismatches are collected and reported together, each with its id, so one
//! run shows the whole picture instead of the first failure.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use serde::Deserialize;
use vaultref::policy::PolicySettings;
use vaultref::testing::vectors;
use vaultref::{ErrorCode, RefPolicy, ScopeContext};

/// One vector file: `{"description": ..., "vectors": [...]}`.
#[derive(Deserialize)]
struct VectorFile {
    #[allow(dead_code)] // Required by the schema; for people, not for the runner.
    description: String,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    id: String,
    #[serde(rename = "ref")]
    text: Option<String>,
    ref_hex: Option<String>,
    policy: Option<PolicySettings>,
    context: Option<ScopeContext>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Expect {
    Valid {
        mount: String,
        path: String,
        version: Option<u32>,
        field: String,
        kv2: Option<Kv2>,
    },
    Invalid {
        code: String,
        offset: Option<usize>,
    },
}

#[derive(Deserialize)]
struct Kv2 {
    data: String,
    metadata: String,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Loads and schema-checks every vector file, sorted by name.
fn load_files() -> Vec<(String, VectorFile)> {
    let dir = root().join("fixtures/refs");
    vectors::load_dir(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|f| {
            let file: VectorFile = serde_json::from_value(f.doc)
                .unwrap_or_else(|e| panic!("{} passed the schema but not serde: {e}", f.name));
            (f.name, file)
        })
        .collect()
}

/// What running one vector produced, in the same shape as [`Expect`].
#[derive(Debug, PartialEq)]
enum Outcome {
    Valid {
        mount: String,
        path: String,
        version: Option<u32>,
        field: String,
    },
    Invalid {
        code: String,
        offset: Option<usize>,
    },
}

/// Runs one vector; returns the list of ways it disagrees with `expect`.
fn run(v: &Vector) -> Vec<String> {
    let input: Vec<u8> = match (&v.text, &v.ref_hex) {
        (Some(text), None) => text.as_bytes().to_vec(),
        (None, Some(h)) => match hex::decode(h) {
            Ok(bytes) => bytes,
            Err(e) => return vec![format!("ref_hex is not hex: {e}")],
        },
        // The schema's oneOf rules this out; say so rather than guess.
        _ => return vec!["needs exactly one of ref and ref_hex".to_string()],
    };
    let ctx = v.context.clone().unwrap_or_default();
    let settings = v.policy.clone().unwrap_or_default();

    let (outcome, parsed) = match RefPolicy::try_from(settings) {
        Err(e) => (
            Outcome::Invalid {
                code: e.code().as_str().to_string(),
                offset: None,
            },
            None,
        ),
        Ok(policy) => match policy.check_bytes(&input, &ctx) {
            Ok(r) => (
                Outcome::Valid {
                    mount: r.mount().to_string(),
                    path: r.path().to_string(),
                    version: r.version(),
                    field: r.field().to_string(),
                },
                Some(r),
            ),
            Err(e) => (
                Outcome::Invalid {
                    code: e.code().as_str().to_string(),
                    offset: e.offset(),
                },
                None,
            ),
        },
    };

    let mut problems = Vec::new();
    let expected = match &v.expect {
        Expect::Valid {
            mount,
            path,
            version,
            field,
            ..
        } => Outcome::Valid {
            mount: mount.clone(),
            path: path.clone(),
            version: *version,
            field: field.clone(),
        },
        Expect::Invalid { code, offset } => Outcome::Invalid {
            code: code.clone(),
            offset: *offset,
        },
    };
    if outcome != expected {
        problems.push(format!("expected {expected:?}, got {outcome:?}"));
    }
    if let (Some(r), Expect::Valid { kv2, .. }) = (parsed, &v.expect) {
        // R12: formatting gives back exactly the accepted bytes.
        let formatted = r.to_string();
        if formatted.as_bytes() != input.as_slice() {
            problems.push(format!(
                "to_string() gave {formatted:?}, not the input (R12)"
            ));
        }
        if let Some(kv2) = kv2 {
            let query = r
                .version()
                .map(|n| format!("?version={n}"))
                .unwrap_or_default();
            let data = format!("/v1/{}{query}", r.kv2_data_path());
            let metadata = format!("/v1/{}", r.kv2_metadata_path());
            if data != kv2.data {
                problems.push(format!(
                    "kv2 data path: expected {:?}, got {data:?}",
                    kv2.data
                ));
            }
            if metadata != kv2.metadata {
                problems.push(format!(
                    "kv2 metadata path: expected {:?}, got {metadata:?}",
                    kv2.metadata
                ));
            }
        }
    }
    problems
}

#[test]
fn every_vector_passes() {
    let files = load_files();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut duplicates = Vec::new();
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, file) in &files {
        for v in &file.vectors {
            count += 1;
            if let Some(first) = seen.insert(v.id.clone(), name.clone()) {
                duplicates.push(format!("{} in {name} and {first}", v.id));
            }
            for problem in run(v) {
                failures.push(format!("{} ({name}): {problem}", v.id));
            }
        }
    }
    assert!(count > 0, "no vectors ran");
    assert!(
        duplicates.is_empty() && failures.is_empty(),
        "duplicate ids:\n{}\n{} of {count} vectors fail:\n{}",
        duplicates.join("\n"),
        failures.len(),
        failures.join("\n")
    );
}

/// The ids in the `vector` column of spec/secret-ref.md's requirement table.
fn ids_named_by_spec() -> Vec<String> {
    let spec = fs::read_to_string(root().join("spec/secret-ref.md")).expect("spec/secret-ref.md");
    let id = regex::Regex::new(r"`(ref\.[a-z0-9.-]+)`").unwrap();
    spec.lines()
        .filter(|l| l.starts_with("| R"))
        .flat_map(|l| {
            id.captures_iter(l)
                .map(|c| c[1].to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn ids_named_by_the_spec_exist() {
    let named = ids_named_by_spec();
    // R1-R11 each name one vector; R12 names "every valid vector".
    assert!(
        named.len() >= 11,
        "found only {} vector ids in spec/secret-ref.md's table: {named:?}",
        named.len()
    );
    let have: BTreeSet<String> = load_files()
        .into_iter()
        .flat_map(|(_, f)| f.vectors.into_iter().map(|v| v.id))
        .collect();
    let missing: Vec<&String> = named.iter().filter(|id| !have.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "spec/secret-ref.md names ids with no vector: {missing:?}"
    );
}

#[test]
fn every_ref_code_is_exercised() {
    let used: BTreeSet<String> = load_files()
        .into_iter()
        .flat_map(|(_, f)| f.vectors)
        .filter_map(|v| match v.expect {
            Expect::Invalid { code, .. } => Some(code),
            Expect::Valid { .. } => None,
        })
        .collect();
    let unused: Vec<&str> = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| c.starts_with("ref_") && !used.contains(*c))
        .collect();
    assert!(
        unused.is_empty(),
        "no vector expects these codes: {unused:?}"
    );
    for code in &used {
        assert!(
            ErrorCode::from_name(code).is_some(),
            "vectors expect {code}, which is not in the error catalogue"
        );
    }
}
