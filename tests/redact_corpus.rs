//! The language-agnostic redaction vectors in `fixtures/redaction/corpus.json`
//! (`spec/redaction.md` §8), run one-shot and streamed in several chunkings,
//! plus insta snapshots of representative outputs.

use secrecy::SecretString;
use serde::Deserialize;
use vaultref::redact::{RedactWriter, Redactor, RedactorBuilder};

#[derive(Deserialize)]
struct Corpus {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    id: String,
    category: String,
    description: String,
    secrets: Vec<String>,
    #[serde(default)]
    options: Options,
    input: String,
    expected: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Options {
    builtin_rules: Option<bool>,
    min_secret_length: Option<usize>,
    replacement: Option<String>,
}

fn corpus() -> Corpus {
    let dir = vaultref::testing::vectors::fixtures_dir().join("redaction");
    let files = vaultref::testing::vectors::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    let corpus = files
        .into_iter()
        .find(|f| f.name == "corpus.json")
        .expect("fixtures/redaction/corpus.json");
    serde_json::from_value(corpus.doc).expect("corpus.json has the corpus's shape")
}

fn redactor(v: &Vector) -> Redactor {
    let mut b = RedactorBuilder::new();
    if let Some(on) = v.options.builtin_rules {
        b = b.builtin_rules(on);
    }
    if let Some(n) = v.options.min_secret_length {
        b = b.min_secret_length(n);
    }
    if let Some(r) = &v.options.replacement {
        b = b.replacement(r.clone());
    }
    for s in &v.secrets {
        b.add_secret(&SecretString::from(s.clone()))
            .unwrap_or_else(|e| panic!("{}: {e}", v.id));
    }
    b.build().unwrap()
}

#[test]
fn corpus_vectors() {
    let c = corpus();
    assert!(c.vectors.len() >= 30, "the corpus lost vectors");
    let mut ids = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for v in &c.vectors {
        assert!(ids.insert(v.id.clone()), "duplicate id {}", v.id);
        assert!(!v.description.is_empty() && !v.category.is_empty());
        let r = redactor(v);
        let one = r.redact(&v.input);
        if one != v.expected {
            failures.push(format!(
                "{}: one-shot\n  got      {:?}\n  expected {:?}",
                v.id, one, v.expected
            ));
            continue;
        }
        for n in [1, 2, 3, 7, 64, 4096] {
            let mut w = RedactWriter::new(&r, Vec::new());
            for c in v.input.as_bytes().chunks(n) {
                std::io::Write::write_all(&mut w, c).unwrap();
            }
            let out = w.finish().unwrap();
            if out != v.expected.as_bytes() {
                failures.push(format!(
                    "{}: chunks of {n}\n  got      {:?}",
                    v.id,
                    String::from_utf8_lossy(&out)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn near_misses_are_untouched() {
    let c = corpus();
    let near: Vec<_> = c
        .vectors
        .iter()
        .filter(|v| v.category == "near-miss")
        .collect();
    assert!(near.len() >= 6);
    for v in near {
        assert_eq!(
            v.input, v.expected,
            "{}: a near miss must be unchanged",
            v.id
        );
    }
}

#[test]
fn snapshots() {
    let c = corpus();
    let pick = [
        "git-clone-url-token",
        "git-trace-basic-header",
        "git-basic-registered-other-user",
        "http-bearer-jwt",
        "json-log-fine-grained-pat",
        "registered-multi-line-whole",
        "pem-private-key",
    ];
    let out: Vec<serde_json::Value> = pick
        .iter()
        .map(|id| {
            let v = c
                .vectors
                .iter()
                .find(|v| v.id == *id)
                .unwrap_or_else(|| panic!("vector {id}"));
            serde_json::json!({"id": id, "output": redactor(v).redact(&v.input)})
        })
        .collect();
    insta::assert_json_snapshot!("representative_outputs", out);
}
