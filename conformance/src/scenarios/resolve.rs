//! `resolve`, `auth` and `lifecycle` scenarios: a real Vault, provisioned per
//! scenario under its own prefix, with its own policy and token or role.
//!
//! The harness writes the secret values itself (fresh fake tokens), so it
//! knows the HMAC fingerprint to expect and every value to look for in the
//! implementation's output.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use crate::iut::Iut;
use crate::runner::{Cx, Dirs, Needs, Scenario};
use crate::scenario::{Failure, Level, Profile, Verdict};
use crate::vault::{APPROLE_MOUNT, JOB_ID_HEADER, KV_MOUNT, OTHER_MOUNT, random_hex};

/// A configured implementation process and what it was given.
pub struct Session {
    /// The process.
    pub iut: Iut,
    /// The fingerprint key.
    pub key: Vec<u8>,
    /// Its directories.
    pub dirs: Dirs,
}

/// How a session authenticates.
pub enum Auth {
    /// A token with these policies and TTL, in a token file.
    Token { ttl: &'static str },
    /// The same, with the token file ending in a newline (as `echo "$TOKEN" >
    /// F` writes it): the IUT must trim it (protocol.md §3.2).
    TokenLine { ttl: &'static str },
    /// An AppRole role with these TTLs; `bad_secret_id` writes a wrong secret id.
    AppRole {
        ttl: &'static str,
        max_ttl: &'static str,
        bad_secret_id: bool,
    },
}

/// The HMAC-SHA-256 fingerprint the protocol asks for.
pub fn fingerprint(key: &[u8], value: &SecretString) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(value.expose_secret().as_bytes());
    format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) fn verr(e: impl std::fmt::Display) -> Verdict {
    Verdict::Error(format!("provisioning Vault: {e}"))
}

/// A read policy on `kv/data/<p>` and `kv/metadata/<p>` for each prefix pattern.
fn read_policy(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| {
            format!(
                "path \"{KV_MOUNT}/data/{p}\" {{ capabilities = [\"read\"] }}\n\
                 path \"{KV_MOUNT}/metadata/{p}\" {{ capabilities = [\"read\"] }}\n"
            )
        })
        .collect()
}

/// Starts a process configured for Vault with `auth`, a read policy on
/// `readable` (globs under the kv mount) and an optional ref policy.
pub async fn session(
    cx: &Cx,
    readable: &[String],
    auth: Auth,
    ref_policy: Option<Value>,
) -> Result<Session, Verdict> {
    let extra = match ref_policy {
        Some(p) => json!({ "ref_policy": p }),
        None => json!({}),
    };
    session_with(cx, readable, auth, extra, &[]).await
}

/// [`session`] with extra `configure` fields and environment variables.
pub async fn session_with(
    cx: &Cx,
    readable: &[String],
    auth: Auth,
    extra: Value,
    env: &[(String, std::ffi::OsString)],
) -> Result<Session, Verdict> {
    let vault = cx.vault()?;
    let policy = cx.name("read");
    vault
        .admin
        .put_policy(&policy, &read_policy(readable))
        .await
        .map_err(verr)?;
    let dirs = cx.dirs()?;
    let auth_json = match auth {
        Auth::Token { ttl } | Auth::TokenLine { ttl } => {
            let token = vault
                .admin
                .create_token(&[&policy], ttl, true)
                .await
                .map_err(verr)?;
            cx.register(&token);
            let stored = if matches!(auth, Auth::TokenLine { .. }) {
                use secrecy::ExposeSecret;
                SecretString::from(format!("{}\n", token.expose_secret()))
            } else {
                token
            };
            let file = cx.write_secret_file(&dirs, "token", &stored)?;
            json!({"method": "token", "token_file": file})
        }
        Auth::AppRole {
            ttl,
            max_ttl,
            bad_secret_id,
        } => {
            let role = cx.name("role");
            let role_id = vault
                .admin
                .approle_role(APPROLE_MOUNT, &role, &[&policy], ttl, max_ttl)
                .await
                .map_err(verr)?;
            let secret_id = if bad_secret_id {
                SecretString::from(format!("00000000-0000-4000-8000-{}", random_hex(6)))
            } else {
                vault
                    .admin
                    .approle_secret_id(APPROLE_MOUNT, &role)
                    .await
                    .map_err(verr)?
            };
            cx.register(&secret_id);
            let rf = cx.write_secret_file(&dirs, "role_id", &SecretString::from(role_id))?;
            let sf = cx.write_secret_file(&dirs, "secret_id", &secret_id)?;
            json!({"method": "approle", "mount": APPROLE_MOUNT, "role_id_file": rf, "secret_id_file": sf})
        }
    };
    let key = random_hex(32);
    let mut iut = cx.start_iut_env(&dirs, env).await?;
    let mut configure = json!({
        "vault": {"addr": vault.addr(), "auth": auth_json, "job_id_header": JOB_ID_HEADER},
        "fingerprint_key": key,
        "work_dir": dirs.work,
        "temp_dir": dirs.tmp,
        "worker_id": "executor-01",
    });
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            if k == "vault_addr" {
                // Where the implementation reaches Vault (e.g. through a proxy).
                configure["vault"]["addr"] = v;
            } else {
                configure[k] = v;
            }
        }
    }
    let reply = iut.request("configure", configure).await?;
    if reply.get("outcome").and_then(Value::as_str) != Some("configured") {
        return Err(Verdict::Fail(Failure::new(
            "protocol.md §3.2: valid settings are accepted",
            "outcome configured",
            format!(
                "outcome {} code {}",
                reply["outcome"],
                reply.get("code").unwrap_or(&Value::Null)
            ),
        )));
    }
    Ok(Session {
        iut,
        key: hex::decode(key).expect("hex"),
        dirs,
    })
}

