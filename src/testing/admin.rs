//! [`Admin`]: a root-token HTTP client for one Vault/OpenBao server at any
//! address, the one place test support and the conformance harness provision
//! servers (mounts, secrets, policies, roles, tokens, init and unseal).
//!
//! [`TestVault`](super::TestVault) holds one for the server it starts; the
//! conformance harness builds one for a container or for someone's external
//! Vault as well, which is why the client does not know how the server was
//! started.
//!
//! Plain HTTP rather than `vaultrs`: callers must see every status code and
//! body exactly as Vault sent them (the harness checks someone else's
//! classification of them), and a few `sys/` endpoints are wrapped
//! differently or not at all by client libraries.
//!
//! Two levels: [`Admin::request`] returns any status with its body, for
//! callers that look at refusals; [`Admin::call`] fails unless Vault answers
//! 2xx. Error messages name the method, path and status, never a body: a
//! body can echo values.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{TestSupportError, err};

/// A root-token client for one Vault server. Cloning shares the connection
/// pool.
#[derive(Clone)]
pub struct Admin {
    http: reqwest::Client,
    addr: String,
    root: SecretString,
}

impl Admin {
    /// A client for `addr` (e.g. `http://127.0.0.1:8200`, no `/v1`) with a
    /// root token. Fails only if no HTTP client can be built.
    pub fn new(addr: &str, root: SecretString) -> Result<Admin, TestSupportError> {
        Admin::with_ca(addr, root, None)
    }

