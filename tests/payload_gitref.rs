//! The schema's git ref rule (spec/codex-exec.md §2.1) agrees with real git.
//!
//! Names are generated from an alphabet rich in the characters git treats
//! specially, and each is given to `git check-ref-format --allow-onelevel`.
//! The schema must accept exactly what git accepts, minus the two documented
//! extra restrictions (no leading `-`, at most 255 characters).

use std::process::Command;

use proptest::prelude::*;
use vaultref::payload::{ValidationOptions, validate};

fn git_accepts(name: &str) -> bool {
    let status = Command::new("git")
        .args(["check-ref-format", "--allow-onelevel", name])
        .status()
        .unwrap_or_else(|e| panic!("this test needs git on PATH (apt-get install git): {e}"));
    status.success()
}

fn schema_accepts(name: &str) -> bool {
    let job = serde_json::json!({
        "type": "codex_exec",
        "payload": {"repository": "Acme/Api", "instruction": "x", "ref": name}
    });
    match validate(job.to_string().as_bytes(), &ValidationOptions::default()) {
        Ok(_) => true,
        Err(errors) => !errors.iter().any(|e| e.pointer == "/payload/ref"),
    }
}

fn expected(name: &str) -> bool {
    git_accepts(name) && !name.starts_with('-') && name.chars().count() <= 255
}

#[test]
fn hand_picked_names_agree_with_git() {
    for name in [
        "main",
        "refs/heads/main",
        "v1.2.3",
        "feature/x-y_z",
        "a.b/c.d",
        "caf\u{e9}",
        "0123456789abcdef0123456789abcdef01234567",
        "a@b",
        "@x",
        "x@",
        "a.lock.b",
        "a..b",
        "-x",
        "x-",
        "/a",
        "a/",
        "a//b",
        ".a",
        "a/.b",
        "a.",
        "a.lock",
        "a.lock/b",
        "@",
        "a@{b",
        "a b",
        "a~b",
        "a^b",
        "a:b",
        "a?b",
        "a*b",
        "a[b",
        "a\\b",
        "a\u{7f}b",
        "a\tb",
        "a]b",
        "a{b}",
        "a}b",
    ] {
        assert_eq!(schema_accepts(name), expected(name), "{name:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn generated_names_agree_with_git(name in "[a.@{}/~^:?*\\[\\\\ -]{0,3}(lock|[ab./@{-]){0,6}") {
        prop_assert_eq!(schema_accepts(&name), expected(&name), "{:?}", name);
    }
}
