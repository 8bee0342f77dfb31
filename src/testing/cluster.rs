//! [`TestCluster`]: a real 3-node OpenBao raft cluster on loopback, for
//! tests of failover (`spec/resolver.md` §13).
//!
//! Three `bao server` processes, each with its own directory, API port,
//! cluster port and file audit log, and a `retry_join` stanza naming the
//! other two. The first node is initialised (one key share) and unsealed,
//! so it bootstraps the raft cluster and becomes its leader; the others join
//! it by themselves and are unsealed with the same key once they have. Raft
//! runs with `performance_multiplier = 1`, so a new leader is elected a few
//! seconds after the old one dies. Every node serves HTTPS with one
//! certificate for `127.0.0.1` from a CA made for the cluster
//! ([`TestCluster::ca_cert`]), which `retry_join` trusts too.
//!
//! Nodes can be killed (`SIGKILL`, like a crash), started again (with their
//! data) and sealed; [`TestCluster::leader`] asks `sys/leader`. Every
//! process is killed when the cluster is dropped.
//!
//! What a node is stays behind [`ClusterNode`]: a `bao` process
//! ([`TestVault`]) here, a container in the conformance harness (three
//! containers on a Docker network of their own). Everything else, from
//! `sys/init` to "every node names the leader", is the cluster's and is
//! written once, here ([`TestCluster::from_listening`]).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::vault::{TestVault, bao_binary, seed_kv, write_file_0600};
use super::{Admin, TestSupportError, err, free_port};
use crate::vault::{AuthConfig, VaultConfig};

/// The future of a [`ClusterNode`] operation (boxed: nodes are used as
/// `dyn ClusterNode`).
pub type NodeFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One server of a [`TestCluster`], listening (sealed or not): what the
/// cluster needs to start, kill and read it.
pub trait ClusterNode: Send + Sync {
    /// Its root-token client (its address and CA; the root token once
    /// [`ClusterNode::set_credentials`] gave it).
    fn admin(&self) -> &Admin;
    /// Takes the cluster's root token and unseal key after `sys/init`.
    fn set_credentials(&mut self, root: SecretString, key: SecretString);
    /// Whether it runs (not killed).
    fn is_running(&self) -> bool;
    /// Kills it like a crash (`SIGKILL`); its storage is kept.
    fn kill(&mut self) -> NodeFuture<'_, ()>;
    /// Starts it again after [`ClusterNode::kill`], with its storage;
    /// returns once its listener answers (sealed: the cluster unseals it).
    fn restart(&mut self) -> NodeFuture<'_, Result<(), TestSupportError>>;
    /// Freezes it (`paused`: `SIGSTOP`, `docker pause`) or lets it go on
    /// (`SIGCONT`, `docker unpause`). A frozen node answers nothing and
    /// applies nothing, but its kernel still accepts what the leader sends:
    /// a write committed meanwhile is not applied there until it runs
    /// again, and then only if the leader also sent the commit (its next
    /// round, about 50 ms later) before it died.
    fn pause(&mut self, paused: bool) -> NodeFuture<'_, Result<(), TestSupportError>>;
    /// Its file audit log, on this machine.
    fn audit_log(&self) -> PathBuf;
    /// The last lines of its server log, for failure messages.
    fn log_lines(&self) -> String;
}

impl ClusterNode for TestVault {
    fn admin(&self) -> &Admin {
        TestVault::admin(self)
    }

    fn set_credentials(&mut self, root: SecretString, key: SecretString) {
        self.admin = self.admin.with_root(root);
        self.unseal_key = Some(key);
    }

    fn is_running(&self) -> bool {
        TestVault::is_running(self)
    }

    fn kill(&mut self) -> NodeFuture<'_, ()> {
        self.stop();
        Box::pin(std::future::ready(()))
    }

    fn restart(&mut self) -> NodeFuture<'_, Result<(), TestSupportError>> {
        Box::pin(self.start())
    }

    fn pause(&mut self, paused: bool) -> NodeFuture<'_, Result<(), TestSupportError>> {
        let signal = if paused { libc::SIGSTOP } else { libc::SIGCONT };
        let done = match self.pid() {
            // SAFETY: kill(2) with our own child's pid and a signal number;
            // no memory is involved.
            Some(pid) if unsafe { libc::kill(pid, signal) } == 0 => Ok(()),
            Some(_) => Err(err(format!(
                "signalling the server: {}",
                std::io::Error::last_os_error()
            ))),
            None => Err(err("the server is not running")),
        };
        Box::pin(std::future::ready(done))
    }

    fn audit_log(&self) -> PathBuf {
        TestVault::audit_log(self).to_path_buf()
    }

    fn log_lines(&self) -> String {
        TestVault::log_lines(self)
    }
}

