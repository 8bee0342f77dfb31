//! What the worker's own token may do, asked of Vault with that token: for
//! operators checking a deployment (`vaultref policy check`), never on a
//! job's path. Nothing here reads a secret value.

use std::collections::BTreeMap;

use serde_json::Value;
use zeroize::Zeroizing;

use super::error::ResolveError;
use super::resolver::Resolver;
use super::transport::Reply;
use crate::ErrorCode;

impl Resolver {
    /// The token's capabilities on each of `paths` (`sys/capabilities-self`):
    /// `read`, `list`, `root`, `deny`...
    pub async fn capabilities(
        &self,
        paths: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, ResolveError> {
        let held = self.tokens.current().await?;
        let body = serde_json::to_vec(&serde_json::json!({ "paths": paths }))
            .map_err(|e| ResolveError::config(format!("capabilities request: {e}")))?;
        let reply = self
            .transport
            .post(
                "sys/capabilities-self",
                Some(held.token()),
                Zeroizing::new(body),
            )
            .await?;
        let answer = json_ok(&reply, "sys/capabilities-self")?;
        let data = answer.get("data").unwrap_or(&answer);
        Ok(paths
            .iter()
            .map(|p| (p.clone(), strings(&data[p.as_str()])))
            .collect())
    }

    /// The names of the token's policies (`auth/token/lookup-self`).
    pub async fn token_policies(&self) -> Result<Vec<String>, ResolveError> {
        let held = self.tokens.current().await?;
        let reply = self
            .transport
            .get_worker("auth/token/lookup-self", held.token())
            .await?;
        let answer = json_ok(&reply, "auth/token/lookup-self")?;
        Ok(strings(&answer["data"]["policies"]))
    }

    /// The text of ACL policy `name`, or `None` when the token may not read
    /// it (a worker's token usually may not).
    pub async fn acl_policy_text(&self, name: &str) -> Result<Option<String>, ResolveError> {
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Ok(None);
        }
        let held = self.tokens.current().await?;
        let path = format!("sys/policies/acl/{name}");
        let reply = self.transport.get_worker(&path, held.token()).await?;
        if reply.status == 403 || reply.status == 404 {
            return Ok(None);
        }
        let answer = json_ok(&reply, &path)?;
        Ok(answer["data"]["policy"].as_str().map(str::to_owned))
    }
}

/// The strings of a JSON array (nothing else counts).
pub(super) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A 2xx JSON answer, or the error a worker-level call gets.
fn json_ok(reply: &Reply, what: &str) -> Result<Value, ResolveError> {
    match reply.status {
        200..=299 => serde_json::from_slice(&reply.body).map_err(|_| {
            ResolveError::new(
                ErrorCode::VaultUnavailable,
                format!("Vault's answer to {what} is not JSON"),
            )
        }),
        401 | 403 => Err(ResolveError::new(
            ErrorCode::VaultPermissionDenied,
            format!(
                "the worker's token may not call {what} (HTTP {})",
                reply.status
            ),
        )),
        s => Err(ResolveError::new(
            ErrorCode::VaultUnavailable,
            format!("Vault answered HTTP {s} to {what}"),
        )),
    }
}

/// A name or address the server sent (a policy, an audit device, a leader,
/// a shard's owner), as shown to a person: at most 100
/// characters, control characters (a forged answer's escape sequences,
/// line breaks that would fake more findings or report lines) shown as `?`.
pub(crate) fn server_text(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(100)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(100).is_some() {
        out.push('…');
    }
    out
}
