//! What every live scenario is made of: a configured implementation process
//! ([`Session`]) with a policy and a token or AppRole role of the scenario's
//! own, provisioning helpers, and the checks of a reply (`expect_*`).
//!
//! The harness writes the secret values itself (fresh fake tokens), so it
//! knows the HMAC fingerprint to expect and every value to look for in the
//! implementation's output.

use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use crate::backend::{APPROLE_MOUNT, JOB_ID_HEADER, KV_MOUNT, random_hex};
use crate::cx::{Cx, Dirs};
use crate::iut::Iut;
use crate::scenario::Needs;
use crate::verdict::{Failure, Verdict};

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
#[derive(Clone, Copy, Debug)]
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

/// A provisioning failure: an `error` verdict (the harness, not the IUT).
pub fn verr(e: impl std::fmt::Display) -> Verdict {
    Verdict::Error(format!("provisioning Vault: {e}"))
}

/// A read policy on `kv/data/<p>` and `kv/metadata/<p>` for each prefix pattern.
pub fn read_policy(paths: &[String]) -> String {
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
    session_hcl(cx, &read_policy(readable), auth, extra, env).await
}

/// [`session_with`] with the token's policy given as HCL (the scenario's
/// policy `read`, whatever it allows).
pub async fn session_hcl(
    cx: &Cx,
    hcl: &str,
    auth: Auth,
    extra: Value,
    env: &[(String, std::ffi::OsString)],
) -> Result<Session, Verdict> {
    let vault = cx.vault()?;
    let policy = cx.name("read");
    vault.admin.put_policy(&policy, hcl).await.map_err(verr)?;
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
    let mut vault_json =
        json!({"addr": vault.addr(), "auth": auth_json, "job_id_header": JOB_ID_HEADER});
    if let Some(ca) = &vault.ca_cert {
        // A copy among the process's credential files: the IUT reads it
        // from its own directories like every other file it is given.
        let copy = dirs.creds.join("vault-ca.pem");
        std::fs::copy(ca, &copy).map_err(|e| Verdict::Error(format!("CA file: {e}")))?;
        vault_json["ca_cert"] = json!(copy);
    }
    let mut configure = json!({
        "vault": vault_json,
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
            } else if k == "vault_ca_cert" {
                // The CA of what is at `vault_addr` (a relay's own), copied
                // among the credential files like Vault's.
                let copy = dirs.creds.join("vault-ca.pem");
                std::fs::copy(v.as_str().unwrap_or_default(), &copy)
                    .map_err(|e| Verdict::Error(format!("CA file: {e}")))?;
                configure["vault"]["ca_cert"] = json!(copy);
            } else if k == "vault_cluster_addrs" {
                // The cluster's other nodes (resolver.md §13).
                configure["vault"]["cluster_addrs"] = v;
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

/// A reply to `resolve`, described without any value.
pub fn describe(reply: &Map<String, Value>) -> String {
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

/// No read or list by the implementation under the scenario's prefix.
pub fn expect_no_vault_request(cx: &Cx, spec: &str) -> Verdict {
    let Ok(vault) = cx.vault() else {
        return Verdict::Pass;
    };
    match vault.iut_requests(&cx.prefix()) {
        Some(entries) if !entries.is_empty() => Verdict::Fail(Failure::new(
            spec,
            "the ref is rejected before any Vault request",
            format!(
                "{} Vault request(s) under the scenario's prefix, e.g. {} {}",
                entries.len(),
                entries[0].operation(),
                entries[0].path()
            ),
        )),
        _ => Verdict::Pass,
    }
}

/// The first verdict that is not a pass (both checks must hold).
pub fn and(a: Verdict, b: Verdict) -> Verdict {
    if a == Verdict::Pass { b } else { a }
}

/// Needs a Vault server.
pub const VAULT: Needs = Needs {
    vault: true,
    audit: false,
};
/// Needs a Vault server and its audit log.
pub const AUDIT: Needs = Needs {
    vault: true,
    audit: true,
};

/// A token session that can read everything under the scenario's prefix.
pub async fn own_prefix(cx: &Cx) -> Result<Session, Verdict> {
    session(cx, &own_scope(cx), Auth::Token { ttl: "10m" }, None).await
}

/// The read scope every scenario gets by default: its own prefix, nothing else.
pub fn own_scope(cx: &Cx) -> [String; 1] {
    [format!("{}/*", cx.prefix())]
}

/// Resolves the `token` field of the scenario secret at `path` (see
/// [`put_versions`]).
pub async fn resolve_token(
    s: &mut Session,
    path: &str,
    job_id: &str,
) -> Result<Map<String, Value>, Verdict> {
    resolve(s, &format!("vault://kv/{path}#token"), job_id, None).await
}

/// Writes `values` as successive versions of field `token` at `<prefix>/app`;
/// returns that path.
pub async fn put_versions(cx: &Cx, values: &[&SecretString]) -> Result<String, Verdict> {
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
pub async fn revoke_role_tokens(cx: &Cx) -> Result<usize, Verdict> {
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
