//! `vaultref doctor`: the design's runbook as checks, run with the worker's
//! own settings and token ("check Vault auth status for the worker identity;
//! verify policy allows read on the target path; verify the field exists").
//!
//! Each check ends [`Verdict::Pass`], [`Verdict::Fail`] (with the fix a
//! person applies) or [`Verdict::Unknown`] (the worker's token may not ask,
//! which is how it should be for `sys/audit`). Only failures make the report
//! fail: a worker that cannot see the audit devices is not misconfigured for
//! that, and the report says who can tell.
//!
//! Order, and why: the server first (sealed or leaderless explains every
//! later failure), then the login (no token, no further answers), then each
//! ref (policy before read: a denied read says nothing about the secret),
//! then the audit devices. Every check runs even after a failure, so one run
//! lists everything to fix.
//!
//! Nothing here prints a value or a token: a ref's read goes through
//! the resolver's own read, whose value is dropped (zeroized) at once; `lookup-self`'s answer (which holds the token itself, in `id`) is
//! read for `policies`, `ttl` and `renewable` only.

use serde::Serialize;
use serde_json::Value;

use super::error::ResolveError;
use super::inspect::{server_text, strings};
use super::job::JobId;
use super::resolver::Resolver;
use crate::{ErrorCode, SecretRef};

/// How one check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// As it should be.
    Pass,
    /// Needs fixing; the finding says how.
    Fail,
    /// Could not be told with this token.
    Unknown,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `server`, `leader`, `login`, `ref.policy`, `ref.secret`, `audit`.
    pub check: &'static str,
    /// What was checked: the Vault address, the ref.
    pub subject: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What was found, for people.
    pub detail: String,
    /// What to do, when it failed (or could not be told).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The error code behind a failure, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
}

impl Finding {
    fn new(check: &'static str, subject: &str, verdict: Verdict, detail: String) -> Finding {
        Finding {
            check,
            subject: subject.to_owned(),
            verdict,
            detail,
            fix: None,
            code: None,
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }

    fn code(mut self, code: ErrorCode) -> Finding {
        self.code = Some(code);
        self
    }
}

/// A ref to check: as the operator typed it, and its parse under the
/// worker's ref policy (a refused ref is reported, never sent to Vault).
pub type RefToCheck = (String, Result<SecretRef, ResolveError>);

/// Everything `doctor` found, in check order.
#[derive(Clone, Debug, Serialize)]
pub struct DoctorReport {
    /// The Vault address.
    pub vault_addr: String,
    /// The auth method of the settings.
    pub auth_method: &'static str,
    /// The findings, in order.
    pub checks: Vec<Finding>,
}

impl DoctorReport {
    /// No check failed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.verdict != Verdict::Fail)
    }
}

/// The job id doctor's reads carry in the audit log.
pub const DOCTOR_JOB_ID: &str = "vaultref-doctor";

impl Resolver {
    /// Runs every check (see the module docs) with this resolver's settings.
    pub async fn doctor(&self, refs: &[RefToCheck]) -> DoctorReport {
        let addr = self.transport.addr().to_owned();
        let mut checks = vec![
            self.check_server(&addr).await,
            self.check_leader(&addr).await,
        ];
        let (login, policies) = self.check_login(&addr).await;
        let logged_in = login.verdict == Verdict::Pass;
        checks.push(login);
        for (typed, parsed) in refs {
            match parsed {
                Err(e) => checks.push(
                    Finding::new("ref.policy", typed, Verdict::Fail, e.message().to_owned())
                        .code(e.code())
                        .fix("this worker's jobs may not name this ref (mount or scopes); fix the ref or the worker's ref policy"),
                ),
                Ok(r) if !logged_in => checks.push(
                    Finding::new("ref.policy", typed, Verdict::Unknown, "no token: see `login`".to_owned())
                        .fix(format!("fix the login, then run doctor again for {r}")),
                ),
                Ok(r) => {
                    checks.push(self.check_ref_policy(typed, r, &policies).await);
                    checks.push(self.check_ref_secret(typed, r).await);
                }
            }
        }
        checks.push(if logged_in {
            self.check_audit(&addr).await
        } else {
            Finding::new(
                "audit",
                &addr,
                Verdict::Unknown,
                "no token: see `login`".to_owned(),
            )
        });
        DoctorReport {
            vault_addr: addr,
            auth_method: self.config().auth.method(),
            checks,
        }
    }

