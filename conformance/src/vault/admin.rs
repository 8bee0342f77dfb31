//! The harness's own Vault client: root-token HTTP calls that provision what
//! scenarios need (mounts, secrets, policies, roles, tokens) and read the
//! audit log.
//!
//! Plain HTTP rather than `vaultrs`: the harness must see every status code and
//! body exactly as Vault sent them (it is checking someone else's
//! classification of them), and it needs a few `sys/` endpoints that client
//! libraries wrap differently or not at all.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

/// A root-token client for one Vault server.
#[derive(Clone)]
pub struct Admin {
    http: reqwest::Client,
    addr: String,
    root: SecretString,
}

/// A Vault call that did not succeed: the status (0 when unreachable) and what
/// was called. Bodies are left out: they can echo values.
#[derive(Debug, Clone)]
pub struct AdminError(pub String);

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Admin {
    /// A client for `addr` (e.g. `http://127.0.0.1:8200`) with a root token.
    pub fn new(addr: &str, root: SecretString) -> Admin {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client with default settings");
        Admin {
            http,
            addr: addr.trim_end_matches('/').to_string(),
            root,
        }
    }

    /// The server's base address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Calls `method /v1/<path>` with an optional JSON body; returns the JSON
    /// answer (`null` for 204).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, AdminError> {
        self.call_as(&self.root, method, path, body).await
    }

    /// [`Admin::call`] with another token.
    pub async fn call_as(
        &self,
        token: &SecretString,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, AdminError> {
        let url = format!("{}/v1/{}", self.addr, path);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method name");
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header("X-Vault-Token", token.expose_secret());
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(&b).expect("JSON"));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| AdminError(format!("{method} {path}: unreachable: {e}")))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| AdminError(format!("{method} {path}: {e}")))?;
        if !status.is_success() {
            return Err(AdminError(format!(
                "{method} {path}: HTTP {}",
                status.as_u16()
            )));
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| AdminError(format!("{method} {path}: {e}")))
    }

    /// Waits until `/v1/sys/health` answers 200 (initialised, unsealed, active).
    pub async fn wait_healthy(&self, within: Duration) -> Result<String, AdminError> {
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
                return Err(AdminError(format!(
                    "{}/v1/sys/health did not answer 200 within {} s",
                    self.addr,
                    within.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Enables KV v2 at `mount` unless something is mounted there already.
    pub async fn ensure_kv2(&self, mount: &str) -> Result<(), AdminError> {
        let mounts = self.call("GET", "sys/mounts", None).await?;
        if mounts.get(format!("{mount}/")).is_some()
            || mounts["data"].get(format!("{mount}/")).is_some()
        {
            return Ok(());
        }
        self.call(
            "POST",
            &format!("sys/mounts/{mount}"),
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        )
        .await
        .map(drop)
    }

    /// Enables AppRole at `mount` unless it is enabled already.
    pub async fn ensure_approle(&self, mount: &str) -> Result<(), AdminError> {
        let auths = self.call("GET", "sys/auth", None).await?;
        if auths.get(format!("{mount}/")).is_some()
            || auths["data"].get(format!("{mount}/")).is_some()
        {
            return Ok(());
        }
        self.call(
            "POST",
            &format!("sys/auth/{mount}"),
            Some(json!({"type": "approle"})),
        )
        .await
        .map(drop)
    }

    /// Has the audit log record `header` in clear (for job ids).
    pub async fn audit_header(&self, header: &str) -> Result<(), AdminError> {
        self.call(
            "POST",
            &format!("sys/config/auditing/request-headers/{header}"),
            Some(json!({"hmac": false})),
        )
        .await
        .map(drop)
    }

    /// Writes a KV v2 secret whose fields are all secret strings; returns the new version.
    pub async fn kv_put(
        &self,
        mount: &str,
        path: &str,
        fields: &[(&str, &SecretString)],
    ) -> Result<u64, AdminError> {
        let data: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v.expose_secret())))
            .collect();
        let r = self
            .call(
                "POST",
                &format!("{mount}/data/{path}"),
                Some(json!({"data": data})),
            )
            .await?;
        Ok(r["data"]["version"].as_u64().unwrap_or(0))
    }

    /// Soft-deletes versions of a KV v2 secret.
    pub async fn kv_delete_versions(
        &self,
        mount: &str,
        path: &str,
        versions: &[u64],
    ) -> Result<(), AdminError> {
        self.call(
            "POST",
            &format!("{mount}/delete/{path}"),
            Some(json!({"versions": versions})),
        )
        .await
        .map(drop)
    }

    /// Destroys versions of a KV v2 secret.
    pub async fn kv_destroy_versions(
        &self,
        mount: &str,
        path: &str,
        versions: &[u64],
    ) -> Result<(), AdminError> {
        self.call(
            "POST",
            &format!("{mount}/destroy/{path}"),
            Some(json!({"versions": versions})),
        )
        .await
        .map(drop)
    }

    /// Writes an ACL policy.
    pub async fn put_policy(&self, name: &str, hcl: &str) -> Result<(), AdminError> {
        self.call(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            Some(json!({"policy": hcl})),
        )
        .await
        .map(drop)
    }

    /// Creates an orphan service token with `policies` and a TTL.
    pub async fn create_token(
        &self,
        policies: &[&str],
        ttl: &str,
        renewable: bool,
    ) -> Result<SecretString, AdminError> {
        let r = self
            .call(
                "POST",
                "auth/token/create-orphan",
                Some(json!({"policies": policies, "ttl": ttl, "renewable": renewable, "no_default_policy": false})),
            )
            .await?;
        r["auth"]["client_token"]
            .as_str()
            .map(|t| SecretString::from(t.to_string()))
            .ok_or_else(|| AdminError("auth/token/create-orphan: no client_token".into()))
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, token: &SecretString) -> Result<(), AdminError> {
        self.call(
            "POST",
            "auth/token/revoke",
            Some(json!({"token": token.expose_secret()})),
        )
        .await
        .map(drop)
    }

    /// Creates (or replaces) an AppRole role and returns its role id.
    pub async fn approle_role(
        &self,
        mount: &str,
        role: &str,
        policies: &[&str],
        token_ttl: &str,
        token_max_ttl: &str,
    ) -> Result<String, AdminError> {
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
            .ok_or_else(|| AdminError("role-id: no role_id".into()))
    }

    /// Generates a secret id for a role.
    pub async fn approle_secret_id(
        &self,
        mount: &str,
        role: &str,
    ) -> Result<SecretString, AdminError> {
        let r = self
            .call(
                "POST",
                &format!("auth/{mount}/role/{role}/secret-id"),
                Some(json!({})),
            )
            .await?;
        r["data"]["secret_id"]
            .as_str()
            .map(|t| SecretString::from(t.to_string()))
            .ok_or_else(|| AdminError("secret-id: no secret_id".into()))
    }
}
