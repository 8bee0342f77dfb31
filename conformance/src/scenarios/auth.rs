//! `auth` scenarios: the token file (with its trailing newline) and AppRole
//! (at the mount given), a failed login, a token file rewritten by an agent
//! and one left holding a dead token (`resolver.md` T4), and a secret id
//! rotated in its file (S4).

use std::time::Duration;

use super::resolve::{Case, Expect, Provision, Readable, from_cases};
use secrecy::SecretString;
use serde_json::json;

use super::support::{
    Auth, VAULT, expect_code, expect_value, own_scope, put_versions, resolve, revoke_role_tokens,
    session, verr,
};
use crate::backend::APPROLE_MOUNT;
use crate::cx::Cx;
use crate::live_scenario;
use crate::scenario::{Level, Profile, Scenario};
use crate::verdict::{Failure, Verdict};

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
    all.push(Scenario::live(
        "auth.token-file-dead",
        Profile::Auth,
        Level::Must,
        "resolver.md T4, V4 (dead token, file not rewritten)",
        "The token in the token file is revoked and the file is not rewritten: vault_auth_failed, not a denial",
        VAULT,
        live_scenario!(cx, { token_file_dead(&cx).await }),
    ));
    all.push(Scenario::live(
        "auth.unknown-method",
        Profile::Auth,
        Level::Must,
        "resolver.md S1; protocol.md §3.2",
        "configure with an auth method nobody defines: a failed configure, config_invalid (not unsupported)",
        VAULT,
        live_scenario!(cx, {
            configure_refused(&cx, |_| json!({"method": "magic-link", "token_file": "/dev/null"}))
                .await
        }),
    ));
    all.push(Scenario::live(
        "auth.missing-credential-file",
        Profile::Auth,
        Level::Must,
        "resolver.md S1; protocol.md §3.2",
        "configure with a token file that does not exist: config_invalid at configure, before any request",
        VAULT,
        live_scenario!(cx, {
            configure_refused(&cx, |dirs| {
                json!({"method": "token", "token_file": dirs.creds.join("not-written-yet")})
            })
            .await
        }),
    ));
    all.push(Scenario::live(
        "auth.secret-id-rotated",
        Profile::Auth,
        Level::Must,
        "resolver.md S4 (credential files read at each login)",
        "The secret id is rotated in its file, the old one destroyed, the token revoked: the next resolve logs in with the new one",
        VAULT,
        live_scenario!(cx, { secret_id_rotated(&cx).await }),
    ));
    all
}

/// The token file's token is revoked; the file keeps it. The next resolve
/// finds the token dead (a 403, then `lookup-self` refused) and the file
/// gives nothing better: `vault_auth_failed` (T4: fail secure), never
/// `vault_permission_denied` or `secret_not_found`.
async fn token_file_dead(cx: &Cx) -> Result<Verdict, Verdict> {
    let v1 = cx.fake_token();
    let path = put_versions(cx, &[&v1]).await?;
    let mut s = session(cx, &own_scope(cx), Auth::Token { ttl: "10m" }, None).await?;
    let reference = format!("vault://kv/{path}#token");
    let r = resolve(&mut s, &reference, "job-dead-1", None).await?;
    let first = expect_value("token auth", &r, &s.key, &v1, "the value");
    if first != Verdict::Pass {
        return Ok(first);
    }
    let token = std::fs::read_to_string(s.dirs.creds.join("token"))
        .map_err(|e| Verdict::Error(format!("token file: {e}")))?;
    cx.vault()?
        .admin
        .revoke_token(&SecretString::from(token.trim().to_owned()))
        .await
        .map_err(verr)?;
    let r = resolve(&mut s, &reference, "job-dead-2", None).await?;
    Ok(expect_code(
        "resolver.md T4: a dead token still in the file is vault_auth_failed",
        &r,
        "vault_auth_failed",
    ))
}

/// AppRole: after a first resolve, a new secret id goes into the secret-id
/// file, the old one is destroyed and the role's tokens revoked. The next
/// resolve must log in again, reading the file again (S4).
async fn secret_id_rotated(cx: &Cx) -> Result<Verdict, Verdict> {
    let v1 = cx.fake_token();
    let path = put_versions(cx, &[&v1]).await?;
    let mut s = session(cx, &own_scope(cx), APPROLE, None).await?;
    let reference = format!("vault://kv/{path}#token");
    let r = resolve(&mut s, &reference, "job-rotate-id-1", None).await?;
    let first = expect_value("AppRole login", &r, &s.key, &v1, "the value");
    if first != Verdict::Pass {
        return Ok(first);
    }
    let admin = &cx.vault()?.admin;
    let role = cx.name("role");
    let old = std::fs::read_to_string(s.dirs.creds.join("secret_id"))
        .map_err(|e| Verdict::Error(format!("secret id file: {e}")))?;
    let new = admin
        .approle_secret_id(APPROLE_MOUNT, &role)
        .await
        .map_err(verr)?;
    cx.register(&new);
    cx.write_secret_file(&s.dirs, "secret_id", &new)?;
    admin
        .call(
            "POST",
            &format!("auth/{APPROLE_MOUNT}/role/{role}/secret-id/destroy"),
            Some(json!({"secret_id": old.trim()})),
        )
        .await
        .map_err(verr)?;
    revoke_role_tokens(cx).await?;
    let r = resolve(&mut s, &reference, "job-rotate-id-2", None).await?;
    Ok(expect_value(
        "resolver.md S4: the secret-id file is read again at the next login",
        &r,
        &s.key,
        &v1,
        "the value",
    ))
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

/// `configure` with the auth object `auth(dirs)`: the reply must be a failed
/// `configure` with `config_invalid`.
async fn configure_refused(
    cx: &Cx,
    auth: impl FnOnce(&crate::cx::Dirs) -> serde_json::Value,
) -> Result<Verdict, Verdict> {
    let spec = "resolver.md S1: unusable settings are config_invalid at configure";
    let dirs = cx.dirs()?;
    let vault = cx.vault()?;
    let mut iut = cx.start_iut(&dirs).await?;
    let mut vault_json = json!({"addr": vault.addr(), "auth": auth(&dirs)});
    if let Some(ca) = &vault.ca_cert {
        vault_json["ca_cert"] = json!(ca);
    }
    let reply = iut
        .request(
            "configure",
            json!({"vault": vault_json, "fingerprint_key": crate::backend::random_hex(32),
                   "work_dir": dirs.work, "temp_dir": dirs.tmp, "worker_id": "executor-01"}),
        )
        .await;
    let _ = iut.shutdown().await;
    let reply = match reply {
        Ok(r) => r,
        Err(crate::iut::Exchange::Unsupported(m)) => {
            return Ok(Verdict::Fail(Failure::new(
                spec,
                "a failed configure with config_invalid",
                format!("unsupported ({m})"),
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let outcome = reply.get("outcome").and_then(serde_json::Value::as_str);
    let code = reply.get("code").and_then(serde_json::Value::as_str);
    Ok(
        if outcome == Some("failed") && code == Some("config_invalid") {
            Verdict::Pass
        } else {
            Verdict::Fail(Failure::new(
                spec,
                "a failed configure with config_invalid",
                format!("outcome {outcome:?}, code {code:?}"),
            ))
        },
    )
}
