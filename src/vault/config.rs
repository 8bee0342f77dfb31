//! Vault settings: from the environment ([`VaultConfig::from_env`]) or a JSON
//! file ([`VaultConfig::from_file`]), both funnelled through one validator so
//! the two sources cannot drift apart.
//!
//! Validation happens here, before any request: an unknown auth method, a
//! missing credential file or a refused `VAULT_TOKEN` is `config_invalid` at
//! start-up rather than a puzzling failure on the first job. Credential
//! *contents* are not read here: files are re-read at each login, because
//! Vault Agent and secret-id rotation rewrite them while the worker runs.
//!
//! Settings (environment name / file key):
//!
//! | env | file key | meaning |
//! |---|---|---|
//! | `VAULTREF_CONFIG` | — | path of a JSON config file; when set, the other variables are ignored |
//! | `VAULT_ADDR` | `addr` | base URL, `http://` or `https://`, no `/v1` |
//! | `VAULT_NAMESPACE` | `namespace` | sent as `X-Vault-Namespace` |
//! | `VAULT_AUTH_METHOD` | `auth.method` | `token`, `approle`, `jwt`, `kubernetes` |
//! | `VAULT_AUTH_MOUNT` | `auth.mount` | auth mount path; default: the method name |
//! | `VAULT_TOKEN_FILE` | `auth.token_file` | `token`: the token (a Vault Agent sink) |
//! | `VAULT_ROLE_ID_FILE` | `auth.role_id_file` | `approle` |
//! | `VAULT_SECRET_ID_FILE` | `auth.secret_id_file` | `approle` |
//! | `VAULT_AUTH_ROLE` | `auth.role` | `jwt`, `kubernetes`: the Vault role |
//! | `VAULT_JWT_FILE` | `auth.jwt_file` | `jwt`: the JWT; `kubernetes`: the service-account token (default `/var/run/secrets/kubernetes.io/serviceaccount/token`) |
//! | `VAULT_TOKEN` + `VAULTREF_ALLOW_ENV_TOKEN=1` | — | a raw token from the environment; refused without the opt-in |
//! | `VAULTREF_ALLOWED_MOUNTS` | `allowed_mounts` | comma-separated mounts refs may name; default `kv` |
//! | `VAULTREF_TIMEOUT_MS` | `timeout_ms` | per-request timeout, 1 to 300000 ms; default 5000 |
//! | `VAULTREF_JOB_ID_HEADER` | `job_id_header` | header carrying the job id; default `X-Vaultref-Job-Id` |
//! | `VAULT_CACERT` | `ca_cert` | PEM CA bundle for `https://` addresses |
//! | `VAULTREF_CLUSTER_ADDRS` | `cluster_addrs` | comma-separated addresses of the cluster's other nodes (`resolver.md` §13); default none |
//! | `VAULTREF_FAILOVER_MS` | `failover_ms` | with cluster addresses: how long a request may ride through a failover, 0 to 120000 ms; default 15000 |

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::error::ResolveError;
use crate::secret_ref::is_segchar;

/// The default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a request may ride through a failover when the cluster's other
/// nodes are configured (`resolver.md` §13).
pub const DEFAULT_FAILOVER: Duration = Duration::from_secs(15);

/// The default header that carries the job id on every job-bound request.
pub const DEFAULT_JOB_ID_HEADER: &str = "X-Vaultref-Job-Id";

