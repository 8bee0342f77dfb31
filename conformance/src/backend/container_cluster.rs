//! A 3-node OpenBao raft cluster on the `container` backend: three
//! containers on a Docker network of their own (testcontainers creates it
//! with the first container and removes it with the last).
//!
//! Each node is a container named `vaultref-ha-<owner>-<run>-n<i>` (the
//! owner is the harness process: [`super::leftovers`]), which is also
//! its DNS name on the network: the nodes join each other by `retry_join`
//! to `https://<name>:8200` and talk raft over `<name>:8201`, inside the
//! network. The harness and the implementation, on this machine, reach each
//! node's API on its own loopback port (`127.0.0.1:<port>` mapped to 8200),
//! which is also the node's `api_addr`, so `sys/leader` names addresses the
//! implementation was given. One CA and one certificate, for `127.0.0.1` and
//! the three names, serve all of them.
//!
//! Everything else (initialising, unsealing, autopilot, waiting for voters
//! and for every node to name the leader, kill, restart, seal) is
//! [`vaultref::testing::TestCluster`]'s, the same code as the process
//! backend's cluster; a node here is a [`ContainerNode`]. Killing a node is
//! `docker kill` (SIGKILL); restarting starts the same container again (same
//! port, same bind-mounted storage).

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use testcontainers::core::{ContainerPort, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use vaultref::testing::cluster::{ClusterNode, NodeFuture};
use vaultref::testing::{TestCluster, TestSupportError, audit_config, free_port, random_hex};

use super::Admin;
use super::container::{engine_available, image_for};
use super::leftovers::{NETWORK_PREFIX, OWNER_LABEL, this_owner};

/// One node: a container, its client, its files.
pub struct ContainerNode {
    admin: Admin,
    container: ContainerAsync<GenericImage>,
    running: bool,
    dir: tempfile::TempDir,
}

fn support_err(e: impl std::fmt::Display) -> TestSupportError {
    TestSupportError::new(e.to_string())
}

impl ClusterNode for ContainerNode {
    fn admin(&self) -> &Admin {
        &self.admin
    }

    fn set_credentials(&mut self, root: SecretString, _key: SecretString) {
        // The cluster unseals its nodes with the key; a node keeps only
        // the root token.
        self.admin = self.admin.with_root(root);
    }

    fn is_running(&self) -> bool {
        self.running
    }

    fn kill(&mut self) -> NodeFuture<'_, ()> {
        Box::pin(async move {
            // SIGKILL, a crash: `docker stop` (even with no grace period)
            // sends SIGTERM first, and OpenBao answers SIGTERM by stepping
            // down, which hands leadership over in half the time.
            use testcontainers::bollard::Docker;
            use testcontainers::bollard::query_parameters::KillContainerOptions;
            let killed = match Docker::connect_with_local_defaults() {
                Ok(docker) => docker
                    .kill_container(self.container.id(), Some(KillContainerOptions::default()))
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = killed {
                // Down it must be; said, since a stop is a step-down, not a
                // crash, and the failover measured is then not a crash's.
                eprintln!(
                    "warning: docker kill of cluster container {} failed ({e}); stopping it instead",
                    self.container.id()
                );
                let _ = self.container.stop_with_timeout(Some(0)).await;
            }
            self.running = false;
        })
    }

    fn restart(&mut self) -> NodeFuture<'_, Result<(), TestSupportError>> {
        Box::pin(async move {
            self.container
                .start()
                .await
                .map_err(|e| support_err(format!("starting a cluster container again: {e}")))?;
            self.running = true;
            wait_listening(&self.admin).await
        })
    }

    fn pause(&mut self, paused: bool) -> NodeFuture<'_, Result<(), TestSupportError>> {
        Box::pin(async move {
            let done = if paused {
                self.container.pause().await
            } else {
                self.container.unpause().await
            };
            done.map_err(|e| support_err(format!("docker (un)pause of a cluster container: {e}")))
        })
    }

    fn audit_log(&self) -> PathBuf {
        self.dir.path().join("audit/audit.log")
    }

    fn log_lines(&self) -> String {
        // The container's own log is the engine's; the harness keeps none.
        format!("(container {})", self.container.id())
    }
}

