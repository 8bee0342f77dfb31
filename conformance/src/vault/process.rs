//! The `process` backend: `bao server -dev` on a free local port.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use secrecy::SecretString;
use tokio::process::{Child, Command};

use super::{Admin, audit_config, free_port, random_hex};

/// A dev-mode server owned by the harness; killed on drop.
pub struct ProcessVault {
    pub admin: Admin,
    pub audit_log: PathBuf,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl ProcessVault {
    pub async fn start(binary: &Path) -> Result<ProcessVault, String> {
        let dir = tempfile::Builder::new()
            .prefix("vaultref-vault-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let audit_log = dir.path().join("audit.log");
        let config = dir.path().join("audit.hcl");
        std::fs::write(&config, audit_config(&audit_log.to_string_lossy()))
            .map_err(|e| format!("writing {}: {e}", config.display()))?;
        let port = free_port()?;
        let root = random_hex(16);
        let log = std::fs::File::create(dir.path().join("server.log"))
            .map_err(|e| format!("server log: {e}"))?;
        // The root token goes through the environment, not argv.
        let child = Command::new(binary)
            .arg("server")
            .arg("-dev")
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-config={}", config.display()))
            .env("BAO_DEV_ROOT_TOKEN_ID", &root)
            .env("VAULT_DEV_ROOT_TOKEN_ID", &root)
            .env_remove("BAO_TOKEN")
            .env_remove("VAULT_TOKEN")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let admin = Admin::new(
            &format!("http://127.0.0.1:{port}"),
            SecretString::from(root),
        );
        Ok(ProcessVault {
            admin,
            audit_log,
            _child: child,
            _dir: dir,
        })
    }
}
