//! `auth` scenarios: the token file (with its trailing newline) and AppRole
//! (at the mount given), a failed login, and a token file rewritten by an
//! agent (`resolver.md` T4).

use std::time::Duration;

use super::resolve::{Case, Expect, Provision, Readable, from_cases};
use super::support::{Auth, VAULT, expect_value, own_scope, put_versions, resolve, session, verr};
use crate::cx::Cx;
use crate::live_scenario;
use crate::scenario::{Level, Profile, Scenario};
use crate::verdict::Verdict;

const APPROLE: Auth = Auth::AppRole {
    ttl: "10m",
    max_ttl: "20m",
    bad_secret_id: false,
};

/// The `auth` rows.
const CASES: &[Case] = &[
    Case {
        id: "auth.token-file",
        profile: Profile::Auth,
        level: Level::Must,
        spec: "protocol.md §3.2 token auth",
        title: "A token read from a 0600 token file (ending in a newline) resolves",
        requirement: "protocol.md §3.2: token auth from a file, trimmed",
        provision: Provision::Versions(1),
        auth: Auth::TokenLine { ttl: "10m" },
        readable: Readable::Own,
        reference: |_, path| format!("vault://kv/{path}#token"),
        expect: Expect::Version(1),
    },
    Case {
        id: "auth.approle",
        profile: Profile::Auth,
        level: Level::Must,
        spec: "protocol.md §3.2 approle auth",
        title: "AppRole login from role id and secret id files resolves",
        requirement: "protocol.md §3.2: AppRole login at the mount given",
        provision: Provision::Versions(1),
        auth: APPROLE,
        readable: Readable::Own,
        reference: |_, path| format!("vault://kv/{path}#token"),
        expect: Expect::Version(1),
    },
    Case {
        id: "auth.approle-bad-secret-id",
        profile: Profile::Auth,
        level: Level::Must,
        spec: "errors.md vault_auth_failed",
        title: "A wrong secret id: vault_auth_failed",
        requirement: "errors.md: a failed login is vault_auth_failed",
        provision: Provision::Versions(1),
        auth: Auth::AppRole {
            ttl: "10m",
            max_ttl: "20m",
            bad_secret_id: true,
        },
        readable: Readable::Own,
        reference: |_, path| format!("vault://kv/{path}#token"),
        expect: Expect::Code("vault_auth_failed"),
    },
];

/// Every `auth` scenario.
pub fn scenarios() -> Vec<Scenario> {
    let mut all = from_cases(CASES);
    all.push(Scenario::live(
        "auth.token-file-refreshed",
        Profile::Auth,
        Level::Must,
        "resolver.md T4 (token file re-read)",
        "The token file is rewritten by an agent after expiry; the next resolve uses the new token",
        VAULT,
        live_scenario!(cx, { token_file_refreshed(&cx).await }),
    ));
    all
}

async fn token_file_refreshed(cx: &Cx) -> Result<Verdict, Verdict> {
    let v1 = cx.fake_token();
    let path = put_versions(cx, &[&v1]).await?;
    let mut s = session(cx, &own_scope(cx), Auth::Token { ttl: "4s" }, None).await?;
    let reference = format!("vault://kv/{path}#token");
    let r = resolve(&mut s, &reference, "job-refresh-1", None).await?;
    let first = expect_value("token auth", &r, &s.key, &v1, "the value");
    if first != Verdict::Pass {
        return Ok(first);
    }
    tokio::time::sleep(Duration::from_millis(5000)).await;
    // The simulated agent: a fresh token in the same file.
    let fresh = cx
        .vault()?
        .admin
        .create_token(&[&cx.name("read")], "10m", true)
        .await
        .map_err(verr)?;
    cx.register(&fresh);
    cx.write_secret_file(&s.dirs, "token", &fresh)?;
    let r = resolve(&mut s, &reference, "job-refresh-2", None).await?;
    Ok(expect_value(
        "resolver.md T4: a dead token is replaced by re-reading the token file",
        &r,
        &s.key,
        &v1,
        "the value",
    ))
}
