//! `vaultref policy render|check` against a real OpenBao: the rendered policy
//! passes the check; a policy wider than the queue policy, or one missing a
//! repository, fails it, and the output says which grant and what to add.

mod common;

use common::{cli, cli_env, transcript, vault};
use secrecy::ExposeSecret;

const GRANT: &[&str] = &[
    "--worker-id",
    "executor-01",
    "--scope",
    "moonmind/repos/{repository}",
    "--scope",
    "moonmind/workers/{worker_id}/**",
    "--allowed-repository",
    "Acme/Api",
    "--allowed-repository",
    "Acme/Web",
];

fn args<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(tail).copied().collect()
}

#[test]
fn render_prints_read_on_exactly_the_allowed_paths() {
    let out = cli(&args(&["policy", "render"], GRANT), "");
    insta::assert_snapshot!("render", transcript(&out));
    let out = cli(&args(&["policy", "render", "--with-list"], GRANT), "");
    insta::assert_snapshot!("render_with_list", transcript(&out));
}

#[test]
fn render_refuses_an_unbounded_queue_policy_or_no_scopes() {
    let out = cli(
        &[
            "policy",
            "render",
            "--worker-id",
            "w",
            "--scope",
            "moonmind/repos/{repository}",
        ],
        "",
    );
    insta::assert_snapshot!("render_no_repositories", transcript(&out));
    let out = cli(
        &[
            "policy",
            "render",
            "--worker-id",
            "w",
            "--allowed-repository",
            "Acme/Api",
        ],
        "",
    );
    insta::assert_snapshot!("render_no_scopes", transcript(&out));
}

/// Runs `policy check` (with `extra` flags) with a token holding
/// `policies`; the token is never in the output.
async fn check_with(
    v: &vaultref::testing::TestVault,
    policies: &[&str],
    extra: &[&str],
) -> std::process::Output {
    let token = v.admin().create_token(policies, "10m", true).await.unwrap();
    let name = format!("token-{}-{}", policies.join("-"), extra.len());
    let file = v.write_file(&name, token.expose_secret()).unwrap();
    let file = file.to_string_lossy().into_owned();
    let head: Vec<&str> = ["policy", "check"].iter().chain(extra).copied().collect();
    let out = cli_env(
        &args(&head, GRANT),
        "",
        &[
            ("VAULT_ADDR", v.addr()),
            ("VAULT_AUTH_METHOD", "token"),
            ("VAULT_TOKEN_FILE", &file),
            ("VAULT_TOKEN", ""),
        ],
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(token.expose_secret()),
        "the token is in the output"
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_the_rendered_policy_and_names_what_is_wrong_with_others() {
    let v = vault().await;
    let rendered = cli(&args(&["policy", "render"], GRANT), "");
    assert_eq!(rendered.status.code(), Some(0), "{}", transcript(&rendered));
    let hcl = String::from_utf8(rendered.stdout).unwrap();
    v.admin().put_policy("rendered", &hcl).await.unwrap();
    let out = check_with(&v, &["rendered"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    insta::assert_snapshot!("check_rendered", transcript(&out));

    // Wider than the queue policy, and allowed to read its own text, so the
    // check can name the rule.
    v.admin()
        .put_policy(
            "wide",
            "path \"kv/data/moonmind/repos/*\" { capabilities = [\"read\"] }\n\
             path \"kv/data/moonmind/workers/executor-01/*\" { capabilities = [\"read\"] }\n\
             path \"sys/policies/acl/wide\" { capabilities = [\"read\"] }\n",
        )
        .await
        .unwrap();
    let out = check_with(&v, &["wide"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    insta::assert_snapshot!("check_wide", transcript(&out));

    // Every worker's paths: too wide on the worker side, and unnamed (the
    // token may not read its policy).
    v.admin()
        .put_policy(
            "all-workers",
            "path \"kv/data/moonmind/repos/Acme/*\" { capabilities = [\"read\"] }\n\
             path \"kv/data/moonmind/workers/*\" { capabilities = [\"read\"] }\n",
        )
        .await
        .unwrap();
    let out = check_with(&v, &["all-workers"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    insta::assert_snapshot!("check_all_workers", transcript(&out));

    // One repository missing, and the policies unreadable.
    v.admin()
        .put_policy(
            "partial",
            "path \"kv/data/moonmind/repos/Acme/Api\" { capabilities = [\"read\"] }\n\
             path \"kv/data/moonmind/workers/executor-01/*\" { capabilities = [\"read\"] }\n",
        )
        .await
        .unwrap();
    let out = check_with(&v, &["partial"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    insta::assert_snapshot!("check_partial", transcript(&out));

    // JSON for machines: the same verdicts.
    let out = check_with(&v, &["partial"], &["--format", "json"]).await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["pattern"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["kv/data/moonmind/repos/Acme/Web"]);
}