/// Where Kubernetes mounts a pod's service-account token.
pub const DEFAULT_K8S_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// How the resolver obtains its Vault token.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AuthConfig {
    /// A token in a file, re-read whenever it changes (Vault Agent's sink).
    /// Renewal and re-login are the agent's job.
    TokenFile {
        /// The sink file.
        path: PathBuf,
    },
    /// A raw token from `VAULT_TOKEN`, only with `VAULTREF_ALLOW_ENV_TOKEN=1`.
    /// Renewed if renewable; it cannot be replaced once dead.
    EnvToken {
        /// The token.
        token: SecretString,
    },
    /// AppRole login with role id and secret id read from files.
    AppRole {
        /// Auth mount, default `approle`.
        mount: String,
        /// File holding the role id.
        role_id_file: PathBuf,
        /// File holding the secret id.
        secret_id_file: PathBuf,
    },
    /// JWT login (`auth/<mount>/login` with `role` and `jwt`).
    Jwt {
        /// Auth mount, default `jwt`.
        mount: String,
        /// The Vault role.
        role: String,
        /// File holding the JWT.
        jwt_file: PathBuf,
    },
    /// Kubernetes login with the pod's service-account token.
    Kubernetes {
        /// Auth mount, default `kubernetes`.
        mount: String,
        /// The Vault role.
        role: String,
        /// File holding the service-account token.
        jwt_file: PathBuf,
    },
}

impl AuthConfig {
    /// The method's name as written in settings.
    pub fn method(&self) -> &'static str {
        match self {
            AuthConfig::TokenFile { .. } | AuthConfig::EnvToken { .. } => "token",
            AuthConfig::AppRole { .. } => "approle",
            AuthConfig::Jwt { .. } => "jwt",
            AuthConfig::Kubernetes { .. } => "kubernetes",
        }
    }

    /// Whether the resolver can obtain a new token by itself (log in again).
    pub fn can_login(&self) -> bool {
        matches!(
            self,
            AuthConfig::AppRole { .. } | AuthConfig::Jwt { .. } | AuthConfig::Kubernetes { .. }
        )
    }
}

/// Validated Vault settings.
#[derive(Clone, Debug)]
pub struct VaultConfig {
    /// Base URL without a trailing `/`.
    pub addr: String,
    /// Vault Enterprise / OpenBao namespace, if any.
    pub namespace: Option<String>,
    /// How to obtain a token.
    pub auth: AuthConfig,
    /// Mounts refs may name.
    pub allowed_mounts: Vec<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The header carrying the job id.
    pub job_id_header: String,
    /// CA bundle for `https://` addresses.
    pub ca_cert: Option<PathBuf>,
    /// The cluster's other nodes (`resolver.md` §13): with any, requests
    /// fail over between `addr` and these, following the leader.
    pub cluster_addrs: Vec<String>,
    /// How long a request may ride through a failover (with cluster
    /// addresses only; a single address fails at once, V6).
    pub failover: Duration,
}

/// The JSON config file, and the shape environment variables are mapped to.
/// It is also the `vault` object of the conformance protocol's `configure`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    addr: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    auth: AuthSettings,
    allowed_mounts: Option<Vec<String>>,
    timeout_ms: Option<u64>,
    job_id_header: Option<String>,
    ca_cert: Option<PathBuf>,
    cluster_addrs: Option<Vec<String>>,
    failover_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthSettings {
    method: Option<String>,
    mount: Option<String>,
    token_file: Option<PathBuf>,
    role_id_file: Option<PathBuf>,
    secret_id_file: Option<PathBuf>,
    role: Option<String>,
    jwt_file: Option<PathBuf>,
}

impl VaultConfig {
    /// A config for `addr` with `auth` and every other setting at its default.
    pub fn new(addr: impl Into<String>, auth: AuthConfig) -> Result<VaultConfig, ResolveError> {
        let settings = Settings {
            addr: Some(addr.into()),
            ..Settings::default()
        };
        validate(settings, None, false, Some(auth))
    }