    async fn check_server(&self, addr: &str) -> Finding {
        let reply = match self.transport.get_public("sys/health").await {
            Ok(r) => r,
            Err(e) => {
                return Finding::new("server", addr, Verdict::Fail, e.message().to_owned())
                    .code(e.code())
                    .fix("check VAULT_ADDR, the network path and the server's TLS certificate (VAULT_CACERT)");
            }
        };
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        let version = body["version"]
            .as_str()
            .filter(|v| v.len() <= 40)
            .map(|v| format!(", version {v}"))
            .unwrap_or_default();
        let (verdict, detail, fix) = match reply.status {
            200 => (Verdict::Pass, "active, unsealed".to_owned(), None),
            429 | 472 | 473 => (
                Verdict::Pass,
                "standby, unsealed (requests are forwarded to the active node)".to_owned(),
                None,
            ),
            501 => (
                Verdict::Fail,
                "not initialised".to_owned(),
                Some("initialise it (`bao operator init`)"),
            ),
            503 => (
                Verdict::Fail,
                "sealed".to_owned(),
                Some(
                    "unseal it (`bao operator unseal`, or the auto-unseal's logs); workers decline secret jobs until then",
                ),
            ),
            s => (
                Verdict::Fail,
                format!("answered HTTP {s} to sys/health"),
                Some("check that VAULT_ADDR is Vault's API address"),
            ),
        };
        let mut f = Finding::new("server", addr, verdict, format!("{detail}{version}"));
        if let Some(fix) = fix {
            f = f.fix(fix).code(ErrorCode::VaultUnavailable);
        }
        f
    }

    async fn check_leader(&self, addr: &str) -> Finding {
        let reply = match self.transport.get_public("sys/leader").await {
            Ok(r) if r.status == 200 => r,
            Ok(r) => {
                return Finding::new(
                    "leader",
                    addr,
                    Verdict::Unknown,
                    format!("sys/leader answered HTTP {}", r.status),
                );
            }
            Err(e) => {
                return Finding::new("leader", addr, Verdict::Unknown, e.message().to_owned());
            }
        };
        leader_finding(addr, &reply.body)
    }

    /// The `login` finding, and the token's policies (from the same
    /// `lookup-self`) when it passed.
    async fn check_login(&self, addr: &str) -> (Finding, Vec<String>) {
        match self.login_lookup(addr).await {
            Ok((f, policies)) => (f, policies),
            Err(f) => (f, Vec::new()),
        }
    }

