//! One loader for every vector file of `fixtures/`, for this crate's tests,
//! the conformance harness and its tests.
//!
//! Each fixtures directory holds vector files (`*.json`) and the JSON Schema
//! they follow (`vectors.schema.json`). [`load_dir`] reads the files in name
//! order and checks each against the schema, so a malformed vector fails
//! loudly instead of testing nothing, wherever it is read.
//!
//! A vector's `input` or `expected` may be written as *pieces* (an array of
//! strings and `{"repeat": S, "times": N}` objects) where the text is too
//! long to write out, such as a line longer than the redactor's 256 KiB
//! segment, where the directory's schema defines `$defs/piece`. The schema
//! checks the pieces; the loader then joins them, so every reader sees
//! plain strings.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{TestSupportError, err};

/// The schema file every fixtures directory has.
pub const SCHEMA_FILE: &str = "vectors.schema.json";

/// `fixtures/` of this source tree.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// One vector file: its file name and its parsed content.
#[derive(Clone, Debug)]
pub struct VectorFile {
    /// The file name, e.g. `traversal.json`.
    pub name: String,
    /// The whole document (`description`, `vectors`, ...).
    pub doc: Value,
}

impl VectorFile {
    /// The `vectors` array (empty when there is none).
    pub fn vectors(&self) -> &[Value] {
        self.doc["vectors"].as_array().map_or(&[], Vec::as_slice)
    }
}

fn read_json(path: &Path) -> Result<Value, TestSupportError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| err(format!("{} is not JSON: {e}", path.display())))
}

/// Every vector file of `dir`, sorted by name, each checked against
/// `dir/vectors.schema.json`. Fails on an unreadable file, a schema that does
/// not compile, no vector file at all, or any schema violation (all of them
/// listed, with file and JSON pointer).
pub fn load_dir(dir: &Path) -> Result<Vec<VectorFile>, TestSupportError> {
    let schema = read_json(&dir.join(SCHEMA_FILE))?;
    let validator = jsonschema::draft202012::new(&schema).map_err(|e| {
        err(format!(
            "{}/{SCHEMA_FILE} does not compile: {e}",
            dir.display()
        ))
    })?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| err(format!("cannot list {}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(".schema.json"))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(err(format!("no vector files in {}", dir.display())));
    }
    // Only a schema that defines texts as pieces has them (redaction's).
    let pieces = schema["$defs"].get("piece").is_some();
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut doc = read_json(&path)?;
        let before = problems.len();
        problems.extend(
            validator
                .iter_errors(&doc)
                .map(|e| format!("{name}: at {}: {e}", e.instance_path())),
        );
        if problems.len() == before && pieces {
            join_pieces(&mut doc);
        }
        files.push(VectorFile { name, doc });
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(err(format!(
            "vector files in {} violate {SCHEMA_FILE}:\n{}",
            dir.display(),
            problems.join("\n")
        )))
    }
}

/// Replaces each vector's `input` and `expected` written as pieces by the
/// text they make (called on a document its schema accepted).
fn join_pieces(doc: &mut Value) {
    let Some(vectors) = doc["vectors"].as_array_mut() else {
        return;
    };
    for v in vectors {
        for member in ["input", "expected"] {
            let Some(Value::Array(pieces)) = v.get(member) else {
                continue;
            };
            let mut text = String::new();
            for piece in pieces {
                match piece {
                    Value::String(s) => text.push_str(s),
                    _ => {
                        let s = piece["repeat"].as_str().unwrap_or_default();
                        let n = piece["times"].as_u64().unwrap_or(0);
                        text.push_str(&s.repeat(usize::try_from(n).unwrap_or(0)));
                    }
                }
            }
            v[member] = Value::String(text);
        }
    }
}

/// Every vector of every file of `dir` ([`load_dir`]), in file order.
pub fn all_vectors(dir: &Path) -> Result<Vec<Value>, TestSupportError> {
    Ok(load_dir(dir)?
        .iter()
        .flat_map(|f| f.vectors().to_vec())
        .collect())
}