/// Sends `resolve` for `reference` with a job id.
pub async fn resolve(
    s: &mut Session,
    reference: &str,
    job_id: &str,
    repository: Option<&str>,
) -> Result<Map<String, Value>, Verdict> {
    let mut req = json!({"ref": reference, "job_id": job_id});
    if let Some(r) = repository {
        req["repository"] = json!(r);
    }
    Ok(s.iut.request("resolve", req).await?)
}

fn describe(reply: &Map<String, Value>) -> String {
    match reply.get("outcome").and_then(Value::as_str) {
        Some("resolved") => "resolved to a value (fingerprint given)".into(),
        _ => format!(
            "failed with code {}",
            reply.get("code").unwrap_or(&Value::Null)
        ),
    }
}

/// The reply must be the fingerprint of `value`.
pub fn expect_value(
    spec: &str,
    reply: &Map<String, Value>,
    key: &[u8],
    value: &SecretString,
    what: &str,
) -> Verdict {
    let want = fingerprint(key, value);
    if reply.get("fingerprint").and_then(Value::as_str) == Some(want.as_str()) {
        return Verdict::Pass;
    }
    let actual = match reply.get("fingerprint") {
        Some(_) => "resolved to a different value".to_string(),
        None => describe(reply),
    };
    Verdict::Fail(Failure::new(spec, format!("resolved to {what}"), actual))
}

/// The reply must fail with `code`.
pub fn expect_code(spec: &str, reply: &Map<String, Value>, code: &str) -> Verdict {
    if reply.get("outcome").and_then(Value::as_str) == Some("failed")
        && reply.get("code").and_then(Value::as_str) == Some(code)
    {
        Verdict::Pass
    } else {
        Verdict::Fail(Failure::new(
            spec,
            format!("failed with code \"{code}\""),
            describe(reply),
        ))
    }
}

/// No audit entry for any path under the scenario's prefix.
pub(crate) fn expect_no_vault_request(cx: &Cx, spec: &str) -> Verdict {
    let Ok(vault) = cx.vault() else {
        return Verdict::Pass;
    };
    // Only reads: the harness's own provisioning writes are in the log too.
    let reads = vault.audit_entries(&cx.prefix()).map(|all| {
        all.into_iter()
            .filter(|e| {
                e["request"]["operation"] != "create" && e["request"]["operation"] != "update"
            })
            .collect::<Vec<_>>()
    });
    match reads {
        Some(entries) if !entries.is_empty() => Verdict::Fail(Failure::new(
            spec,
            "the ref is rejected before any Vault request",
            format!(
                "{} Vault request(s) under the scenario's prefix, e.g. {} {}",
                entries.len(),
                entries[0]["request"]["operation"].as_str().unwrap_or("?"),
                entries[0]["request"]["path"].as_str().unwrap_or("?")
            ),
        )),
        _ => Verdict::Pass,
    }
}

