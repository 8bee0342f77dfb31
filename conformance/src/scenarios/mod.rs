//! The scenario catalogue, one module per profile.
//!
//! - [`vectors`]: one scenario per vector of `fixtures/refs/` and
//!   `fixtures/payloads/`, id = the vector's id (profiles `refs`, `payload`);
//! - [`resolve`], [`auth`], [`lifecycle`]: `resolve` against a real Vault;
//! - [`worker`], [`degraded`]: `run_job` against a real Vault and a real git
//!   HTTP server;
//! - [`hostile`]: a Vault address, a job or an input that behaves like an
//!   adversary;
//! - [`codex`]: Codex auth volume shards and their encrypted backups;
//! - [`ha`]: a 3-node raft cluster of the scenario's own (process backend);
//! - `protocol.unknown-op` (here) for the protocol itself.
//!
//! What live scenarios share is in [`support`] (a configured implementation,
//! provisioning, reply checks) and [`rig`] (the git server and the recording
//! `git`). Scenarios of one shape are rows of a table ([`resolve::Case`]).

pub mod auth;
pub mod codex;
pub mod degraded;
pub mod ha;
pub mod hostile;
pub mod lifecycle;
pub mod resolve;
pub mod rig;
pub mod support;
pub mod vectors;
pub mod worker;

use std::path::{Path, PathBuf};

use crate::scenario::Scenario;

/// The fixtures shipped with this source tree.
pub fn default_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// Every scenario, in catalogue order. Fails if the fixtures cannot be read.
pub fn catalogue(fixtures: &Path) -> Result<Vec<Scenario>, String> {
    let mut all = vectors::ref_vectors(&fixtures.join("refs"))?;
    all.extend(vectors::payload_vectors(&fixtures.join("payloads"))?);
    all.extend(resolve::scenarios());
    all.extend(auth::scenarios());
    all.extend(lifecycle::scenarios());
    all.extend(degraded::scenarios());
    all.extend(worker::scenarios());
    all.extend(hostile::scenarios());
    all.extend(codex::scenarios());
    all.extend(ha::scenarios());
    all.push(protocol_unknown_op());
    Ok(all)
}

/// `protocol.unknown-op`: an operation the implementation cannot know gets a
/// distinct `unsupported` reply (P7), and the process stays usable.
fn protocol_unknown_op() -> Scenario {
    use std::sync::Arc;

    use crate::cx::Cx;
    use crate::iut::Exchange;
    use crate::scenario::{BoxFuture, Level, Needs, Profile};
    use crate::verdict::{Failure, Verdict};

    let run = Arc::new(|cx: Cx| -> BoxFuture<Verdict> {
        Box::pin(async move {
            let dirs = match cx.dirs() {
                Ok(d) => d,
                Err(v) => return v,
            };
            let mut iut = match cx.start_iut(&dirs).await {
                Ok(i) => i,
                Err(v) => return v,
            };
            let spec = "protocol.md P7: an unknown op is answered `unsupported`, and the process stays usable";
            let verdict = match iut
                .request("vaultref_conformance_no_such_op", serde_json::json!({}))
                .await
            {
                Err(Exchange::Unsupported(_)) => {
                    match iut.request("shutdown", serde_json::json!({})).await {
                        Ok(_) => Verdict::Pass,
                        Err(_) => Verdict::Fail(Failure::new(
                            spec,
                            "`shutdown` answered after `unsupported`",
                            "no valid reply to `shutdown`",
                        )),
                    }
                }
                Err(Exchange::Broken(m)) => {
                    Verdict::Fail(Failure::new(spec, "reply `unsupported`", m))
                }
                Ok(_) => Verdict::Fail(Failure::new(
                    spec,
                    "reply `unsupported`",
                    "a reply claiming to have carried out the unknown op",
                )),
            };
            drop(iut);
            verdict
        })
    });
    Scenario::live(
        "protocol.unknown-op",
        Profile::Suite,
        Level::Must,
        "protocol.md P7",
        "An unknown operation gets `unsupported`, not a crash",
        Needs::default(),
        run,
    )
}
