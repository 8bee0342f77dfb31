//! `fixtures/rules`: positive and negative examples of every token rule
//! (`spec/redaction.md` §3), through the rule table and through the
//! redactor.

use std::collections::BTreeSet;

use vaultref::redact::rules::{find_tokens, rule, rules};
use vaultref::redact::{Redactor, redact};
use vaultref::testing::vectors::{fixtures_dir, load_dir};

#[test]
fn every_rule_vector() {
    let files = load_dir(&fixtures_dir().join("rules")).unwrap();
    let mut failures = Vec::new();
    let mut positive_rules = BTreeSet::new();
    let mut n = 0;
    for v in files.iter().flat_map(|f| f.vectors()) {
        n += 1;
        let id = v["id"].as_str().unwrap();
        let rule_id = v["rule"].as_str().unwrap();
        let text = v["text"].as_str().unwrap();
        assert!(rule(rule_id).is_some(), "{id}: no rule {rule_id}");
        assert!(
            id.starts_with(&format!("{rule_id}.")),
            "{id}: id names another rule"
        );
        let all: Vec<(&str, &str)> = find_tokens(text)
            .map(|m| (m.rule_id(), &text[m.range]))
            .collect();
        let redacted = redact(text);
        if v["kind"] == "negative" {
            if !all.is_empty() || redacted != text {
                failures.push(format!("{id}: expected nothing, found {all:?}"));
            }
            continue;
        }
        positive_rules.insert(rule_id);
        let want: Vec<&str> = v["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        let got: Vec<&str> = all
            .iter()
            .filter(|(r, _)| *r == rule_id)
            .map(|(_, m)| *m)
            .collect();
        if got != want {
            failures.push(format!("{id}: {rule_id} found {got:?}, expected {want:?}"));
        }
        for m in &want {
            if redacted.contains(m) {
                failures.push(format!("{id}: {m:?} survives redaction: {redacted:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(n >= 90, "{n} vectors");
    let missing: Vec<&str> = rules()
        .iter()
        .map(|r| r.id)
        .filter(|id| !positive_rules.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a positive vector: {missing:?}"
    );
}

/// The redactor with registered secrets applies the same rules: a vector's
/// matches are masked there too, and a negative stays as it is.
#[test]
fn rule_vectors_through_a_redactor_with_secrets() {
    let mut b = vaultref::redact::RedactorBuilder::new();
    b.add_secret(&"FAKE-unrelated-registered-secret".to_owned().into())
        .unwrap();
    let r: Redactor = b.build().unwrap();
    let files = load_dir(&fixtures_dir().join("rules")).unwrap();
    for v in files.iter().flat_map(|f| f.vectors()) {
        let text = v["text"].as_str().unwrap();
        let out = r.redact(text);
        if v["kind"] == "negative" {
            assert_eq!(out, text, "{}", v["id"]);
        }
    }
}