pub(crate) fn and(a: Verdict, b: Verdict) -> Verdict {
    if a == Verdict::Pass { b } else { a }
}

#[macro_export]
#[doc(hidden)]
macro_rules! live_scenario {
    ($cx:ident, $body:block) => {
        std::sync::Arc::new(
            move |$cx: $crate::runner::Cx| -> $crate::runner::BoxFuture<$crate::scenario::Verdict> {
                Box::pin(async move {
                    let r: Result<$crate::scenario::Verdict, $crate::scenario::Verdict> =
                        async { $body }.await;
                    r.unwrap_or_else(|v| v)
                })
            },
        )
    };
}

pub(crate) const VAULT: Needs = Needs {
    vault: true,
    audit: false,
};
pub(crate) const AUDIT: Needs = Needs {
    vault: true,
    audit: true,
};

/// A token session that can read everything under the scenario's prefix.
async fn own_prefix(cx: &Cx) -> Result<Session, Verdict> {
    session(cx, &own_scope(cx), Auth::Token { ttl: "10m" }, None).await
}

/// Writes `values` as successive versions of field `token` at `<prefix>/app`.
/// The read scope every scenario gets by default: its own prefix, nothing else.
fn own_scope(cx: &Cx) -> [String; 1] {
    [format!("{}/*", cx.prefix())]
}

/// Resolves the `token` field of the scenario secret at `path` (see
/// [`put_versions`]).
async fn resolve_token(
    s: &mut Session,
    path: &str,
    job_id: &str,
) -> Result<Map<String, Value>, Verdict> {
    resolve(s, &format!("vault://kv/{path}#token"), job_id, None).await
}

async fn put_versions(cx: &Cx, values: &[&SecretString]) -> Result<String, Verdict> {
    let vault = cx.vault()?;
    let path = format!("{}/app", cx.prefix());
    for v in values {
        vault
            .admin
            .kv_put(KV_MOUNT, &path, &[("token", v)])
            .await
            .map_err(verr)?;
    }
    Ok(path)
}

/// Revokes every token logged in with the scenario's AppRole role (found by
/// accessor, so the harness never needs the implementation's token).
async fn revoke_role_tokens(cx: &Cx) -> Result<usize, Verdict> {
    let admin = &cx.vault()?.admin;
    let role = cx.name("role");
    let list = admin
        .call("LIST", "auth/token/accessors", None)
        .await
        .map_err(verr)?;
    let mut revoked = 0;
    let accessors = list["data"]["keys"].as_array().cloned().unwrap_or_default();
    for accessor in accessors.iter().filter_map(Value::as_str) {
        let info = admin
            .call(
                "POST",
                "auth/token/lookup-accessor",
                Some(json!({"accessor": accessor})),
            )
            .await;
        if let Ok(info) = info
            && info["data"]["meta"]["role_name"].as_str() == Some(role.as_str())
        {
            admin
                .call(
                    "POST",
                    "auth/token/revoke-accessor",
                    Some(json!({"accessor": accessor})),
                )
                .await
                .map_err(verr)?;
            revoked += 1;
        }
    }
    Ok(revoked)
}

