//! No output path of the CLI echoes a credential (`spec/redaction.md` §7,
//! README "Threat model"): a token pasted where a ref, a flag value, a file
//! name, a job or a secrets-file line belongs never comes out, on stdout or
//! stderr, whatever the subcommand answers (valid, invalid, usage error).
//!
//! A property test: a random token of each rule family, planted in every
//! argument and input of every subcommand, one invocation at a time.

use proptest::prelude::*;

mod common;

/// Every way to plant `t` in one invocation: `(args, stdin)`.
fn invocations(t: &str, dir: &std::path::Path) -> Vec<(Vec<String>, String)> {
    let file = dir.join(format!("{t}.json"));
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let job = |payload: &str| format!(r#"{{"type":"codex_exec","payload":{payload}}}"#);
    vec![
        (s(&["ref", "check", t]), String::new()),
        (
            s(&["ref", "check", &format!("vault://kv/{t}#f")]),
            String::new(),
        ),
        (
            s(&["ref", "check", &format!("vault://kv/a/b#{t}")]),
            String::new(),
        ),
        (
            s(&["ref", "check", "--format", "json", &format!("x {t}")]),
            String::new(),
        ),
        (
            s(&["ref", "check", "--allowed-mount", t, "vault://kv/a#f"]),
            String::new(),
        ),
        (
            s(&["ref", "check", &format!("vault://{t}/a#f")]),
            String::new(),
        ),
        (
            s(&[
                "ref",
                "check",
                "--scope",
                &format!("m/{t}/{{repository}}"),
                "--repository",
                "Acme/Api",
                "vault://kv/m/a#f",
            ]),
            String::new(),
        ),
        (
            s(&[
                "ref",
                "check",
                "--scope",
                "x/{repository}",
                "--repository",
                t,
                "vault://kv/x/a#f",
            ]),
            String::new(),
        ),
        (
            s(&[
                "ref",
                "check",
                "--scope",
                "w/{worker_id}",
                "--worker-id",
                t,
                "vault://kv/w/a#f",
            ]),
            String::new(),
        ),
        (
            s(&["ref", "check", "--max-length", t, "vault://kv/a#f"]),
            String::new(),
        ),
        (
            s(&["ref", "check", "--format", "json", "-"]),
            format!("{t}\nvault://kv/{t}#f\n"),
        ),
        (
            s(&["payload", "check", "-"]),
            job(&format!(
                r#"{{"repository":"Acme/Api","instruction":"use {t}"}}"#
            )),
        ),
        (
            s(&["payload", "check", "--format", "json", "-"]),
            job(&format!(r#"{{"repository":"{t}","instruction":"x"}}"#)),
        ),
        (
            s(&["payload", "check", "-"]),
            job(&format!(
                r#"{{"repository":"Acme/Api","instruction":"x","{t}AuthRef":"vault://kv/a#f","{t}":1}}"#
            )),
        ),
        (
            s(&["payload", "check", "-"]),
            job(&format!(
                r#"{{"repository":"Acme/Api","instruction":"x","repoAuthRef":"vault://kv/{t}#f"}}"#
            )),
        ),
        (s(&["payload", "check", "-"]), format!("{{\"type\": {t}}}")),
        (
            s(&["payload", "check", &file.display().to_string()]),
            String::new(),
        ),
        (
            s(&[
                "payload",
                "check",
                "--allowed-repository",
                t,
                "--scope",
                &format!("{t}/{{repository}}"),
                "-",
            ]),
            job(r#"{"repository":"Acme/Api","instruction":"x","repoAuthRef":"vault://kv/a#f"}"#),
        ),
        (
            s(&["redact", "--secrets-file", &file.display().to_string()]),
            String::new(),
        ),
        (s(&["redact", "--replacement", t]), "a line\n".to_string()),
        (s(&["redact", "--min-secret-length", t]), String::new()),
        (s(&["resolve", t]), String::new()),
        (
            s(&["resolve", "--job-id", t, "vault://kv/a#f"]),
            String::new(),
        ),
        (
            s(&["run", &format!("NAME={t}"), "--", "true"]),
            String::new(),
        ),
        (
            s(&["run", &format!("{t}=vault://kv/a#f"), "--", "true"]),
            String::new(),
        ),
        (
            s(&["git-credential", "get"]),
            format!("protocol=https\nhost={t}\npath={t}\n\n"),
        ),
        (s(&["git-credential", t]), String::new()),
        (s(&["codex", "status", "--shard", t]), String::new()),
        (
            s(&["codex", "claim", "--shard", "s1", "--worker-id", t]),
            String::new(),
        ),
        (
            s(&["codex", "claim", "--shard", "s1", "--ttl", t]),
            String::new(),
        ),
        (
            s(&[
                "codex",
                "backup",
                "--shard",
                "s1",
                "--worker-id",
                "w",
                "--volume",
                t,
                "--store",
                t,
            ]),
            String::new(),
        ),
        (
            s(&[
                "codex",
                "restore",
                "--shard",
                "s1",
                "--worker-id",
                "w",
                "--to",
                t,
                "--store",
                "s",
            ]),
            String::new(),
        ),
        (
            s(&["codex", "rewrap", "--store", "s", "--transit-key", t]),
            String::new(),
        ),
        (s(&[t]), String::new()),
    ]
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        "ghp_[A-Za-z0-9]{36}",
        "github_pat_[A-Za-z0-9_]{82}",
        "AKIA[A-Z2-7]{16}",
        "hvs\\.[A-Za-z0-9_-]{90}",
        "s\\.[A-Za-z0-9]{24}",
        "glpat-[A-Za-z0-9_-]{20}",
        "AIza[A-Za-z0-9_-]{35}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn no_subcommand_echoes_a_planted_token(t in token()) {
        let dir = tempfile::tempdir().unwrap();
        for (args, stdin) in invocations(&t, dir.path()) {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = common::cli_env(&refs, &stdin, &[("VAULT_ADDR", ""), ("VAULTREF_CONFIG", "")]);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            prop_assert!(
                !text.contains(&t),
                "`vaultref {}` echoed the token:\n{}",
                args.join(" ").replace(&t, "<TOKEN>"),
                text.replace(&t, "<TOKEN>")
            );
        }
    }
}
