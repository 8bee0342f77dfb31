//! `lifecycle` scenarios: a token obtained by logging in is renewed while it
//! can be, replaced past its max TTL or when revoked (`resolver.md` T2, V4).

use std::time::Duration;

use super::support::{
    AUDIT, Auth, Session, VAULT, expect_value, own_scope, put_versions, resolve,
    revoke_role_tokens, session,
};
use crate::cx::Cx;
use crate::live_scenario;
use crate::scenario::{Level, Profile, Scenario};
use crate::verdict::{Failure, Verdict};

fn approle(ttl: &'static str, max_ttl: &'static str) -> Auth {
    Auth::AppRole {
        ttl,
        max_ttl,
        bad_secret_id: false,
    }
}

/// Every `lifecycle` scenario.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario::live(
            "lifecycle.renewal",
            Profile::Lifecycle,
            Level::Must,
            "resolver.md T2",
            "Keeps resolving across several 2 s TTLs",
            VAULT,
            live_scenario!(cx, {
                let (mut s, reference, v1) = approle_session(&cx, approle("2s", "30s")).await?;
                Ok(resolve_across_ttls(&mut s, &reference, &v1, 4, "renew").await)
            }),
        ),
        Scenario::live(
            "lifecycle.past-max-ttl",
            Profile::Lifecycle,
            Level::Must,
            "resolver.md T2",
            "Past the token's max TTL, logs in again",
            VAULT,
            live_scenario!(cx, {
                let (mut s, reference, v1) = approle_session(&cx, approle("1s", "2s")).await?;
                let r = resolve(&mut s, &reference, "job-maxttl-1", None).await?;
                let first = expect_value("AppRole login", &r, &s.key, &v1, "the value");
                if first != Verdict::Pass {
                    return Ok(first);
                }
                tokio::time::sleep(Duration::from_millis(3000)).await;
                let r = resolve(&mut s, &reference, "job-maxttl-2", None).await?;
                Ok(expect_value(
                    "resolver.md T2: log in again when the token can no longer be renewed",
                    &r,
                    &s.key,
                    &v1,
                    "the value",
                ))
            }),
        ),
        Scenario::live(
            "lifecycle.revoked",
            Profile::Lifecycle,
            Level::Must,
            "resolver.md V4 (re-authenticate)",
            "After its token is revoked, logs in again",
            VAULT,
            live_scenario!(cx, {
                let (mut s, reference, v1) = approle_session(&cx, approle("10m", "20m")).await?;
                let r = resolve(&mut s, &reference, "job-revoke-1", None).await?;
                let first = expect_value("AppRole login", &r, &s.key, &v1, "the value");
                if first != Verdict::Pass {
                    return Ok(first);
                }
                // An implementation that keeps no token between resolutions has
                // nothing to revoke; the next resolution must work all the same.
                revoke_role_tokens(&cx).await?;
                let r = resolve(&mut s, &reference, "job-revoke-2", None).await?;
                Ok(expect_value(
                    "resolver.md V4: log in again when the token is dead",
                    &r,
                    &s.key,
                    &v1,
                    "the value",
                ))
            }),
        ),
        Scenario::live(
            "lifecycle.renewal-audited",
            Profile::Lifecycle,
            Level::Should,
            "resolver.md T2 (SHOULD renew)",
            "Renewal shows in the audit log",
            AUDIT,
            live_scenario!(cx, {
                let (mut s, reference, v1) = approle_session(&cx, approle("2s", "60s")).await?;
                let v = resolve_across_ttls(&mut s, &reference, &v1, 3, "renewaudit").await;
                if v != Verdict::Pass {
                    return Ok(v);
                }
                // Only this scenario's tokens: AppRole puts the role name in
                // the token's metadata, which the audit log records.
                let role = cx.name("role");
                let renewals = cx
                    .vault()?
                    .audit_requests("auth/token/renew")
                    .unwrap_or_default()
                    .iter()
                    .filter(|e| e.role_name() == Some(role.as_str()))
                    .count();
                Ok(if renewals > 0 {
                    Verdict::Pass
                } else {
                    Verdict::Fail(Failure::new(
                        "resolver.md T2: renew the token while it is alive (SHOULD)",
                        "a renew-self request in the audit log",
                        "no renewal; the token was only ever replaced or used",
                    ))
                })
            }),
        ),
    ]
}

/// One secret version and an AppRole session that may read it; returns the
/// session, the ref and the value.
async fn approle_session(
    cx: &Cx,
    auth: Auth,
) -> Result<(Session, String, secrecy::SecretString), Verdict> {
    let v1 = cx.fake_token();
    let path = put_versions(cx, &[&v1]).await?;
    let s = session(cx, &own_scope(cx), auth, None).await?;
    Ok((s, format!("vault://kv/{path}#token"), v1))
}

/// Resolves `reference` `times` times, 1.5 s apart: each must give `value`.
async fn resolve_across_ttls(
    s: &mut Session,
    reference: &str,
    value: &secrecy::SecretString,
    times: usize,
    tag: &str,
) -> Verdict {
    for i in 0..times {
        let r = match resolve(s, reference, &format!("job-{tag}-{i}"), None).await {
            Ok(r) => r,
            Err(v) => return v,
        };
        let v = expect_value(
            &format!(
                "resolver.md T2: resolve {} of {times}, {:.1} s in: the token is renewed or replaced",
                i + 1,
                i as f32 * 1.5
            ),
            &r,
            &s.key,
            value,
            "the value",
        );
        if v != Verdict::Pass {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    Verdict::Pass
}