/// Every resolve, auth and lifecycle scenario.
pub fn scenarios() -> Vec<Scenario> {
    use Level::{Must, Should};
    use Profile::{Auth as AuthP, Lifecycle, Resolve};
    vec![
        Scenario::live(
            "resolve.latest",
            Resolve,
            Must,
            "secret-ref.md §1 (no version: latest)",
            "An unpinned ref resolves to the latest version",
            VAULT,
            live_scenario!(cx, {
                let (v1, v2) = (cx.fake_token(), cx.fake_token());
                let path = put_versions(&cx, &[&v1, &v2]).await?;
                let mut s = own_prefix(&cx).await?;
                let r = resolve_token(&mut s, &path, "job-latest").await?;
                Ok(expect_value(
                    "secret-ref.md §1: a ref without a version resolves to the latest version",
                    &r,
                    &s.key,
                    &v2,
                    "version 2 (the latest)",
                ))
            }),
        ),
        Scenario::live(
            "resolve.pinned-version",
            Resolve,
            Must,
            "secret-ref.md §1 (version pins)",
            "A ref with ?version=1 resolves to version 1 after rotation",
            VAULT,
            live_scenario!(cx, {
                let (v1, v2) = (cx.fake_token(), cx.fake_token());
                let path = put_versions(&cx, &[&v1, &v2]).await?;
                let mut s = own_prefix(&cx).await?;
                let r = resolve(
                    &mut s,
                    &format!("vault://kv/{path}?version=1#token"),
                    "job-pinned",
                    None,
                )
                .await?;
                Ok(expect_value(
                    "secret-ref.md §1: a pinned ref resolves to that version",
                    &r,
                    &s.key,
                    &v1,
                    "version 1",
                ))
            }),
        ),
        Scenario::live(
            "resolve.secret-missing",
            Resolve,
            Must,
            "errors.md secret_not_found",
            "Nothing at the path: secret_not_found",
            VAULT,
            live_scenario!(cx, {
                let mut s = own_prefix(&cx).await?;
                let r = resolve(
                    &mut s,
                    &format!("vault://kv/{}/nothing#token", cx.prefix()),
                    "job-missing",
                    None,
                )
                .await?;
                Ok(expect_code(
                    "errors.md: nothing at the path is secret_not_found",
                    &r,
                    "secret_not_found",
                ))
            }),
        ),
        Scenario::live(
            "resolve.field-missing",
            Resolve,
            Must,
            "errors.md secret_field_missing",
            "The secret has no such field: secret_field_missing",
            VAULT,
            live_scenario!(cx, {
                let v1 = cx.fake_token();
                let path = put_versions(&cx, &[&v1]).await?;
                let mut s = own_prefix(&cx).await?;
                let r = resolve(
                    &mut s,
                    &format!("vault://kv/{path}#nope"),
                    "job-field",
                    None,
                )
                .await?;
                Ok(expect_code(
                    "errors.md: a missing field is secret_field_missing",
                    &r,
                    "secret_field_missing",
                ))
            }),
        ),
        Scenario::live(
            "resolve.version-deleted",
            Resolve,
            Must,
            "errors.md secret_version_deleted",
            "A soft-deleted version: secret_version_deleted",
            VAULT,
            live_scenario!(cx, {
                let (v1, v2) = (cx.fake_token(), cx.fake_token());
                let path = put_versions(&cx, &[&v1, &v2]).await?;
                cx.vault()?
                    .admin
                    .kv_delete_versions(KV_MOUNT, &path, &[1])
                    .await
                    .map_err(verr)?;
                let mut s = own_prefix(&cx).await?;
                let r = resolve(
                    &mut s,
                    &format!("vault://kv/{path}?version=1#token"),
                    "job-deleted",
                    None,
                )
                .await?;
                Ok(expect_code(
                    "errors.md: a soft-deleted version is secret_version_deleted",
                    &r,
                    "secret_version_deleted",
                ))
            }),
        ),
        Scenario::live(
            "resolve.version-destroyed",
            Resolve,
            Must,
            "errors.md secret_version_destroyed",
            "A destroyed version: secret_version_destroyed",
            VAULT,
            live_scenario!(cx, {
                let (v1, v2) = (cx.fake_token(), cx.fake_token());
                let path = put_versions(&cx, &[&v1, &v2]).await?;
                cx.vault()?
                    .admin
                    .kv_destroy_versions(KV_MOUNT, &path, &[1])
                    .await
                    .map_err(verr)?;
                let mut s = own_prefix(&cx).await?;
                let r = resolve(
                    &mut s,
                    &format!("vault://kv/{path}?version=1#token"),
                    "job-destroyed",
                    None,
                )
                .await?;
                Ok(expect_code(
                    "errors.md: a destroyed version is secret_version_destroyed",
                    &r,
                    "secret_version_destroyed",
                ))
            }),
        ),
        Scenario::live(
            "resolve.denied-path",
            Resolve,
            Must,
            "errors.md vault_permission_denied",
            "The policy allows only another path: vault_permission_denied",
            VAULT,
            live_scenario!(cx, {
                let v1 = cx.fake_token();
                let path = put_versions(&cx, &[&v1]).await?;
                let mut s = session(
                    &cx,
                    &[format!("{}/allowed/*", cx.prefix())],
                    Auth::Token { ttl: "10m" },
                    None,
                )
                .await?;
                let r = resolve_token(&mut s, &path, "job-denied").await?;
                Ok(expect_code(
                    "errors.md: a policy denial with a live token is vault_permission_denied",
                    &r,
                    "vault_permission_denied",
                ))
            }),
        ),
        Scenario::live(
            "resolve.mount-not-allowed",
            Resolve,
            Must,
            "secret-ref.md §4, protocol.md §3.5",
            "A ref on a mount outside the allow-list is refused before any Vault request",
            AUDIT,
            live_scenario!(cx, {
                let v1 = cx.fake_token();
                // The secret really exists on another KV mount, and the token may
                // read it, so an implementation that skips the check would read it.
                let path = format!("{}/app", cx.prefix());
                cx.vault()?
                    .admin
                    .kv_put(OTHER_MOUNT, &path, &[("token", &v1)])
                    .await
                    .map_err(verr)?;
                let mut s = own_prefix(&cx).await?;
                let other = format!(
                    "path \"{OTHER_MOUNT}/data/{}/*\" {{ capabilities = [\"read\"] }}\n",
                    cx.prefix()
                );
                cx.vault()?
                    .admin
                    .put_policy(
                        &cx.name("read"),
                        &format!("{}{other}", read_policy(&own_scope(&cx))),
                    )
                    .await
                    .map_err(verr)?;
                let r = resolve(
                    &mut s,
                    &format!("vault://{OTHER_MOUNT}/{path}#token"),
                    "job-mount",
                    None,
                )
                .await?;
                Ok(and(
                    expect_code(
                        "secret-ref.md §4: a mount outside the allow-list is ref_mount_not_allowed",
                        &r,
                        "ref_mount_not_allowed",
                    ),
                    expect_no_vault_request(
                        &cx,
                        "protocol.md §3.5: policy is applied before any Vault request",
                    ),
                ))
            }),
        ),
        Scenario::live(
            "resolve.traversal",
            Resolve,
            Must,
            "secret-ref.md R8, protocol.md §3.5",
            "A traversal ref is refused before any Vault request",
            AUDIT,
            live_scenario!(cx, {
                let mut s = own_prefix(&cx).await?;
                let r = resolve(
                    &mut s,
                    &format!("vault://kv/{}/a/../app#token", cx.prefix()),
                    "job-traversal",
                    None,
                )
                .await?;
                Ok(and(
                    expect_code(
                        "secret-ref.md R8: `..` is ref_traversal",
                        &r,
                        "ref_traversal",
                    ),
                    expect_no_vault_request(
                        &cx,
                        "protocol.md §3.5: syntax is checked before any Vault request",
                    ),
                ))
            }),
        ),
        Scenario::live(
            "resolve.over-length",
            Resolve,
            Must,
            "secret-ref.md R2, protocol.md §3.5",
            "A 513-byte ref is refused before any Vault request",
            AUDIT,
            live_scenario!(cx, {
                let mut s = own_prefix(&cx).await?;
                let head = format!("vault://kv/{}/", cx.prefix());
                let pad = 513 - head.len() - "#token".len();
                let r = resolve(
                    &mut s,
                    &format!("{head}{}#token", "a".repeat(pad)),
                    "job-long",
                    None,
                )
                .await?;
                Ok(and(
                    expect_code(
                        "secret-ref.md R2: over 512 bytes is ref_too_long",
                        &r,
                        "ref_too_long",
                    ),
                    expect_no_vault_request(
                        &cx,
                        "protocol.md §3.5: length is checked before any Vault request",
                    ),
                ))
            }),
        ),
        Scenario::live(
            "resolve.out-of-scope",
            Resolve,
            Must,
            "secret-ref.md §4 scopes, protocol.md §3.5",
            "A job for one repository cannot name another's credential",
            AUDIT,
            live_scenario!(cx, {
                let v1 = cx.fake_token();
                let other = format!("{}/repos/Acme/Other", cx.prefix());
                cx.vault()?
                    .admin
                    .kv_put(KV_MOUNT, &other, &[("github_token", &v1)])
                    .await
                    .map_err(verr)?;
                let scope = format!("{}/repos/{{repository}}", cx.prefix());
                let mut s = session(
                    &cx,
                    &[
                        format!("{}/*", cx.prefix()),
                        format!("{}/repos/*/*", cx.prefix()),
                    ],
                    Auth::Token { ttl: "10m" },
                    Some(json!({"allowed_mounts": ["kv"], "scopes": [scope]})),
                )
                .await?;
                let r = resolve(
                    &mut s,
                    &format!("vault://kv/{other}#github_token"),
                    "job-scope",
                    Some("Acme/Api"),
                )
                .await?;
                Ok(and(
                    expect_code(
                        "secret-ref.md §4: a path outside the job's scopes is ref_out_of_scope",
                        &r,
                        "ref_out_of_scope",
                    ),
                    expect_no_vault_request(
                        &cx,
                        "protocol.md §3.5: scopes are checked before any Vault request",
                    ),
                ))
            }),
        ),
        Scenario::live(
            "resolve.least-privilege",
            Resolve,
            Should,
            "SecretStore.md goal 3 (least privilege)",
            "Resolving reads only the referenced secret, though the token could read more",
            AUDIT,
            live_scenario!(cx, {
                let (v1, other) = (cx.fake_token(), cx.fake_token());
                let path = put_versions(&cx, &[&v1]).await?;
                let vault = cx.vault()?;
                let prefix = cx.prefix();
                for extra in [prefix.clone(), format!("{prefix}/sibling")] {
                    vault
                        .admin
                        .kv_put(KV_MOUNT, &extra, &[("token", &other)])
                        .await
                        .map_err(verr)?;
                }
                let mut s = session(
                    &cx,
                    &[prefix.clone(), format!("{prefix}/*")],
                    Auth::Token { ttl: "10m" },
                    None,
                )
                .await?;
                let r = resolve_token(&mut s, &path, "job-least").await?;
                let first = expect_value("resolve works", &r, &s.key, &v1, "the value");
                if first != Verdict::Pass {
                    return Ok(first);
                }
                let allowed = [
                    format!("{KV_MOUNT}/data/{path}"),
                    format!("{KV_MOUNT}/metadata/{path}"),
                ];
                let extra: Vec<String> = vault
                    .audit_entries(&prefix)
                    .unwrap_or_default()
                    .iter()
                    .filter(|e| {
                        e["request"]["operation"] != "create"
                            && e["request"]["operation"] != "update"
                    })
                    .filter_map(|e| e["request"]["path"].as_str().map(str::to_string))
                    .filter(|p| !allowed.contains(p))
                    .collect();
                Ok(if extra.is_empty() {
                    Verdict::Pass
                } else {
                    Verdict::Fail(Failure::new(
                        "SecretStore.md: least privilege; read only the referenced path (SHOULD)",
                        format!("only {} (and its metadata)", allowed[0]),
                        format!("also {}", extra.join(", ")),
                    ))
                })
            }),
        ),
        Scenario::live(
            "resolve.job-id-header",
            Resolve,
            Should,
            "protocol.md §3.2 job_id_header",
            "The job id is sent with Vault requests and shows in the audit log",
            AUDIT,
            live_scenario!(cx, {
                let v1 = cx.fake_token();
                let path = put_versions(&cx, &[&v1]).await?;
                let mut s = own_prefix(&cx).await?;
                let job = format!("job-{}", random_hex(4));
                let r = resolve_token(&mut s, &path, &job).await?;
                let first = expect_value("resolve works", &r, &s.key, &v1, "the value");
                if first != Verdict::Pass {
                    return Ok(first);
                }
                let entries = cx.vault()?.audit_entries(&path).unwrap_or_default();
                let header = JOB_ID_HEADER.to_ascii_lowercase();
                let seen = entries.iter().any(|e| {
                    let h = &e["request"]["headers"][&header];
                    h.as_str() == Some(job.as_str())
                        || h.as_array()
                            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(job.as_str())))
                });
                Ok(if seen {
                    Verdict::Pass
                } else {
                    Verdict::Fail(Failure::new(
                        "protocol.md §3.2: the job id SHOULD be sent in the job id header",
                        format!("an audit entry for the read with header {JOB_ID_HEADER}: {job}"),
                        format!(
                            "{} audit entries for the path, none with the job id",
                            entries.len()
                        ),
                    ))
                })
            }),
        ),
        Scenario::live(
            "auth.token-file",
            AuthP,
            Must,
            "protocol.md §3.2 token auth",
            "A token read from a 0600 token file (ending in a newline) resolves",
            VAULT,
            live_scenario!(cx, {
                let v1 = cx.fake_token();
                let path = put_versions(&cx, &[&v1]).await?;
                let mut s =
                    session(&cx, &own_scope(&cx), Auth::TokenLine { ttl: "10m" }, None).await?;
                let r = resolve_token(&mut s, &path, "job-tokenfile").await?;
                Ok(expect_value(
                    "token auth from a file",
                    &r,
                    &s.key,
                    &v1,
                    "the value",
                ))
            }),
        ),
        Scenario::live(
            "auth.approle",
            AuthP,
            Must,
            "protocol.md §3.2 approle auth",
            "AppRole login from role id and secret id files resolves",
            VAULT,
            live_scenario!(cx, {
                let v1 = cx.fake_token();
                let path = put_versions(&cx, &[&v1]).await?;
                let mut s = session(
                    &cx,
                    &own_scope(&cx),
                    Auth::AppRole {
                        ttl: "10m",
                        max_ttl: "20m",
                        bad_secret_id: false,
                    },
                    None,
                )
                .await?;
                let r = resolve_token(&mut s, &path, "job-approle").await?;
                Ok(expect_value("AppRole login", &r, &s.key, &v1, "the value"))
            }),
        ),
        Scenario::live(
            "auth.approle-bad-secret-id",
            AuthP,
            Must,
            "errors.md vault_auth_failed",
            "A wrong secret id: vault_auth_failed",
            VAULT,
            live_scenario!(cx, {
                let v1 = cx.fake_token();
                let path = put_versions(&cx, &[&v1]).await?;
                let mut s = session(
                    &cx,
                    &own_scope(&cx),
                    Auth::AppRole {
                        ttl: "10m",
                        max_ttl: "20m",
                        bad_secret_id: true,
                    },
                    None,
                )
                .await?;
                let r = resolve_token(&mut s, &path, "job-badsecret").await?;
                Ok(expect_code(
                    "errors.md: a failed login is vault_auth_failed",
                    &r,
                    "vault_auth_failed",
                ))
            }),
        ),
        Scenario::live(
            "auth.token-file-refreshed",
            AuthP,
            Must,
            "protocol.md §3.2 token file re-read",
            "The token file is rewritten by an agent after expiry; the next resolve uses the new token",
            VAULT,
            live_scenario!(cx, {
                let v1 = cx.fake_token();
                let path = put_versions(&cx, &[&v1]).await?;
                let mut s = session(&cx, &own_scope(&cx), Auth::Token { ttl: "4s" }, None).await?;
                let reference = format!("vault://kv/{path}#token");
                let r = resolve(&mut s, &reference, "job-refresh-1", None).await?;
                let first = expect_value("token auth", &r, &s.key, &v1, "the value");
                if first != Verdict::Pass {
                    return Ok(first);
                }
                tokio::time::sleep(Duration::from_millis(5000)).await;
                // The simulated agent: a fresh token in the same file.
                let vault = cx.vault()?;
                let fresh = vault
                    .admin
                    .create_token(&[&cx.name("read")], "10m", true)
                    .await
                    .map_err(verr)?;
                cx.register(&fresh);
                cx.write_secret_file(&s.dirs, "token", &fresh)?;
                let r = resolve(&mut s, &reference, "job-refresh-2", None).await?;
                Ok(expect_value(
                    "protocol.md §3.2: a dead token is replaced by re-reading the token file",
                    &r,
                    &s.key,
                    &v1,
                    "the value",
                ))
            }),
        ),
        Scenario::live(
            "lifecycle.renewal",
            Lifecycle,
            Must,
            "SecretStore.md token lifecycle",
            "Keeps resolving across several 2 s TTLs",
            VAULT,
            live_scenario!(cx, {
                let v1 = cx.fake_token();
                let path = put_versions(&cx, &[&v1]).await?;
                let mut s = session(
                    &cx,
                    &own_scope(&cx),
                    Auth::AppRole {
                        ttl: "2s",
                        max_ttl: "30s",
                        bad_secret_id: false,
                    },
                    None,
                )
                .await?;
                let reference = format!("vault://kv/{path}#token");
                for i in 0..4 {
                    let r = resolve(&mut s, &reference, &format!("job-renew-{i}"), None).await?;
                    let v = expect_value(
                        &format!(
                            "resolve {} of 4, {:.1} s in: the token is renewed or replaced",
                            i + 1,
                            i as f32 * 1.5
                        ),
                        &r,
                        &s.key,
                        &v1,
                        "the value",
                    );
                    if v != Verdict::Pass {
                        return Ok(v);
                    }
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                }
                Ok(Verdict::Pass)
            }),
        ),
        Scenario::live(
            "lifecycle.past-max-ttl",
            Lifecycle,
            Must,
            "SecretStore.md token lifecycle",
            "Past the token's max TTL, logs in again",
            VAULT,
            live_scenario!(cx, {
                let v1 = cx.fake_token();
                let path = put_versions(&cx, &[&v1]).await?;
                let mut s = session(
                    &cx,
                    &own_scope(&cx),
                    Auth::AppRole {
                        ttl: "1s",
                        max_ttl: "2s",
                        bad_secret_id: false,
                    },
                    None,
                )
                .await?;
                let reference = format!("vault://kv/{path}#token");
                let r = resolve(&mut s, &reference, "job-maxttl-1", None).await?;
                let first = expect_value("AppRole login", &r, &s.key, &v1, "the value");
                if first != Verdict::Pass {
                    return Ok(first);
                }
                tokio::time::sleep(Duration::from_millis(3000)).await;
                let r = resolve(&mut s, &reference, "job-maxttl-2", None).await?;
                Ok(expect_value(
                    "SecretStore.md: re-authenticate when the token can no longer be renewed",
                    &r,
                    &s.key,
                    &v1,
                    "the value",
                ))
            }),
        ),
        Scenario::live(
            "lifecycle.revoked",
            Lifecycle,
            Must,
            "SecretStore.md token lifecycle (re-authenticate)",
            "After its token is revoked, logs in again",
            VAULT,
            live_scenario!(cx, {
                let v1 = cx.fake_token();
                let path = put_versions(&cx, &[&v1]).await?;
                let approle = Auth::AppRole {
                    ttl: "10m",
                    max_ttl: "20m",
                    bad_secret_id: false,
                };
                let mut s = session(&cx, &own_scope(&cx), approle, None).await?;
                let reference = format!("vault://kv/{path}#token");
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
                    "SecretStore.md: re-authenticate when the token is dead",
                    &r,
                    &s.key,
                    &v1,
                    "the value",
                ))
            }),
        ),
        Scenario::live(
            "lifecycle.renewal-audited",
            Lifecycle,
            Should,
            "SecretStore.md token lifecycle",
            "Renewal shows in the audit log",
            AUDIT,
            live_scenario!(cx, {
                let v1 = cx.fake_token();
                let path = put_versions(&cx, &[&v1]).await?;
                let mut s = session(
                    &cx,
                    &own_scope(&cx),
                    Auth::AppRole {
                        ttl: "2s",
                        max_ttl: "60s",
                        bad_secret_id: false,
                    },
                    None,
                )
                .await?;
                let reference = format!("vault://kv/{path}#token");
                for i in 0..3 {
                    let r =
                        resolve(&mut s, &reference, &format!("job-renewaudit-{i}"), None).await?;
                    let v = expect_value("resolve across TTLs", &r, &s.key, &v1, "the value");
                    if v != Verdict::Pass {
                        return Ok(v);
                    }
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                }
                // Only this scenario's tokens: AppRole puts the role name in
                // the token's metadata, which the audit log records.
                let role = cx.name("role");
                let renewals = cx
                    .vault()?
                    .audit_entries("auth/token/renew")
                    .unwrap_or_default()
                    .iter()
                    .filter(|e| e["auth"]["metadata"]["role_name"].as_str() == Some(role.as_str()))
                    .count();
                Ok(if renewals > 0 {
                    Verdict::Pass
                } else {
                    Verdict::Fail(Failure::new(
                        "SecretStore.md: renew periodically while healthy (SHOULD)",
                        "a renew-self request in the audit log",
                        "no renewal; the token was only ever replaced or used",
                    ))
                })
            }),
        ),
    ]
}