    /// Reads settings from the process environment. `Ok(None)` means Vault
    /// is not configured at all (no `VAULT_ADDR`, no auth settings): jobs
    /// that carry a ref then fail with `vault_not_configured`.
    pub fn from_env() -> Result<Option<VaultConfig>, ResolveError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`VaultConfig::from_env`] with an explicit variable lookup (for tests
    /// and embedding).
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<VaultConfig>, ResolveError> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let env_token = get("VAULT_TOKEN").map(SecretString::from);
        let allow_env_token = get("VAULTREF_ALLOW_ENV_TOKEN").as_deref() == Some("1");
        if let Some(path) = get("VAULTREF_CONFIG") {
            return Self::from_file_with_env_token(Path::new(&path), env_token, allow_env_token)
                .map(Some);
        }
        let settings = Settings {
            addr: get("VAULT_ADDR"),
            namespace: get("VAULT_NAMESPACE"),
            auth: AuthSettings {
                method: get("VAULT_AUTH_METHOD"),
                mount: get("VAULT_AUTH_MOUNT"),
                token_file: get("VAULT_TOKEN_FILE").map(PathBuf::from),
                role_id_file: get("VAULT_ROLE_ID_FILE").map(PathBuf::from),
                secret_id_file: get("VAULT_SECRET_ID_FILE").map(PathBuf::from),
                role: get("VAULT_AUTH_ROLE"),
                jwt_file: get("VAULT_JWT_FILE").map(PathBuf::from),
            },
            allowed_mounts: get("VAULTREF_ALLOWED_MOUNTS")
                .map(|m| m.split(',').map(|s| s.trim().to_string()).collect()),
            timeout_ms: match get("VAULTREF_TIMEOUT_MS") {
                Some(t) => Some(t.trim().parse().map_err(|_| {
                    ResolveError::config(format!(
                        "VAULTREF_TIMEOUT_MS must be a whole number of milliseconds, not `{}`",
                        t.escape_debug()
                    ))
                })?),
                None => None,
            },
            job_id_header: get("VAULTREF_JOB_ID_HEADER"),
            ca_cert: get("VAULT_CACERT").map(PathBuf::from),
            cluster_addrs: get("VAULTREF_CLUSTER_ADDRS")
                .map(|m| m.split(',').map(|s| s.trim().to_string()).collect()),
            failover_ms: match get("VAULTREF_FAILOVER_MS") {
                Some(t) => Some(t.trim().parse().map_err(|_| {
                    ResolveError::config(format!(
                        "VAULTREF_FAILOVER_MS must be a whole number of milliseconds, not `{}`",
                        t.escape_debug()
                    ))
                })?),
                None => None,
            },
        };
        let nothing_set = settings.addr.is_none()
            && settings.auth.method.is_none()
            && settings.auth.token_file.is_none()
            && settings.auth.role_id_file.is_none()
            && settings.auth.jwt_file.is_none()
            && env_token.is_none();
        if nothing_set {
            return Ok(None);
        }
        let env_token = check_env_token(env_token, allow_env_token)?;
        validate(settings, env_token, true, None).map(Some)
    }

    /// Reads a JSON config file (keys in the table of the module doc). A
    /// `VAULT_TOKEN` in the environment is refused as with `from_env`.
    pub fn from_file(path: &Path) -> Result<VaultConfig, ResolveError> {
        let env_token = std::env::var("VAULT_TOKEN")
            .ok()
            .filter(|v| !v.is_empty())
            .map(SecretString::from);
        let allow = std::env::var("VAULTREF_ALLOW_ENV_TOKEN").ok().as_deref() == Some("1");
        Self::from_file_with_env_token(path, env_token, allow)
    }

    /// Parses the JSON text of a config file (see [`VaultConfig::from_file`]).
    pub fn from_json(text: &str) -> Result<VaultConfig, ResolveError> {
        let settings: Settings = serde_json::from_str(text)
            .map_err(|e| ResolveError::config(format!("Vault config: {e}")))?;
        validate(settings, None, true, None)
    }

    fn from_file_with_env_token(
        path: &Path,
        env_token: Option<SecretString>,
        allow: bool,
    ) -> Result<VaultConfig, ResolveError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ResolveError::config(format!("cannot read Vault config {}: {e}", path.display()))
        })?;
        let settings: Settings = serde_json::from_str(&text)
            .map_err(|e| ResolveError::config(format!("Vault config {}: {e}", path.display())))?;
        let env_token = check_env_token(env_token, allow)?;
        validate(settings, env_token, true, None)
    }
}

