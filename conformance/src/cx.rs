//! A live scenario's handle on the run ([`Cx`]): the shared Vault (or one of
//! its own), fresh directories, implementation processes, and the secrets it
//! handed out. Everything a scenario starts or provisions is recorded here, so
//! the runner can check hygiene over exactly that scenario's output with
//! exactly its secrets.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use secrecy::SecretString;

use crate::backend::{BackendSpec, Vault};
use crate::iut::{Captured, Iut, IutCommand};
use crate::verdict::Verdict;

/// Shared state of a run.
pub struct Env {
    pub(crate) iut: IutCommand,
    pub(crate) backend: BackendSpec,
    pub(crate) vault: Option<Vault>,
    pub(crate) vault_error: Option<String>,
    pub(crate) run_id: String,
    pub(crate) all_secrets: Mutex<Vec<SecretString>>,
    pub(crate) all_outputs: Mutex<Vec<Captured>>,
}

/// A live scenario's handle on the run: processes, Vault, secrets, directories.
/// Cheap to clone; everything it starts or provisions is attributed to the scenario.
#[derive(Clone)]
pub struct Cx {
    pub(crate) env: Arc<Env>,
    pub(crate) id: String,
    pub(crate) state: Arc<Mutex<CxState>>,
    /// A server of this scenario's own (see [`Cx::with_own_vault`]).
    pub(crate) own_vault: Option<Arc<Vault>>,
}

/// What a scenario handed out and started, for its hygiene check.
#[derive(Default)]
pub(crate) struct CxState {
    pub(crate) secrets: Vec<SecretString>,
    pub(crate) outputs: Vec<Captured>,
    /// The roots of the directories implementations were given: scanned
    /// after the scenario (`protocol.md` §6 H4).
    pub(crate) iut_dirs: Vec<PathBuf>,
    /// Servers of the scenario's own, whose issued tokens count as secrets.
    pub(crate) own_vaults: Vec<Arc<Vault>>,
    /// What the scenario measured ([`Cx::measure`]), for the report.
    pub(crate) measured: std::collections::BTreeMap<String, u64>,
    dirs: Vec<tempfile::TempDir>,
    counter: u32,
}

/// Directories a process of a scenario was given.
#[derive(Clone, Debug)]
pub struct Dirs {
    /// Its root (the process's working directory).
    pub root: PathBuf,
    /// `work_dir` of `configure`.
    pub work: PathBuf,
    /// `temp_dir` of `configure`, and `TMPDIR`.
    pub tmp: PathBuf,
    /// Where the harness writes credential files.
    pub creds: PathBuf,
}

impl Cx {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, CxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Vault server, or the reason there is none (an `error` verdict).
    pub fn vault(&self) -> Result<&Vault, Verdict> {
        if let Some(own) = &self.own_vault {
            return Ok(own);
        }
        self.env.vault.as_ref().ok_or_else(|| {
            Verdict::Error(
                self.env
                    .vault_error
                    .clone()
                    .unwrap_or_else(|| "no Vault server".into()),
            )
        })
    }

    /// Starts a Vault server for this scenario alone, one the harness can
    /// really stop and start with its data kept ([`Vault::start_stoppable`]),
    /// or `None` on a backend where the harness cannot stop the server
    /// (external). Stopping the shared server would break every scenario
    /// running at the same time, hence a server of its own.
    pub async fn stoppable_vault(&self) -> Result<Option<Arc<Vault>>, Verdict> {
        match Vault::start_stoppable(&self.env.backend).await {
            Ok(v) => Ok(v.map(Arc::new)),
            Err(e) => Err(Verdict::Error(format!("a stoppable Vault: {e}"))),
        }
    }

    /// A 3-node cluster of the scenario's own, where the backend can start
    /// one (process); `None` elsewhere.
    pub async fn cluster_vault(&self) -> Result<Option<Arc<Vault>>, Verdict> {
        match Vault::start_cluster(&self.env.backend).await {
            Ok(v) => Ok(v.map(Arc::new)),
            Err(e) => Err(Verdict::Error(format!("a Vault cluster: {e}"))),
        }
    }

    /// The same handle, with [`Cx::vault`] answering `vault` from now on.
    pub fn with_own_vault(&self, vault: Arc<Vault>) -> Cx {
        self.lock().own_vaults.push(vault.clone());
        Cx {
            own_vault: Some(vault),
            ..self.clone()
        }
    }

    /// A path prefix unique to this scenario in this run, e.g. `vc-1a2b/resolve-latest`.
    pub fn prefix(&self) -> String {
        format!("vc-{}/{}", self.env.run_id, self.id.replace('.', "-"))
    }

