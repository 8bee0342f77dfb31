//! The broken adapter's defects with a cluster (`ha` scenarios), each what a
//! first client of a Vault cluster does (see [`super::faults::Fault`]):
//!
//! - `first-node-only`: ignores `cluster_addrs`, so the first node's death
//!   is an outage;
//! - `read-any-node`: tries the nodes in order, each on its own, and takes
//!   the first answer, standbys' own (possibly stale) reads included;
//! - `standby-as-down`: checks `sys/health` first and takes a standby's 429
//!   for "down";
//! - `retry-forever`: one address, and a resolution (or a job) retried
//!   until Vault answers, with no bound;
//! - `follow-leader-address`: asks the first node's `sys/leader` and sends
//!   the resolution to the `leader_address` it names, as clients that find
//!   the active node that way do (so a node with a wrong `api_addr`, or a
//!   hostile one, gets the token sent wherever it says).

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Map, Value, json};
use vaultref::vault::{Resolver, VaultConfig};

use super::faults::Fault;
use super::{State, failed, resolve_checked, scope_context};

/// Per-node resolvers of `read-any-node`.
#[derive(Default)]
pub(crate) struct HaFaultState {
    nodes: Vec<Arc<Resolver>>,
}

/// Rewrites `configure`'s `vault` member.
pub(crate) fn before_configure(
    fault: Fault,
    vault: &mut Map<String, Value>,
    state: &State,
    ha: &mut HaFaultState,
) {
    match fault {
        Fault::FirstNodeOnly | Fault::RetryForever | Fault::StandbyAsDown => {
            vault.remove("cluster_addrs");
        }
        Fault::ReadAnyNode => {
            let rest: Vec<Value> = vault
                .remove("cluster_addrs")
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default();
            let mut addrs = vec![vault.get("addr").cloned().unwrap_or(Value::Null)];
            addrs.extend(rest);
            ha.nodes.clear();
            for a in addrs {
                let mut one = vault.clone();
                one.insert("addr".into(), a);
                one.entry("allowed_mounts")
                    .or_insert_with(|| json!(state.policy.allowed_mounts()));
                if let Ok(cfg) = VaultConfig::from_json(&Value::Object(one).to_string())
                    && let Ok(r) = state.rt.block_on(Resolver::new(cfg))
                {
                    ha.nodes.push(Arc::new(r));
                }
            }
        }
        _ => {}
    }
}

/// Answers `resolve` the faulty way, or `None`.
pub(crate) fn before_resolve(
    fault: Fault,
    req: &Map<String, Value>,
    state: &State,
    ha: &HaFaultState,
) -> Option<Value> {
    let input = req.get("ref").and_then(Value::as_str)?;
    let job_id = req.get("job_id").and_then(Value::as_str)?;
    let parsed = state.policy.check(input, &scope_context(req, state)).ok()?;
    match fault {
        Fault::ReadAnyNode if ha.nodes.len() > 1 => {
            let key = state.key.as_ref()?;
            let mut last = failed("resolve", "vault_unavailable", "no node answered");
            for node in &ha.nodes {
                match state.rt.block_on(node.resolve(&parsed, job_id)) {
                    Ok(v) => {
                        return Some(json!({"reply": "resolve", "outcome": "resolved",
                                           "fingerprint": key.fingerprint(&v)}));
                    }
                    Err(e) => last = failed("resolve", e.code().as_str(), e.message()),
                }
            }
            Some(last)
        }
        Fault::StandbyAsDown => {
            let cfg = state.vault_config.as_ref()?;
            let ca = cfg.ca_cert.as_ref().and_then(|p| std::fs::read(p).ok());
            let health = state.rt.block_on(async {
                vaultref::testing::Admin::with_ca(
                    &cfg.addr,
                    SecretString::from(String::new()),
                    ca.as_deref(),
                )
                .ok()?
                .health_status()
                .await
            });
            (health != Some(200)).then(|| {
                failed(
                    "resolve",
                    "vault_unavailable",
                    "the configured node is not the active one (health check)",
                )
            })
        }
        Fault::FollowLeaderAddress => {
            let cfg = state.vault_config.as_ref()?;
            let ca = cfg.ca_cert.as_ref().and_then(|p| std::fs::read(p).ok());
            let named = state.rt.block_on(async {
                let first = vaultref::testing::Admin::with_ca(
                    &cfg.addr,
                    SecretString::from(String::new()),
                    ca.as_deref(),
                )
                .ok()?;
                match first.request("GET", "sys/leader", None).await {
                    Ok((200, v)) => v["leader_address"].as_str().map(str::to_owned),
                    _ => None,
                }
            })?;
            if named.is_empty() || named == cfg.addr {
                return None;
            }
            let mut there = cfg.clone();
            there.addr = named;
            there.cluster_addrs.clear();
            let resolver = state.rt.block_on(Resolver::new(there)).ok()?;
            let key = state.key.as_ref()?;
            let reply = match state.rt.block_on(resolver.resolve(&parsed, job_id)) {
                Ok(v) => json!({"reply": "resolve", "outcome": "resolved",
                                "fingerprint": key.fingerprint(&v)}),
                Err(e) => failed("resolve", e.code().as_str(), e.message()),
            };
            state.rt.block_on(resolver.shutdown());
            Some(reply)
        }
        Fault::RetryForever => loop {
            let reply = resolve_checked(&parsed, job_id, state);
            if reply["code"] != "vault_unavailable" {
                return Some(reply);
            }
            std::thread::sleep(Duration::from_millis(200));
        },
        _ => None,
    }
}