    /// [`Admin::new`] for an `https://` server whose certificate comes from
    /// the CA in `ca_pem` (PEM).
    pub fn with_ca(
        addr: &str,
        root: SecretString,
        ca_pem: Option<&[u8]>,
    ) -> Result<Admin, TestSupportError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy();
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| err(format!("CA bundle: {e}")))?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| err(format!("HTTP client: {e}")))?;
        Ok(Admin {
            http,
            addr: addr.trim_end_matches('/').to_string(),
            root,
        })
    }

    /// The same server and connection pool with another root token (after
    /// `sys/init` hands one out).
    pub fn with_root(&self, root: SecretString) -> Admin {
        Admin {
            http: self.http.clone(),
            addr: self.addr.clone(),
            root,
        }
    }

    /// The server's base address (no `/v1`).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The root token.
    pub fn root_token(&self) -> &SecretString {
        &self.root
    }

    /// Sends `method /v1/<path>` with the root token; returns the status and
    /// JSON body (`null` when empty or not JSON), whatever the status.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), TestSupportError> {
        self.request_as(&self.root, method, path, body).await
    }

    /// [`Admin::request`] with another token (an empty one sends none that
    /// Vault accepts: for `sys/init` and `sys/unseal`).
    pub async fn request_as(
        &self,
        token: &SecretString,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), TestSupportError> {
        let (status, bytes) = self.send(token, method, path, body).await?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// Calls `method /v1/<path>` with the root token; fails unless Vault
    /// answers 2xx. Returns the JSON answer (`null` for 204).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, TestSupportError> {
        self.call_as(&self.root, method, path, body).await
    }

    /// [`Admin::call`] for a write whose answer is not needed.
    async fn write(&self, method: &str, path: &str, body: Value) -> Result<(), TestSupportError> {
        self.call(method, path, Some(body)).await.map(drop)
    }

    /// [`Admin::call`] with another token.
    pub async fn call_as(
        &self,
        token: &SecretString,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, TestSupportError> {
        let (status, bytes) = self.send(token, method, path, body).await?;
        if !(200..300).contains(&status) {
            return Err(err(format!("{method} {path}: HTTP {status}")));
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| err(format!("{method} {path}: {e}")))
    }

    async fn send(
        &self,
        token: &SecretString,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Vec<u8>), TestSupportError> {
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| err(format!("bad method {method}")))?;
        let mut req = self
            .http
            .request(m, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", token.expose_secret());
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| err(format!("{method} {path}: unreachable: {e}")))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| err(format!("{method} {path}: {e}")))?;
        Ok((status, bytes.to_vec()))
    }

    /// The status `sys/health` answers now (any status), or `None` while
    /// nothing listens.
    pub async fn health_status(&self) -> Option<u16> {
        let url = format!("{}/v1/sys/health", self.addr);
        self.http
            .get(url)
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    /// Waits until `/v1/sys/health` answers 200 (initialised, unsealed,
    /// active); returns the server's version.
    pub async fn wait_healthy(&self, within: Duration) -> Result<String, TestSupportError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let url = format!("{}/v1/sys/health", self.addr);
            if let Ok(resp) = self.http.get(&url).send().await
                && resp.status().as_u16() == 200
            {
                let body: Value = resp
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or(Value::Null);
                return Ok(body["version"].as_str().unwrap_or("unknown").to_string());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(err(format!(
                    "{}/v1/sys/health did not answer 200 within {} s",
                    self.addr,
                    within.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `sys/init` with one key share and threshold one; returns the unseal
    /// key and the root token. The returned client is unchanged: use
    /// [`Admin::with_root`].
    pub async fn init_one_share(&self) -> Result<(SecretString, SecretString), TestSupportError> {
        let anon = SecretString::from(String::new());
        let body = self
            .call_as(
                &anon,
                "PUT",
                "sys/init",
                Some(json!({"secret_shares": 1, "secret_threshold": 1})),
            )
            .await?;
        let (Some(key), Some(root)) = (body["keys"][0].as_str(), body["root_token"].as_str())
        else {
            return Err(err("sys/init gave no key or root token"));
        };
        Ok((SecretString::from(key), SecretString::from(root)))
    }

    /// Unseals with one key share.
    pub async fn unseal(&self, key: &SecretString) -> Result<(), TestSupportError> {
        let anon = SecretString::from(String::new());
        self.call_as(
            &anon,
            "PUT",
            "sys/unseal",
            Some(json!({"key": key.expose_secret()})),
        )
        .await
        .map(drop)
    }

    /// Seals the server (it stays up but answers 503).
    pub async fn seal(&self) -> Result<(), TestSupportError> {
        self.call("POST", "sys/seal", Some(json!({})))
            .await
            .map(drop)
    }

    /// Enables KV v2 at `mount` unless something is mounted there already.
    pub async fn ensure_kv2(&self, mount: &str) -> Result<(), TestSupportError> {
        let mounts = self.call("GET", "sys/mounts", None).await?;
        if mounts.get(format!("{mount}/")).is_some()
            || mounts["data"].get(format!("{mount}/")).is_some()
        {
            return Ok(());
        }
        self.write(
            "POST",
            &format!("sys/mounts/{mount}"),
            json!({"type": "kv", "options": {"version": "2"}}),
        )
        .await
    }

    /// Enables the auth method `kind` at `path` unless something is enabled
    /// there already.
    pub async fn ensure_auth(&self, path: &str, kind: &str) -> Result<(), TestSupportError> {
        let auths = self.call("GET", "sys/auth", None).await?;
        if auths.get(format!("{path}/")).is_some()
            || auths["data"].get(format!("{path}/")).is_some()
        {
            return Ok(());
        }
        self.write("POST", &format!("sys/auth/{path}"), json!({ "type": kind }))
            .await
    }

    /// Has the audit log record `header` in clear (for job ids).
    pub async fn audit_header(&self, header: &str) -> Result<(), TestSupportError> {
        self.write(
            "POST",
            &format!("sys/config/auditing/request-headers/{header}"),
            json!({"hmac": false}),
        )
        .await
    }

    /// Writes a KV v2 secret (`data` is the secret's JSON object) at
    /// `<mount>/data/<path>`; returns the new version.
    pub async fn kv_write(
        &self,
        mount: &str,
        path: &str,
        data: Value,
    ) -> Result<u64, TestSupportError> {
        let r = self
            .call(
                "POST",
                &format!("{mount}/data/{path}"),
                Some(json!({ "data": data })),
            )
            .await?;
        r["data"]["version"]
            .as_u64()
            .ok_or_else(|| err(format!("{mount}/data/{path}: KV write returned no version")))
    }

    /// [`Admin::kv_write`] of a secret whose fields are all secret strings.
    pub async fn kv_put(
        &self,
        mount: &str,
        path: &str,
        fields: &[(&str, &SecretString)],
    ) -> Result<u64, TestSupportError> {
        let data: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v.expose_secret())))
            .collect();
        self.kv_write(mount, path, Value::Object(data)).await
    }

    /// Soft-deletes versions of a KV v2 secret.
    pub async fn kv_delete_versions(
        &self,
        mount: &str,
        path: &str,
        versions: &[u64],
    ) -> Result<(), TestSupportError> {
        self.write(
            "POST",
            &format!("{mount}/delete/{path}"),
            json!({"versions": versions}),
        )
        .await
    }

    /// Destroys versions of a KV v2 secret.
    pub async fn kv_destroy_versions(
        &self,
        mount: &str,
        path: &str,
        versions: &[u64],
    ) -> Result<(), TestSupportError> {
        self.write(
            "POST",
            &format!("{mount}/destroy/{path}"),
            json!({"versions": versions}),
        )
        .await
    }

    /// Writes an ACL policy.
    pub async fn put_policy(&self, name: &str, hcl: &str) -> Result<(), TestSupportError> {
        self.write(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            json!({"policy": hcl}),
        )
        .await
    }

    /// A policy granting `read` on `<mount>/data/<path>` for each path (globs
    /// ok).
    pub async fn put_read_policy(
        &self,
        name: &str,
        mount: &str,
        paths: &[&str],
    ) -> Result<(), TestSupportError> {
        let hcl: String = paths
            .iter()
            .map(|p| format!("path \"{mount}/data/{p}\" {{ capabilities = [\"read\"] }}\n"))
            .collect();
        self.put_policy(name, &hcl).await
    }

    /// Creates an orphan service token with `policies` (plus `default`) and a
    /// TTL (`""` for the default), as Vault Agent would obtain for a sink.
    pub async fn create_token(
        &self,
        policies: &[&str],
        ttl: &str,
        renewable: bool,
    ) -> Result<SecretString, TestSupportError> {
        let mut body =
            json!({"policies": policies, "renewable": renewable, "no_default_policy": false});
        if !ttl.is_empty() {
            body["ttl"] = json!(ttl);
        }
        let r = self
            .call("POST", "auth/token/create-orphan", Some(body))
            .await?;
        r["auth"]["client_token"]
            .as_str()
            .map(SecretString::from)
            .ok_or_else(|| err("auth/token/create-orphan: no client_token"))
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, token: &SecretString) -> Result<(), TestSupportError> {
        self.write(
            "POST",
            "auth/token/revoke",
            json!({"token": token.expose_secret()}),
        )
        .await
    }

    /// Creates (or replaces) an AppRole role at `mount` with the given
    /// policies and token TTLs (e.g. `"3s"`, `"10s"`); returns its role id.
    pub async fn approle_role(
        &self,
        mount: &str,
        role: &str,
        policies: &[&str],
        token_ttl: &str,
        token_max_ttl: &str,
    ) -> Result<String, TestSupportError> {
        self.call(
            "POST",
            &format!("auth/{mount}/role/{role}"),
            Some(json!({"token_policies": policies, "token_ttl": token_ttl,
                        "token_max_ttl": token_max_ttl, "secret_id_ttl": "0"})),
        )
        .await?;
        let r = self
            .call("GET", &format!("auth/{mount}/role/{role}/role-id"), None)
            .await?;
        r["data"]["role_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| err("role-id: no role_id"))
    }

    /// Generates a secret id for an AppRole role.
    pub async fn approle_secret_id(
        &self,
        mount: &str,
        role: &str,
    ) -> Result<SecretString, TestSupportError> {
        let r = self
            .call(
                "POST",
                &format!("auth/{mount}/role/{role}/secret-id"),
                Some(json!({})),
            )
            .await?;
        r["data"]["secret_id"]
            .as_str()
            .map(SecretString::from)
            .ok_or_else(|| err("secret-id: no secret_id"))
    }
}