fn check_env_token(
    token: Option<SecretString>,
    allow: bool,
) -> Result<Option<SecretString>, ResolveError> {
    match token {
        Some(_) if !allow => Err(ResolveError::config(
            "VAULT_TOKEN is set: a raw long-lived token in the environment is refused; \
             use VAULT_TOKEN_FILE (Vault Agent sink), approle, jwt or kubernetes, \
             or set VAULTREF_ALLOW_ENV_TOKEN=1 to allow it explicitly",
        )),
        other => Ok(other),
    }
}

fn validate(
    s: Settings,
    env_token: Option<SecretString>,
    check_files: bool,
    auth: Option<AuthConfig>,
) -> Result<VaultConfig, ResolveError> {
    let addr = s
        .addr
        .ok_or_else(|| ResolveError::config("VAULT_ADDR (addr) is not set"))?;
    let addr = check_addr(&addr, "VAULT_ADDR")?;
    let mut cluster_addrs: Vec<String> = Vec::new();
    for a in s.cluster_addrs.unwrap_or_default() {
        let a = check_addr(&a, "an address of VAULTREF_CLUSTER_ADDRS (cluster_addrs)")?;
        if a.starts_with("https://") != addr.starts_with("https://") {
            return Err(ResolveError::config(format!(
                "cluster address {a} and VAULT_ADDR {addr} differ in scheme: a cluster is all https or all http"
            )));
        }
        if a == addr || cluster_addrs.contains(&a) {
            return Err(ResolveError::config(format!(
                "cluster address {a} is given twice"
            )));
        }
        cluster_addrs.push(a);
    }
    let failover_ms = s.failover_ms.unwrap_or(DEFAULT_FAILOVER.as_millis() as u64);
    if failover_ms > 120_000 {
        return Err(ResolveError::config(format!(
            "failover must be from 0 to 120000 ms, not {failover_ms}"
        )));
    }
    let header_ok = |v: &str| v.bytes().all(|b| b.is_ascii_graphic());
    if s.namespace.as_deref().is_some_and(|ns| !header_ok(ns)) {
        return Err(ResolveError::config(
            "VAULT_NAMESPACE has characters that cannot go in a header",
        ));
    }
    let allowed_mounts = s.allowed_mounts.unwrap_or_else(|| vec!["kv".to_string()]);
    for m in &allowed_mounts {
        if m.is_empty() || m == "." || m == ".." || !m.bytes().all(is_segchar) {
            return Err(ResolveError::config(format!(
                "allowed mount `{}` is not a valid mount name",
                m.escape_debug()
            )));
        }
    }
    let timeout_ms = s.timeout_ms.unwrap_or(DEFAULT_TIMEOUT.as_millis() as u64);
    if !(1..=300_000).contains(&timeout_ms) {
        return Err(ResolveError::config(format!(
            "timeout must be from 1 to 300000 ms, not {timeout_ms}"
        )));
    }
    let job_id_header = s
        .job_id_header
        .unwrap_or_else(|| DEFAULT_JOB_ID_HEADER.to_string());
    if job_id_header.is_empty()
        || !job_id_header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ResolveError::config(format!(
            "job id header `{}` is not a valid header name",
            job_id_header.escape_debug()
        )));
    }
    let auth = match auth {
        Some(auth) => auth,
        None => auth_config(s.auth, env_token, check_files)?,
    };
    Ok(VaultConfig {
        addr,
        namespace: s.namespace,
        auth,
        allowed_mounts,
        timeout: Duration::from_millis(timeout_ms),
        job_id_header,
        ca_cert: s.ca_cert,
        cluster_addrs,
        failover: Duration::from_millis(failover_ms),
    })
}

/// A Vault address as the transport uses it (no trailing `/`), or why not.
fn check_addr(addr: &str, what: &str) -> Result<String, ResolveError> {
    let addr = addr.trim().trim_end_matches('/').to_string();
    let valid = (addr.starts_with("http://") || addr.starts_with("https://"))
        && addr.len() > "https://".len() - 1
        && addr.bytes().all(|b| b.is_ascii_graphic())
        && !addr.contains(['?', '#', '@']);
    if valid {
        Ok(addr)
    } else {
        Err(ResolveError::config(format!(
            "{what} must be an http:// or https:// URL without credentials, query or fragment, not `{}`",
            addr.escape_debug()
        )))
    }
}