    async fn login_lookup(&self, addr: &str) -> Result<(Finding, Vec<String>), Finding> {
        let method = self.config().auth.method();
        let held = match self.tokens.current().await {
            Ok(h) => h,
            Err(e) => {
                return Err(
                    Finding::new("login", addr, Verdict::Fail, e.message().to_owned())
                        .code(e.code())
                        .fix(login_fix(method)),
                );
            }
        };
        let reply = match self
            .transport
            .get_worker("auth/token/lookup-self", held.token())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Err(
                    Finding::new("login", addr, Verdict::Fail, e.message().to_owned())
                        .code(e.code()),
                );
            }
        };
        match reply.status {
            200 => {}
            401 | 403 => {
                return Err(Finding::new(
                    "login",
                    addr,
                    Verdict::Fail,
                    format!(
                        "the worker's token is refused (lookup-self answered HTTP {})",
                        reply.status
                    ),
                )
                .code(ErrorCode::VaultAuthFailed)
                .fix(login_fix(method)));
            }
            s => {
                return Err(Finding::new(
                    "login",
                    addr,
                    Verdict::Fail,
                    format!("Vault answered HTTP {s} to lookup-self"),
                )
                .code(ErrorCode::VaultUnavailable)
                .fix("see `server`"));
            }
        }
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        let data = &body["data"];
        let policies: Vec<String> = strings(&data["policies"])
            .iter()
            .take(50)
            .map(|p| server_text(p))
            .collect();
        let ttl = data["ttl"].as_u64();
        let renewable = data["renewable"].as_bool().unwrap_or(false);
        let ttl_text = match ttl {
            Some(0) => "no expiry".to_owned(),
            Some(s) => format!("TTL {}", duration_text(s)),
            None => "TTL unknown".to_owned(),
        };
        let detail = format!(
            "logged in ({method} method): policies [{}], {ttl_text}, {}",
            policies.join(", "),
            if renewable {
                "renewable"
            } else {
                "not renewable"
            }
        );
        // A token that expires within a minute and cannot be renewed will
        // fail the next job unless something replaces it.
        if ttl.is_some_and(|s| s > 0 && s < 60) && !renewable && !self.config().auth.can_login() {
            return Err(Finding::new("login", addr, Verdict::Fail, detail)
                .code(ErrorCode::VaultAuthFailed)
                .fix("the token expires within a minute and cannot be renewed: issue a longer-lived or renewable token (or use AppRole)"));
        }
        Ok((Finding::new("login", addr, Verdict::Pass, detail), policies))
    }

    async fn check_ref_policy(&self, typed: &str, r: &SecretRef, policies: &[String]) -> Finding {
        let path = r.kv2_data_path();
        let caps = match self.capabilities(std::slice::from_ref(&path)).await {
            Ok(c) => c.get(&path).cloned().unwrap_or_default(),
            Err(e) => {
                return Finding::new(
                    "ref.policy",
                    typed,
                    Verdict::Unknown,
                    e.message().to_owned(),
                )
                .fix(
                    "the token may not call sys/capabilities-self (the `default` policy allows it)",
                );
            }
        };
        if caps.iter().any(|c| c == "read" || c == "root") {
            return Finding::new(
                "ref.policy",
                typed,
                Verdict::Pass,
                format!("read on {path}"),
            );
        }
        let named = match policies {
            [] => "the token's policies have".to_owned(),
            [one] => format!("policy `{one}` has"),
            many => format!(
                "policies {} have",
                many.iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Finding::new(
            "ref.policy",
            typed,
            Verdict::Fail,
            format!("{named} no read on {path} (capabilities: [{}])", caps.join(", ")),
        )
        .code(ErrorCode::VaultPermissionDenied)
        .fix(format!(
            "add `path \"{path}\" {{ capabilities = [\"read\"] }}` to the worker's policy (or render it: `vaultref policy render`)"
        ))
    }

    async fn check_ref_secret(&self, typed: &str, r: &SecretRef) -> Finding {
        // Without the job-and-ref context `resolve_credential` adds: the
        // report names the ref already.
        match self.resolve_inner(r, &JobId::new(DOCTOR_JOB_ID)).await {
            Ok(c) => {
                let version = c
                    .version
                    .map(|v| format!(", version {v}"))
                    .unwrap_or_default();
                let host = c
                    .host
                    .as_deref()
                    .map(|h| format!(", bound to host {h}"))
                    .unwrap_or_default();
                drop(c);
                Finding::new(
                    "ref.secret",
                    typed,
                    Verdict::Pass,
                    format!("field `{}` present{version}{host}", r.field()),
                )
            }
            Err(e) => {
                let kv = format!("{}/{}", r.mount(), r.path());
                let fix = match e.code() {
                    ErrorCode::SecretNotFound => format!(
                        "write it: `bao kv put -mount={} {} {}=...`",
                        r.mount(),
                        r.path(),
                        r.field()
                    ),
                    ErrorCode::SecretVersionDeleted => format!(
                        "undelete it (`bao kv undelete -mount={} -versions={} {}`) or write a new version and move the ref",
                        r.mount(),
                        r.version()
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "N".into()),
                        r.path()
                    ),
                    ErrorCode::SecretVersionDestroyed => format!(
                        "write a new version of {kv} (`bao kv put` or `bao kv patch`) and move the ref's `?version=`"
                    ),
                    ErrorCode::SecretFieldMissing => format!(
                        "add the field: `bao kv patch -mount={} {} {}=...`",
                        r.mount(),
                        r.path(),
                        r.field()
                    ),
                    ErrorCode::VaultPermissionDenied => "see ref.policy".to_owned(),
                    _ => "see server and login".to_owned(),
                };
                Finding::new("ref.secret", typed, Verdict::Fail, e.message().to_owned())
                    .code(e.code())
                    .fix(fix)
            }
        }
    }

    async fn check_audit(&self, addr: &str) -> Finding {
        let held = match self.tokens.current().await {
            Ok(h) => h,
            Err(e) => return Finding::new("audit", addr, Verdict::Unknown, e.message().to_owned()),
        };
        let reply = match self.transport.get_worker("sys/audit", held.token()).await {
            Ok(r) => r,
            Err(e) => return Finding::new("audit", addr, Verdict::Unknown, e.message().to_owned()),
        };
        audit_finding(addr, reply.status, &reply.body)
    }
}

/// The `audit` finding from an answer to `GET sys/audit` (pure, so the
/// "no device" case, which a test server declaring its device in its config
/// file cannot produce, is tested too).
fn audit_finding(addr: &str, status: u16, body: &[u8]) -> Finding {
    match status {
        200 => {
            let Ok(body) = serde_json::from_slice::<Value>(body) else {
                return Finding::new(
                    "audit",
                    addr,
                    Verdict::Unknown,
                    "sys/audit answered something that is not JSON".to_owned(),
                )
                .fix("check that VAULT_ADDR is Vault's API address");
            };
            let devices = body.get("data").filter(|d| d.is_object()).unwrap_or(&body);
            let mut names: Vec<String> = devices
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(_, v)| v.get("type").is_some())
                        .take(50)
                        .map(|(k, v)| {
                            let kind = v["type"].as_str().unwrap_or("?");
                            format!("{} ({})", server_text(k), server_text(kind))
                        })
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            if names.is_empty() {
                Finding::new("audit", addr, Verdict::Fail, "no audit device is enabled".to_owned())
                        .fix("enable one: an `audit \"file\"` block in the server's config (OpenBao 2.x), or `vault audit enable file file_path=...` (Vault); the design asks that every secret read be audited")
            } else {
                Finding::new(
                    "audit",
                    addr,
                    Verdict::Pass,
                    format!("enabled: {}", names.join(", ")),
                )
            }
        }
        401 | 403 => Finding::new(
            "audit",
            addr,
            Verdict::Unknown,
            "cannot tell: the worker's token may not read sys/audit (as it should not)".to_owned(),
        )
        .fix("an operator can check with `bao audit list`"),
        s => Finding::new(
            "audit",
            addr,
            Verdict::Unknown,
            format!("sys/audit answered HTTP {s}"),
        ),
    }
}