/// A running raft cluster owned by a test.
pub struct TestCluster {
    nodes: Vec<Box<dyn ClusterNode>>,
    key: SecretString,
    /// The nodes' CA, certificate and key (copies in `dir`).
    tls: Option<super::tls::TlsFiles>,
    /// Credential files for tests ([`TestCluster::token_file_config`]).
    dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts a cluster of `n` nodes (3 for the scenarios; at least 1), with
    /// the binary [`bao_binary`] finds.
    pub async fn start(n: usize) -> Result<TestCluster, TestSupportError> {
        let bao = tokio::task::spawn_blocking(bao_binary)
            .await
            .map_err(|e| err(format!("installer task failed: {e}")))??;
        Self::start_with_binary(&bao, n).await
    }

    /// [`TestCluster::start`] with a given binary.
    pub async fn start_with_binary(
        bao: &std::path::Path,
        n: usize,
    ) -> Result<TestCluster, TestSupportError> {
        let n = n.max(1);
        let ports: Vec<(u16, u16)> = (0..n)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<Result<_, TestSupportError>>()?;
        let tls_dir = tempfile::Builder::new()
            .prefix("vaultref-bao-tls-")
            .tempdir()
            .map_err(|e| err(format!("no temporary directory: {e}")))?;
        let tls = super::tls::loopback_server(tls_dir.path())?;
        let addr = |p: u16| format!("https://127.0.0.1:{p}");
        let mut nodes = Vec::with_capacity(n);
        for (i, &(port, cluster_port)) in ports.iter().enumerate() {
            let peers = ports
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &(p, _))| addr(p))
                .collect();
            nodes.push(TestVault::cluster_node(
                bao,
                port,
                cluster_port,
                format!("n{}", i + 1),
                peers,
                &tls,
            )?);
        }
        for node in &mut nodes {
            node.spawn_listening().await?;
        }
        let nodes = nodes
            .into_iter()
            .map(|n| Box::new(n) as Box<dyn ClusterNode>)
            .collect();
        TestCluster::from_listening(nodes, Some(&tls)).await
    }

    /// Makes a cluster of nodes that listen and were never initialised,
    /// configured to join the first by `retry_join`: initialises the first
    /// (one key share), unseals it, lets autopilot promote a node after 1 s
    /// of health, unseals the others once they have joined, waits for every
    /// node to be a voter, mounts `kv/` and waits until every node names
    /// the leader. `tls`: the nodes' CA, certificate and key (copied).
    pub async fn from_listening(
        mut nodes: Vec<Box<dyn ClusterNode>>,
        tls: Option<&super::tls::TlsFiles>,
    ) -> Result<TestCluster, TestSupportError> {
        if nodes.is_empty() {
            return Err(err("a cluster needs at least one node"));
        }
        let n = nodes.len();
        let (key, root) = nodes[0].admin().init_one_share().await?;
        for node in &mut nodes {
            node.set_credentials(root.clone(), key.clone());
        }
        nodes[0].admin().unseal(&key).await?;
        nodes[0]
            .admin()
            .wait_healthy(Duration::from_secs(30))
            .await
            .map_err(|e| err(format!("{e}; its log:\n{}", nodes[0].log_lines())))?;
        // Autopilot promotes a joined node to a voter only after it has
        // been healthy for `server_stabilization_time` (10 s by default);
        // until then a dead leader leaves no quorum.
        nodes[0]
            .admin()
            .call(
                "POST",
                "sys/storage/raft/autopilot/configuration",
                Some(serde_json::json!({"server_stabilization_time": "1s"})),
            )
            .await?;
        let dir = tempfile::Builder::new()
            .prefix("vaultref-cluster-")
            .tempdir()
            .map_err(|e| err(format!("no temporary directory: {e}")))?;
        let tls = match tls {
            Some(files) => {
                let copy = |from: &PathBuf, name: &str| {
                    let to = dir.path().join(name);
                    std::fs::copy(from, &to)
                        .map(|_| to)
                        .map_err(|e| err(format!("TLS files: {e}")))
                };
                Some(super::tls::TlsFiles {
                    ca: copy(&files.ca, "ca.pem")?,
                    cert: copy(&files.cert, "cert.pem")?,
                    key: copy(&files.key, "key.pem")?,
                })
            }
            None => None,
        };
        let cluster = TestCluster {
            nodes,
            key,
            tls,
            dir,
        };
        for i in 1..n {
            cluster.unseal_until_serving(i).await?;
        }
        cluster.wait_voters(n, Duration::from_secs(45)).await?;
        seed_kv(cluster.nodes[0].admin()).await?;
        cluster.wait_known_leader(Duration::from_secs(45)).await?;
        Ok(cluster)
    }

    /// Waits until every running node names the same, running leader in
    /// `sys/leader` (a standby that does not know it yet cannot forward).
    pub async fn wait_known_leader(&self, within: Duration) -> Result<usize, TestSupportError> {
        let deadline = Instant::now() + within;
        loop {
            let leader = self.wait_leader(within).await?;
            let want = self.nodes[leader].admin().addr();
            let mut all = true;
            for n in self.nodes.iter().filter(|n| n.is_running()) {
                let named = match n.admin().request("GET", "sys/leader", None).await {
                    Ok((200, v)) => v["leader_address"].as_str().unwrap_or("").to_string(),
                    _ => String::new(),
                };
                all &= named == want;
            }
            if all {
                return Ok(leader);
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "the nodes did not all name the leader within {} s",
                    within.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the raft configuration has `n` voters.
    async fn wait_voters(&self, n: usize, within: Duration) -> Result<(), TestSupportError> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(conf) = self.raft_configuration().await {
                let voters = conf["data"]["config"]["servers"]
                    .as_array()
                    .map_or(0, |s| s.iter().filter(|v| v["voter"] == true).count());
                if voters >= n {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "the cluster did not have {n} voters within {} s",
                    within.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Unseals node `i` until it is part of the cluster (200 or 429): a
    /// node that has not joined yet refuses the key, so this retries while
    /// `retry_join` does its work.
    async fn unseal_until_serving(&self, i: usize) -> Result<(), TestSupportError> {
        let node = &self.nodes[i];
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            match node.admin().health_status().await {
                Some(200 | 429) => return Ok(()),
                _ => {
                    let _ = node.admin().unseal(&self.key).await;
                }
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "node {} did not join the cluster within 45 s; its log:\n{}",
                    i + 1,
                    node.log_lines()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The nodes' API addresses, node 1 first.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| n.admin().addr().to_string())
            .collect()
    }

    /// How many nodes the cluster has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no node (never: at least one is started).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i` (0-based).
    pub fn node(&self, i: usize) -> &dyn ClusterNode {
        self.nodes[i].as_ref()
    }

    /// A root-token client of a running node (requests to a standby are
    /// forwarded to the leader).
    pub fn admin(&self) -> &Admin {
        self.nodes
            .iter()
            .find(|n| n.is_running())
            .unwrap_or(&self.nodes[0])
            .admin()
    }

    /// The index of the node `sys/leader` names as the active one, asked
    /// of every running node until one knows; `None` while there is none.
    pub async fn leader(&self) -> Option<usize> {
        for n in self.nodes.iter().filter(|n| n.is_running()) {
            if let Ok((200, v)) = n.admin().request("GET", "sys/leader", None).await {
                let leader = v["leader_address"].as_str().unwrap_or("");
                if let Some(i) = self.nodes.iter().position(|m| m.admin().addr() == leader)
                    && self.nodes[i].is_running()
                {
                    return Some(i);
                }
            }
        }
        None
    }

    /// Waits until a running node is the active one and answers 200 to
    /// `sys/health`; returns its index.
    pub async fn wait_leader(&self, within: Duration) -> Result<usize, TestSupportError> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.leader().await
                && self.nodes[i].admin().health_status().await == Some(200)
            {
                return Ok(i);
            }
            if Instant::now() > deadline {
                return Err(err(format!("no leader within {} s", within.as_secs())));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every running node answers `GET /v1/<path>` with 200
    /// itself: OpenBao standbys serve reads locally, and a KV v2 mount
    /// answers 400 ("waiting for the primary to upgrade") on a standby for a
    /// while after it is mounted.
    pub async fn wait_served(&self, path: &str, within: Duration) -> Result<(), TestSupportError> {
        let deadline = Instant::now() + within;
        for (i, n) in self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.is_running())
        {
            while !matches!(n.admin().request("GET", path, None).await, Ok((200, _))) {
                if Instant::now() > deadline {
                    return Err(err(format!(
                        "node {} did not serve {path} within {} s",
                        i + 1,
                        within.as_secs()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Kills node `i` with `SIGKILL` (a crash).
    pub async fn kill(&mut self, i: usize) {
        self.nodes[i].kill().await;
    }

    /// Freezes node `i` or lets it go on ([`ClusterNode::pause`]).
    pub async fn pause(&mut self, i: usize, paused: bool) -> Result<(), TestSupportError> {
        self.nodes[i].pause(paused).await
    }

    /// Starts node `i` again with its data, unseals it, and waits until
    /// every node names the leader.
    pub async fn restart(&mut self, i: usize) -> Result<(), TestSupportError> {
        self.nodes[i].restart().await?;
        self.unseal_until_serving(i).await?;
        self.wait_known_leader(Duration::from_secs(45))
            .await
            .map(drop)
    }

    /// Seals node `i`: it stays up and answers 503. A standby cannot be
    /// sealed through the API, so it is restarted and left sealed (as after
    /// a host reboot); the active node is sealed through `sys/seal`.
    pub async fn seal(&mut self, i: usize) -> Result<(), TestSupportError> {
        if self.nodes[i].admin().seal().await.is_ok() {
            return Ok(());
        }
        self.nodes[i].kill().await;
        self.nodes[i].restart().await
    }

    /// Unseals node `i`.
    pub async fn unseal(&self, i: usize) -> Result<(), TestSupportError> {
        self.unseal_until_serving(i).await
    }

    /// The CA of the nodes' certificate (PEM file).
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|t| t.ca.clone())
    }

    /// The nodes' CA, certificate and key, when they serve HTTPS (a test
    /// can serve a node of its own, hostile, with them).
    pub fn tls_files(&self) -> Option<&super::tls::TlsFiles> {
        self.tls.as_ref()
    }

    /// The root token.
    pub fn root_token(&self) -> &SecretString {
        self.nodes[0].admin().root_token()
    }

    /// Every node's audit log file.
    pub fn audit_logs(&self) -> Vec<PathBuf> {
        self.nodes.iter().map(|n| n.audit_log()).collect()
    }

    /// Every audit entry of every node (requests forwarded by a standby are
    /// logged by the active node).
    pub fn audit_entries(&self) -> Result<Vec<super::audit::AuditEntry>, TestSupportError> {
        let mut all = Vec::new();
        for log in self.audit_logs() {
            if log.exists() {
                all.extend(super::audit::read_log(&log)?);
            }
        }
        Ok(all)
    }

    /// Settings reading `token` from a file, addressed to the nodes `nodes`
    /// (indices; the first is `VAULT_ADDR`, the rest the extra addresses).
    pub fn token_file_config(
        &self,
        name: &str,
        token: &SecretString,
        nodes: &[usize],
    ) -> Result<VaultConfig, TestSupportError> {
        let path = write_file_0600(self.dir.path(), name, token.expose_secret())?;
        let addrs: Vec<String> = nodes
            .iter()
            .map(|&i| self.nodes[i].admin().addr().to_string())
            .collect();
        let first = addrs.first().cloned().unwrap_or_default();
        let mut config = VaultConfig::new(first, AuthConfig::TokenFile { path })
            .map_err(|e| err(e.to_string()))?;
        config.cluster_addrs = addrs.into_iter().skip(1).collect();
        config.ca_cert = self.ca_cert();
        Ok(config)
    }

    /// `sys/storage/raft/configuration` as the leader sees it.
    pub async fn raft_configuration(&self) -> Result<Value, TestSupportError> {
        self.admin()
            .call("GET", "sys/storage/raft/configuration", None)
            .await
    }

    /// Shell lines for a person (`cargo xtask vault --cluster`).
    pub fn export_lines(&self) -> Result<String, TestSupportError> {
        let tf = write_file_0600(
            self.dir.path(),
            "root-token",
            self.root_token().expose_secret(),
        )?;
        let addrs = self.addrs();
        Ok(format!(
            "export VAULT_ADDR={first}\n\
             export VAULTREF_CLUSTER_ADDRS={rest}\n\
             export VAULT_CACERT={ca}\n\
             export VAULT_AUTH_METHOD=token\n\
             export VAULT_TOKEN_FILE={tf}\n\
             # nodes: {all}\n\
             # audit logs: {logs}\n",
            first = addrs[0],
            rest = addrs[1..].join(","),
            ca = self.ca_cert().unwrap_or_default().display(),
            tf = tf.display(),
            all = addrs.join(" "),
            logs = self
                .audit_logs()
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
        ))
    }
}