    /// A name unique to this scenario, for policies and roles.
    pub fn name(&self, what: &str) -> String {
        format!(
            "vc-{}-{}-{what}",
            self.env.run_id,
            self.id.replace('.', "-")
        )
    }

    /// A fresh, obviously fake, unique GitHub-style token, registered for hygiene.
    pub fn fake_token(&self) -> SecretString {
        let mut s = self.lock();
        s.counter += 1;
        // `ghp_` and 36 characters: the shape the `github-pat` rule knows,
        // so a worker's redactor masks it by rule too, like a real token.
        // Random first: hygiene counts the first half of a secret as a leak
        // (H1), so that half must be this token's alone.
        let random = crate::backend::random_hex(12);
        let value = SecretString::from(format!("ghp_{random}FAKE{:04}FAKE", s.counter));
        s.secrets.push(value.clone());
        value
    }

    /// Registers a secret the scenario handed out (a Vault token, a secret id).
    pub fn register(&self, secret: &SecretString) {
        self.lock().secrets.push(secret.clone());
    }

    /// Records a measurement for the report (`name` ends with its unit,
    /// e.g. `failover_window_ms`); a second one of the same name replaces it.
    pub fn measure(&self, name: &str, value: u64) {
        self.lock().measured.insert(name.to_string(), value);
    }

    /// Whether `name` was measured already.
    pub fn measured(&self, name: &str) -> bool {
        self.lock().measured.contains_key(name)
    }

    /// Every secret this scenario handed out so far.
    pub fn secrets(&self) -> Vec<SecretString> {
        self.lock().secrets.clone()
    }

    /// A fresh directory any user may write to (mode 1777, like `/tmp`):
    /// where a job action, which may run as another user, leaves what it
    /// found for the harness to read.
    pub fn open_dir(&self) -> Result<PathBuf, Verdict> {
        use std::os::unix::fs::PermissionsExt;
        // Under /tmp, not the harness's own temp dir: that one may be 0700
        // (`mktemp -d`), and the action's user could not reach into it.
        let base = std::path::Path::new("/tmp");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("vaultref-conf-open-")
            .permissions(std::fs::Permissions::from_mode(0o1777))
            .tempdir_in(base)
            .map_err(|e| Verdict::Error(format!("temp dir: {e}")))?;
        // tempfile's mode is filtered by the umask: set it again.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777))
            .map_err(|e| Verdict::Error(format!("chmod: {e}")))?;
        let path = dir.path().to_path_buf();
        self.lock().dirs.push(dir);
        Ok(path)
    }

    /// Fresh directories for one process.
    pub fn dirs(&self) -> Result<Dirs, Verdict> {
        let dir = tempfile::Builder::new()
            .prefix("vaultref-conf-")
            .tempdir()
            .map_err(|e| Verdict::Error(format!("temp dir: {e}")))?;
        let root = dir.path().to_path_buf();
        let dirs = Dirs {
            work: root.join("work"),
            tmp: root.join("tmp"),
            creds: root.join("creds"),
            root,
        };
        for d in [&dirs.work, &dirs.tmp, &dirs.creds] {
            std::fs::create_dir_all(d)
                .map_err(|e| Verdict::Error(format!("{}: {e}", d.display())))?;
        }
        let mut state = self.lock();
        state.iut_dirs.push(dirs.root.clone());
        state.dirs.push(dir);
        Ok(dirs)
    }

    /// Starts an implementation process in `dirs`; its output is attributed to
    /// this scenario.
    pub async fn start_iut(&self, dirs: &Dirs) -> Result<Iut, Verdict> {
        self.start_iut_env(dirs, &[]).await
    }

    /// [`Cx::start_iut`] with extra environment variables.
    pub async fn start_iut_env(
        &self,
        dirs: &Dirs,
        env: &[(String, std::ffi::OsString)],
    ) -> Result<Iut, Verdict> {
        let iut = Iut::start_with_env(&self.env.iut, &dirs.root, &dirs.tmp, env).await?;
        self.lock()
            .outputs
            .extend([iut.out.clone(), iut.err.clone()]);
        Ok(iut)
    }

    /// Writes a credential file with mode 0600 (no trailing newline).
    pub fn write_secret_file(
        &self,
        dirs: &Dirs,
        name: &str,
        value: &SecretString,
    ) -> Result<PathBuf, Verdict> {
        use secrecy::ExposeSecret;
        let path = dirs.creds.join(name);
        write_0600(&path, value.expose_secret().as_bytes())
            .map_err(|e| Verdict::Error(format!("{}: {e}", path.display())))?;
        Ok(path)
    }
}

/// Writes `bytes` to `path` (replacing it atomically) with mode 0600.
pub fn write_0600(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