/// The `leader` finding from an answer to `GET sys/leader` (pure: the
/// leaderless case needs a cluster losing its quorum).
fn leader_finding(addr: &str, body: &[u8]) -> Finding {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if body["ha_enabled"] != Value::Bool(true) {
        return Finding::new(
            "leader",
            addr,
            Verdict::Pass,
            "a single server (HA not enabled)".to_owned(),
        );
    }
    let leader = server_text(body["leader_address"].as_str().unwrap_or(""));
    if leader.is_empty() {
        return Finding::new("leader", addr, Verdict::Fail, "HA cluster without a leader".to_owned())
            .code(ErrorCode::VaultUnavailable)
            .fix("check the cluster's nodes (`bao operator raft list-peers`); requests fail until a leader is elected");
    }
    let me = if body["is_self"] == Value::Bool(true) {
        " (this node)"
    } else {
        ""
    };
    Finding::new(
        "leader",
        addr,
        Verdict::Pass,
        format!("leader {leader}{me}"),
    )
}

fn login_fix(method: &str) -> &'static str {
    match method {
        "approle" => {
            "check the role id and secret id files (a secret id expires or is used up: issue a new one)"
        }
        "jwt" | "kubernetes" => {
            "check the role and the JWT file (expired? the role's bound claims?)"
        }
        _ => "check the token file (Vault Agent's sink): is the agent running, is the token alive?",
    }
}

/// `3599` → `59m59s`; `90000` → `25h0m`.
fn duration_text(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{}h{}m", s / 3_600, s % 3_600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_devices_pass_none_fails_forbidden_is_unknown() {
        let verdict = |status, body: &str| audit_finding("a", status, body.as_bytes()).verdict;
        let devices = r#"{"data":{"file/":{"type":"file","path":"file/"}}}"#;
        assert_eq!(verdict(200, devices), Verdict::Pass);
        assert_eq!(verdict(200, r#"{"data":{}}"#), Verdict::Fail);
        assert_eq!(verdict(200, "not json"), Verdict::Unknown);
        assert_eq!(verdict(403, ""), Verdict::Unknown);
        assert_eq!(verdict(500, ""), Verdict::Unknown);
        let f = audit_finding("a", 200, r#"{"data":{}}"#.as_bytes());
        assert!(f.fix.unwrap().contains("audit enable"));
    }

    #[test]
    fn a_cluster_without_a_leader_fails() {
        let verdict = |body: &str| leader_finding("a", body.as_bytes()).verdict;
        assert_eq!(verdict(r#"{"ha_enabled":false}"#), Verdict::Pass);
        assert_eq!(
            verdict(r#"{"ha_enabled":true,"is_self":false,"leader_address":"https://n2:8200"}"#),
            Verdict::Pass
        );
        assert_eq!(
            verdict(r#"{"ha_enabled":true,"leader_address":""}"#),
            Verdict::Fail
        );
        assert_eq!(verdict(r#"{"ha_enabled":true}"#), Verdict::Fail);
        let long = format!(
            r#"{{"ha_enabled":true,"leader_address":"{}"}}"#,
            "x".repeat(5000)
        );
        assert!(leader_finding("a", long.as_bytes()).detail.len() < 300);
    }

    #[test]
    fn names_from_the_server_cannot_fake_report_lines() {
        let body = r#"{"data":{"x\n✓ login  all fine\u001b[2K/":{"type":"file"}}}"#;
        let f = audit_finding("a", 200, body.as_bytes());
        assert_eq!(f.detail, "enabled: x?✓ login  all fine?[2K/ (file)");
        assert_eq!(
            server_text(&"y".repeat(101)),
            format!("{}…", "y".repeat(100))
        );
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration_text(59), "59s");
        assert_eq!(duration_text(3_599), "59m59s");
        assert_eq!(duration_text(90_000), "25h0m");
    }
}