/// Waits until the node's listener answers at all (sealed or not).
async fn wait_listening(admin: &Admin) -> Result<(), TestSupportError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while admin.health_status().await.is_none() {
        if tokio::time::Instant::now() > deadline {
            return Err(support_err(
                "a cluster container did not listen within 30 s",
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The node's configuration: raft storage joining the others, HTTPS on
/// 8200 (API) and 8201 (cluster), its host address as `api_addr`.
fn config(name: &str, node_id: &str, peers: &[String], host_port: u16) -> String {
    let joins: String = peers
        .iter()
        .map(|p| {
            format!(
                "  retry_join {{\n    leader_api_addr = \"https://{p}:8200\"\n    leader_ca_cert_file = \"/config/tls/ca.pem\"\n  }}\n"
            )
        })
        .collect();
    format!(
        "storage \"raft\" {{\n  path = \"/data\"\n  node_id = \"{node_id}\"\n  performance_multiplier = 1\n{joins}}}\n\
         listener \"tcp\" {{\n  address = \"0.0.0.0:8200\"\n  cluster_address = \"0.0.0.0:8201\"\n  \
         tls_cert_file = \"/config/tls/cert.pem\"\n  tls_key_file = \"/config/tls/key.pem\"\n}}\n\
         api_addr = \"https://127.0.0.1:{host_port}\"\ncluster_addr = \"https://{name}:8201\"\n\
         disable_mlock = true\n{audit}",
        audit = audit_config("/audit/audit.log"),
    )
}

/// Starts a cluster of `n` containers (from `image`, or the local image
/// built from `binary`) and makes it a raft cluster.
pub async fn start(
    image: Option<&str>,
    binary: Option<&Path>,
    n: usize,
) -> Result<TestCluster, String> {
    if !engine_available().await {
        return Err("no Docker engine answers (Engine API `version` failed)".into());
    }
    super::leftovers::sweep_once().await;
    let image = image_for(image, binary).await?;
    let run = random_hex(4);
    // The owner in the name: what a killed harness leaves, the next removes.
    let network = format!("{NETWORK_PREFIX}{}-{run}", this_owner());
    let names: Vec<String> = (1..=n).map(|i| format!("{network}-n{i}")).collect();
    let tls_dir = tempfile::Builder::new()
        .prefix("vaultref-ha-tls-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let mut cert_names = vec!["127.0.0.1", "localhost"];
    cert_names.extend(names.iter().map(String::as_str));
    let tls = vaultref::testing::tls::server(tls_dir.path(), &cert_names)?;
    let ca_pem = std::fs::read(&tls.ca).map_err(|e| format!("CA: {e}"))?;
    let mut nodes: Vec<Box<dyn ClusterNode>> = Vec::with_capacity(n);
    for (i, name) in names.iter().enumerate() {
        let dir = tempfile::Builder::new()
            .prefix("vaultref-ha-node-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let sub = |s: &str| dir.path().join(s);
        for d in ["audit", "config/tls", "data"] {
            std::fs::create_dir_all(sub(d)).map_err(|e| format!("{d}: {e}"))?;
        }
        for (from, to) in [
            (&tls.ca, "config/tls/ca.pem"),
            (&tls.cert, "config/tls/cert.pem"),
            (&tls.key, "config/tls/key.pem"),
        ] {
            std::fs::copy(from, sub(to)).map_err(|e| format!("TLS files: {e}"))?;
        }
        let port = free_port()?;
        let peers: Vec<String> = names.iter().filter(|p| *p != name).cloned().collect();
        let node_id = format!("n{}", i + 1);
        std::fs::write(
            sub("config/vault.hcl"),
            config(name, &node_id, &peers, port),
        )
        .map_err(|e| format!("config: {e}"))?;
        // The harness's own user inside the container: what the node writes
        // (raft data, the audit log) is then the harness's to read and
        // delete, also when it does not run as root.
        let user = {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(dir.path()).map_err(|e| format!("temp dir: {e}"))?;
            format!("{}:{}", meta.uid(), meta.gid())
        };
        let container = image
            .clone()
            .with_cmd(["server", "-config=/config/vault.hcl"])
            .with_label(OWNER_LABEL, this_owner())
            .with_user(user)
            .with_container_name(name)
            .with_network(&network)
            .with_mapped_port(port, ContainerPort::Tcp(8200))
            .with_mount(Mount::bind_mount(sub("audit").to_string_lossy(), "/audit"))
            .with_mount(Mount::bind_mount(
                sub("config").to_string_lossy(),
                "/config",
            ))
            .with_mount(Mount::bind_mount(sub("data").to_string_lossy(), "/data"))
            .with_mount(Mount::tmpfs_mount("/tmp"))
            .with_cap_add("IPC_LOCK")
            // Loopback only: a test Vault is no one else's business.
            .with_host_config_modifier(|hc| {
                if let Some(bindings) = hc.port_bindings.as_mut() {
                    for b in bindings.values_mut().flatten().flatten() {
                        b.host_ip = Some("127.0.0.1".into());
                    }
                }
            })
            .with_startup_timeout(Duration::from_secs(60))
            .start()
            .await
            .map_err(|e| format!("starting cluster container {name}: {e}"))?;
        let admin = Admin::with_ca(
            &format!("https://127.0.0.1:{port}"),
            SecretString::from(String::new()),
            Some(&ca_pem),
        )?;
        wait_listening(&admin).await?;
        nodes.push(Box::new(ContainerNode {
            admin,
            container,
            running: true,
            dir,
        }));
    }
    TestCluster::from_listening(nodes, Some(&tls))
        .await
        .map_err(|e| e.to_string())
}