fn auth_config(
    a: AuthSettings,
    env_token: Option<SecretString>,
    check_files: bool,
) -> Result<AuthConfig, ResolveError> {
    let method = match (&a.method, &a.token_file, &env_token) {
        (Some(m), _, _) => m.as_str(),
        (None, Some(_), _) => "token",
        (None, None, Some(_)) => "token",
        (None, None, None) => {
            return Err(ResolveError::config(
                "no Vault auth method: set VAULT_AUTH_METHOD (token, approle, jwt, kubernetes)",
            ));
        }
    };
    let file = |p: Option<PathBuf>, name: &str| -> Result<PathBuf, ResolveError> {
        let p =
            p.ok_or_else(|| ResolveError::config(format!("auth method `{method}` needs {name}")))?;
        if check_files && !p.is_file() {
            return Err(ResolveError::config(format!(
                "{name} {} does not exist or is not a file",
                p.display()
            )));
        }
        Ok(p)
    };
    let mount = |default: &str| -> Result<String, ResolveError> {
        let m = a.mount.clone().unwrap_or_else(|| default.to_string());
        let ok = !m.is_empty()
            && m.split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".." && s.bytes().all(is_segchar));
        if ok {
            Ok(m)
        } else {
            Err(ResolveError::config(format!(
                "auth mount `{}` is not a valid mount path",
                m.escape_debug()
            )))
        }
    };
    let role = || -> Result<String, ResolveError> {
        let r = a.role.clone().ok_or_else(|| {
            ResolveError::config(format!(
                "auth method `{method}` needs VAULT_AUTH_ROLE (auth.role)"
            ))
        })?;
        if r.bytes().all(is_segchar) && !r.is_empty() {
            Ok(r)
        } else {
            Err(ResolveError::config(format!(
                "auth role `{}` is not a valid role name",
                r.escape_debug()
            )))
        }
    };
    match method {
        "token" => match (a.token_file.clone(), env_token) {
            (Some(_), Some(_)) => Err(ResolveError::config(
                "both VAULT_TOKEN and VAULT_TOKEN_FILE are set; keep one",
            )),
            (Some(_), None) => Ok(AuthConfig::TokenFile {
                path: file(a.token_file, "VAULT_TOKEN_FILE (auth.token_file)")?,
            }),
            (None, Some(token)) => Ok(AuthConfig::EnvToken { token }),
            (None, None) => Err(ResolveError::config(
                "auth method `token` needs VAULT_TOKEN_FILE (auth.token_file)",
            )),
        },
        "approle" => Ok(AuthConfig::AppRole {
            mount: mount("approle")?,
            role_id_file: file(a.role_id_file, "VAULT_ROLE_ID_FILE (auth.role_id_file)")?,
            secret_id_file: file(
                a.secret_id_file,
                "VAULT_SECRET_ID_FILE (auth.secret_id_file)",
            )?,
        }),
        "jwt" => Ok(AuthConfig::Jwt {
            mount: mount("jwt")?,
            role: role()?,
            jwt_file: file(a.jwt_file, "VAULT_JWT_FILE (auth.jwt_file)")?,
        }),
        "kubernetes" => Ok(AuthConfig::Kubernetes {
            mount: mount("kubernetes")?,
            role: role()?,
            jwt_file: file(
                Some(
                    a.jwt_file
                        .clone()
                        .unwrap_or_else(|| DEFAULT_K8S_TOKEN_FILE.into()),
                ),
                "VAULT_JWT_FILE (auth.jwt_file)",
            )?,
        }),
        other => Err(ResolveError::config(format!(
            "unknown Vault auth method `{}`; use token, approle, jwt or kubernetes",
            other.escape_debug()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn code(vars: &[(&str, &str)]) -> ErrorCode {
        VaultConfig::from_lookup(lookup(vars)).unwrap_err().code()
    }

    /// The README's settings table names the same variables and keys as
    /// this module's (the module doc is the reference, the README the user's).
    #[test]
    fn the_readme_settings_table_matches_the_module_doc() {
        let rows = |text: &str, prefix: &str| -> Vec<(String, String)> {
            text.lines()
                .filter_map(|l| l.strip_prefix(prefix))
                .filter_map(|l| {
                    let cells: Vec<&str> = l.split(" | ").collect();
                    (cells.len() >= 2 && cells[0].starts_with('`'))
                        .then(|| (cells[0].to_string(), cells[1].to_string()))
                })
                .collect()
        };
        let module = rows(include_str!("config.rs"), "//! | ");
        let readme = rows(include_str!("../../README.md"), "| ");
        assert!(module.len() >= 15, "{module:?}");
        for (env, key) in &module {
            let env_first = env.split(' ').next().unwrap_or_default();
            assert!(
                readme
                    .iter()
                    .any(|(e, k)| e.starts_with(env_first) && k == key),
                "README's settings table lacks {env} / {key}"
            );
        }
    }

    #[test]
    fn cluster_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let tf = dir.path().join("t");
        std::fs::write(&tf, "s.x").unwrap();
        let tf = tf.to_str().unwrap();
        let base = [
            ("VAULT_ADDR", "http://10.0.0.1:8200/"),
            ("VAULT_TOKEN_FILE", tf),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            v
        };
        let c = VaultConfig::from_lookup(lookup(&with(&[(
            "VAULTREF_CLUSTER_ADDRS",
            "http://10.0.0.2:8200, http://10.0.0.3:8200/",
        )])))
        .unwrap()
        .unwrap();
        assert_eq!(
            c.cluster_addrs,
            ["http://10.0.0.2:8200", "http://10.0.0.3:8200"]
        );
        assert_eq!(c.failover, DEFAULT_FAILOVER);
        let c = VaultConfig::from_lookup(lookup(&base)).unwrap().unwrap();
        assert!(c.cluster_addrs.is_empty());
        for bad in [
            ("VAULTREF_CLUSTER_ADDRS", "https://10.0.0.2:8200"),
            ("VAULTREF_CLUSTER_ADDRS", "http://10.0.0.1:8200"),
            ("VAULTREF_CLUSTER_ADDRS", "http://a:1,http://a:1"),
            ("VAULTREF_CLUSTER_ADDRS", "http://u:p@a:1"),
            ("VAULTREF_FAILOVER_MS", "120001"),
            ("VAULTREF_FAILOVER_MS", "soon"),
        ] {
            assert_eq!(code(&with(&[bad])), ErrorCode::ConfigInvalid, "{bad:?}");
        }
        let c = VaultConfig::from_json(&format!(
            r#"{{"addr": "http://a:1", "cluster_addrs": ["http://b:1"], "failover_ms": 0,
                "auth": {{"method": "token", "token_file": "{tf}"}}}}"#
        ))
        .unwrap();
        assert_eq!(
            (c.cluster_addrs, c.failover),
            (vec!["http://b:1".to_string()], Duration::ZERO)
        );
    }

    #[test]
    fn nothing_set_means_not_configured() {
        assert!(VaultConfig::from_lookup(lookup(&[])).unwrap().is_none());
    }

    #[test]
    fn env_token_is_refused_without_opt_in() {
        let vars = [
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "s.FAKEFAKEFAKEFAKEFAKEFAKE"),
        ];
        assert_eq!(code(&vars), ErrorCode::ConfigInvalid);
        let e = VaultConfig::from_lookup(lookup(&vars)).unwrap_err();
        assert!(!e.message().contains("FAKE"), "message leaks the token");
        let mut allowed = vars.to_vec();
        allowed.push(("VAULTREF_ALLOW_ENV_TOKEN", "1"));
        let cfg = VaultConfig::from_lookup(lookup(&allowed)).unwrap().unwrap();
        assert!(matches!(cfg.auth, AuthConfig::EnvToken { .. }));
        // A token alone, without an address, is still refused.
        assert_eq!(code(&[("VAULT_TOKEN", "s.FAKE")]), ErrorCode::ConfigInvalid);
    }

    #[test]
    fn bad_settings_are_config_invalid() {
        let addr = ("VAULT_ADDR", "http://127.0.0.1:8200");
        assert_eq!(
            code(&[addr, ("VAULT_AUTH_METHOD", "ldap")]),
            ErrorCode::ConfigInvalid
        );
        assert_eq!(code(&[addr]), ErrorCode::ConfigInvalid);
        assert_eq!(
            code(&[
                addr,
                ("VAULT_AUTH_METHOD", "approle"),
                ("VAULT_ROLE_ID_FILE", "/nonexistent/r")
            ]),
            ErrorCode::ConfigInvalid
        );
        assert_eq!(
            code(&[
                ("VAULT_ADDR", "ftp://x"),
                ("VAULT_TOKEN_FILE", "/etc/hostname")
            ]),
            ErrorCode::ConfigInvalid
        );
        assert_eq!(
            code(&[
                addr,
                ("VAULT_TOKEN_FILE", "/etc/hostname"),
                ("VAULTREF_TIMEOUT_MS", "0")
            ]),
            ErrorCode::ConfigInvalid
        );
        assert_eq!(
            code(&[
                addr,
                ("VAULT_TOKEN_FILE", "/etc/hostname"),
                ("VAULTREF_ALLOWED_MOUNTS", "kv,..")
            ]),
            ErrorCode::ConfigInvalid
        );
        assert_eq!(
            code(&[("VAULT_AUTH_METHOD", "approle")]),
            ErrorCode::ConfigInvalid
        );
    }

    #[test]
    fn env_and_file_agree() {
        let dir = tempfile::tempdir().unwrap();
        let role = dir.path().join("role_id");
        let secret = dir.path().join("secret_id");
        std::fs::write(&role, "r").unwrap();
        std::fs::write(&secret, "s").unwrap();
        let from_env = VaultConfig::from_lookup(lookup(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200/"),
            ("VAULT_AUTH_METHOD", "approle"),
            ("VAULT_ROLE_ID_FILE", role.to_str().unwrap()),
            ("VAULT_SECRET_ID_FILE", secret.to_str().unwrap()),
            ("VAULTREF_ALLOWED_MOUNTS", "kv, secret"),
            ("VAULTREF_TIMEOUT_MS", "2500"),
        ]))
        .unwrap()
        .unwrap();
        let json = serde_json::json!({
            "addr": "http://127.0.0.1:8200",
            "auth": {"method": "approle", "role_id_file": role, "secret_id_file": secret},
            "allowed_mounts": ["kv", "secret"],
            "timeout_ms": 2500,
        });
        let from_file = VaultConfig::from_json(&json.to_string()).unwrap();
        for cfg in [&from_env, &from_file] {
            assert_eq!(cfg.addr, "http://127.0.0.1:8200");
            assert_eq!(cfg.allowed_mounts, ["kv", "secret"]);
            assert_eq!(cfg.timeout, Duration::from_millis(2500));
            assert_eq!(cfg.job_id_header, DEFAULT_JOB_ID_HEADER);
            match &cfg.auth {
                AuthConfig::AppRole { mount, .. } => assert_eq!(mount, "approle"),
                other => panic!("wrong auth {}", other.method()),
            }
        }
        // The conformance protocol's `configure.vault` object (protocol.md §3.2).
        let protocol = serde_json::json!({
            "addr": "http://127.0.0.1:41234",
            "auth": {"method": "approle", "mount": "approle",
                     "role_id_file": role, "secret_id_file": secret},
            "job_id_header": "X-Vaultref-Job-Id",
        });
        let cfg = VaultConfig::from_json(&protocol.to_string()).unwrap();
        assert_eq!(cfg.auth.method(), "approle");
        let unknown = VaultConfig::from_json(r#"{"addr":"http://x:1","bogus":1}"#).unwrap_err();
        assert_eq!(unknown.code(), ErrorCode::ConfigInvalid);
    }
}
