//! What a given job may name: the mount allow-list, the length limit and path
//! scopes (`spec/secret-ref.md` §4).
//!
//! Syntax ([`crate::secret_ref`]) says what a ref *is*; a [`RefPolicy`] says
//! whether *this job* may use it. The split matters for defence in depth: the
//! worker's Vault policy may be able to read many repositories' credentials, but
//! a scope like `moonmind/repos/{repository}` binds each job to its own.
//!
//! Scopes fail closed: a template whose variables the job cannot bind matches
//! nothing.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::secret_ref::{MAX_REF_LENGTH, RefError, SCHEME, SecretRef, is_segchar};

/// Checks refs against an allow-list of mounts, a maximum length and path scopes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PolicySettings", into = "PolicySettings")]
pub struct RefPolicy {
    allowed_mounts: Vec<String>,
    max_length: usize,
    scopes: Vec<ScopeTemplate>,
}

/// The serialised form of a [`RefPolicy`], as written in vectors, the
/// conformance protocol and configuration files. Every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    /// Mounts a ref may name; default `["kv"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_mounts: Option<Vec<String>>,
    /// Maximum ref length in bytes, 1 to 512; default 512.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// Path scope templates; default none (no scope check).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

/// The job-specific values scope templates are bound to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeContext {
    /// The job's repository as `owner/repo`.
    #[serde(default)]
    pub repository: Option<String>,
    /// The worker's id.
    #[serde(default)]
    pub worker_id: Option<String>,
}

/// A policy that could not be built (error code `config_invalid`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    message: String,
}

impl PolicyError {
    fn new(message: impl Into<String>) -> Self {
        PolicyError {
            message: message.into(),
        }
    }

    /// Always [`ErrorCode::ConfigInvalid`].
    pub fn code(&self) -> ErrorCode {
        ErrorCode::ConfigInvalid
    }

    /// A message for people.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)
    }
}

impl std::error::Error for PolicyError {}

impl Default for RefPolicy {
    /// Mount `kv` only, 512 bytes, no scopes.
    fn default() -> Self {
        RefPolicy {
            allowed_mounts: vec!["kv".to_string()],
            max_length: MAX_REF_LENGTH,
            scopes: Vec::new(),
        }
    }
}

impl RefPolicy {
    /// Replaces the mount allow-list.
    pub fn with_allowed_mounts<I, S>(mut self, mounts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_mounts = mounts.into_iter().map(Into::into).collect();
        self
    }

    /// Lowers the maximum length. Values above 512 or of 0 are refused.
    pub fn with_max_length(mut self, max_length: usize) -> Result<Self, PolicyError> {
        if max_length == 0 || max_length > MAX_REF_LENGTH {
            return Err(PolicyError::new(format!(
                "max_length must be from 1 to {MAX_REF_LENGTH}, not {max_length}"
            )));
        }
        self.max_length = max_length;
        Ok(self)
    }

    /// Replaces the scope templates, validating each.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Result<Self, PolicyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.scopes = scopes
            .into_iter()
            .map(|s| ScopeTemplate::parse(s.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// The mounts refs may name.
    pub fn allowed_mounts(&self) -> &[String] {
        &self.allowed_mounts
    }

    /// The maximum ref length in bytes.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The scope templates, as written.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scopes.iter().map(|s| s.text.as_str())
    }

    /// The Vault ACL path patterns (`<mount>/data/<path>`) that grant what
    /// this policy lets a job described by `ctx` name: one per allowed mount
    /// and scope template, with the template's variables bound to `ctx`, `*`
    /// written `+` (one segment) and a last `**` written `/*` (Vault's prefix
    /// glob; it also matches paths a ref could not name, such as a trailing
    /// `/`, never a path outside the template's prefix). A template whose
    /// variables `ctx` cannot bind gives nothing (scopes fail closed). `None`
    /// when the policy has no scopes: every path of the mount is allowed, and
    /// no policy narrower than the whole mount says so.
    pub fn vault_acl_paths(&self, ctx: &ScopeContext) -> Option<Vec<String>> {
        if self.scopes.is_empty() {
            return None;
        }
        let mut paths = Vec::new();
        for mount in &self.allowed_mounts {
            for template in &self.scopes {
                if let Some(glob) = template.acl_glob(ctx) {
                    let path = format!("{mount}/data/{glob}");
                    if !paths.contains(&path) {
                        paths.push(path);
                    }
                }
            }
        }
        Some(paths)
    }

    /// Parses `input` and applies this policy for a job described by `ctx`:
    /// syntax first (with this policy's length limit), then the mount, then scopes.
    pub fn check(&self, input: &str, ctx: &ScopeContext) -> Result<SecretRef, RefError> {
        self.check_bytes(input.as_bytes(), ctx)
    }

    /// [`RefPolicy::check`] for raw bytes.
    pub fn check_bytes(&self, input: &[u8], ctx: &ScopeContext) -> Result<SecretRef, RefError> {
        let parsed = SecretRef::parse_bytes(input, self.max_length)?;
        self.check_parsed(&parsed, ctx)?;
        Ok(parsed)
    }

    /// Applies the mount allow-list and the scopes to an already parsed ref.
    pub fn check_parsed(&self, parsed: &SecretRef, ctx: &ScopeContext) -> Result<(), RefError> {
        if !self.allowed_mounts.iter().any(|m| m == parsed.mount()) {
            return Err(RefError::new(
                ErrorCode::RefMountNotAllowed,
                Some(SCHEME.len()),
                format!(
                    "mount `{}` is not allowed; allowed mounts: {}",
                    parsed.mount(),
                    if self.allowed_mounts.is_empty() {
                        "(none)".to_string()
                    } else {
                        self.allowed_mounts.join(", ")
                    }
                ),
            ));
        }
        if !self.scopes.is_empty() {
            let segments: Vec<&str> = parsed.path_segments().collect();
            if !self.scopes.iter().any(|s| s.matches(&segments, ctx)) {
                return Err(RefError::new(
                    ErrorCode::RefOutOfScope,
                    Some(parsed.path_offset()),
                    format!(
                        "path `{}` is outside the scopes allowed for this job",
                        parsed.path()
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl TryFrom<PolicySettings> for RefPolicy {
    type Error = PolicyError;

    fn try_from(s: PolicySettings) -> Result<Self, Self::Error> {
        let mut policy = RefPolicy::default();
        if let Some(mounts) = s.allowed_mounts {
            policy = policy.with_allowed_mounts(mounts);
        }
        if let Some(max) = s.max_length {
            policy = policy.with_max_length(max)?;
        }
        policy.with_scopes(s.scopes)
    }
}

impl From<RefPolicy> for PolicySettings {
    fn from(p: RefPolicy) -> Self {
        PolicySettings {
            allowed_mounts: Some(p.allowed_mounts),
            max_length: Some(p.max_length),
            scopes: p.scopes.into_iter().map(|s| s.text).collect(),
        }
    }
}

/// One pattern segment of a scope template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Literal(String),
    AnyOne,
    AnyMany,
    Repository,
    Owner,
    Repo,
    WorkerId,
}

/// A validated scope template such as `moonmind/repos/{repository}`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ScopeTemplate {
    text: String,
    patterns: Vec<Pattern>,
}

impl ScopeTemplate {
    fn parse(text: &str) -> Result<ScopeTemplate, PolicyError> {
        let bad = |why: &str| PolicyError::new(format!("scope template `{text}`: {why}"));
        if text.is_empty() {
            return Err(bad("is empty"));
        }
        let parts: Vec<&str> = text.split('/').collect();
        let mut patterns = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let pattern = match *part {
                "" => return Err(bad("has an empty segment")),
                "." | ".." => return Err(bad("`.` and `..` are not allowed")),
                "*" => Pattern::AnyOne,
                "**" if i + 1 == parts.len() => Pattern::AnyMany,
                "**" => return Err(bad("`**` may only be the last segment")),
                "{repository}" => Pattern::Repository,
                "{owner}" => Pattern::Owner,
                "{repo}" => Pattern::Repo,
                "{worker_id}" => Pattern::WorkerId,
                lit if lit.bytes().all(is_segchar) => Pattern::Literal(lit.to_string()),
                _ => {
                    return Err(bad(&format!(
                        "`{part}` is not a name, `*`, `**` or a known variable"
                    )));
                }
            };
            patterns.push(pattern);
        }
        Ok(ScopeTemplate {
            text: text.to_string(),
            patterns,
        })
    }

    /// The template as a Vault ACL path glob, its variables bound to `ctx`
    /// (see [`RefPolicy::vault_acl_paths`]).
    fn acl_glob(&self, ctx: &ScopeContext) -> Option<String> {
        let repo = ctx.repository.as_deref().and_then(split_repository);
        let worker = ctx.worker_id.as_deref().filter(|w| is_segment(w));
        let mut segments: Vec<&str> = Vec::with_capacity(self.patterns.len() + 1);
        for pattern in &self.patterns {
            match pattern {
                Pattern::Literal(lit) => segments.push(lit),
                Pattern::AnyOne => segments.push("+"),
                Pattern::AnyMany => segments.push("*"),
                Pattern::Repository => {
                    let (owner, name) = repo?;
                    segments.extend([owner, name]);
                }
                Pattern::Owner => segments.push(repo?.0),
                Pattern::Repo => segments.push(repo?.1),
                Pattern::WorkerId => segments.push(worker?),
            }
        }
        Some(segments.join("/"))
    }

    fn matches(&self, path: &[&str], ctx: &ScopeContext) -> bool {
        let repo = ctx.repository.as_deref().and_then(split_repository);
        let worker = ctx.worker_id.as_deref().filter(|w| is_segment(w));
        let mut rest = path;
        for pattern in &self.patterns {
            let expected: &[&str] = match pattern {
                Pattern::AnyMany => return !rest.is_empty(),
                Pattern::AnyOne => match rest.split_first() {
                    Some((_, tail)) => {
                        rest = tail;
                        continue;
                    }
                    None => return false,
                },
                Pattern::Literal(lit) => &[lit.as_str()],
                Pattern::Repository => match repo {
                    Some((owner, name)) => &[owner, name],
                    None => return false,
                },
                Pattern::Owner => match repo {
                    Some((owner, _)) => &[owner],
                    None => return false,
                },
                Pattern::Repo => match repo {
                    Some((_, name)) => &[name],
                    None => return false,
                },
                Pattern::WorkerId => match worker {
                    Some(w) => &[w],
                    None => return false,
                },
            };
            match rest.strip_prefix(expected) {
                Some(tail) => rest = tail,
                None => return false,
            }
        }
        rest.is_empty()
    }
}

/// A ref whose path names scope variables, such as the worker setting
/// `default_repo_auth_ref = "vault://kv/moonmind/workers/{worker_id}/github#token"`
/// (`spec/resolver.md` W10): bound per job to the same [`ScopeContext`] the
/// scopes use, then checked by the same [`RefPolicy`] as a ref the job carried.
///
/// Variables (`{repository}`, `{owner}`, `{repo}`, `{worker_id}`) may stand
/// only in the path, never in the mount or the field. Binding fails closed: a
/// variable the job cannot bind (a repository URL whose path is not
/// `owner/repo`, no worker id) binds nothing, and a value that is not one
/// valid path segment (or `owner/repo` for `{repository}`) is never
/// substituted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefTemplate {
    text: String,
}

/// The variables a [`RefTemplate`] may name.
const REF_VARIABLES: &[&str] = &["{repository}", "{owner}", "{repo}", "{worker_id}"];

impl RefTemplate {
    /// Checks `text`: bound to a sample job, it must be a valid ref, and its
    /// variables must stand in the path (`config_invalid` otherwise).
    pub fn parse(text: &str) -> Result<RefTemplate, PolicyError> {
        let bad = |why: &str| PolicyError::new(format!("ref template `{text}`: {why}"));
        let mut rest = text;
        while let Some(start) = rest.find('{') {
            let Some(len) = rest[start..].find('}') else {
                return Err(bad("has a `{` without `}`"));
            };
            let name = &rest[start..start + len + 1];
            if !REF_VARIABLES.contains(&name) {
                return Err(bad(&format!("`{name}` is not a known variable")));
            }
            rest = &rest[start + len + 1..];
        }
        let template = RefTemplate {
            text: text.to_owned(),
        };
        let sample = ScopeContext {
            repository: Some("owner/repo".to_owned()),
            worker_id: Some("worker".to_owned()),
        };
        let bound = template
            .bind(&sample)
            .ok_or_else(|| bad("cannot be bound"))?
            .map_err(|e| bad(e.message()))?;
        // A variable in the mount or the field would let a job's repository
        // choose them: only the path may vary.
        let head = &text[..text.find('#').unwrap_or(text.len())];
        let mount_end = SCHEME.len() + bound.mount().len();
        if text.get(SCHEME.len()..mount_end) != Some(bound.mount())
            || text[head.len()..].contains('{')
        {
            return Err(bad("variables may stand only in the path"));
        }
        Ok(template)
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The ref for a job described by `ctx`: `None` when a variable the
    /// template names cannot be bound, else the parse result.
    pub fn bind(&self, ctx: &ScopeContext) -> Option<Result<SecretRef, RefError>> {
        let repo = ctx.repository.as_deref().and_then(split_repository);
        let worker = ctx.worker_id.as_deref().filter(|w| is_segment(w));
        let mut text = self.text.clone();
        for name in REF_VARIABLES {
            if !text.contains(name) {
                continue;
            }
            let value = match *name {
                "{repository}" => repo.map(|(o, r)| format!("{o}/{r}"))?,
                "{owner}" => repo?.0.to_owned(),
                "{repo}" => repo?.1.to_owned(),
                _ => worker?.to_owned(),
            };
            text = text.replace(name, &value);
        }
        Some(SecretRef::parse(&text))
    }
}

impl fmt::Display for RefTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && s.bytes().all(is_segchar)
}

/// `owner/repo` with two valid segments, or `None`.
fn split_repository(repository: &str) -> Option<(&str, &str)> {
    let (owner, name) = repository.split_once('/')?;
    (is_segment(owner) && is_segment(name)).then_some((owner, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_templates_bind_path_variables_and_fail_closed() {
        let t = RefTemplate::parse("vault://kv/moonmind/workers/{worker_id}/github#token").unwrap();
        let ctx = |repo: Option<&str>, worker: Option<&str>| ScopeContext {
            repository: repo.map(str::to_owned),
            worker_id: worker.map(str::to_owned),
        };
        let bound = t.bind(&ctx(None, Some("executor-01"))).unwrap().unwrap();
        assert_eq!(
            bound.to_string(),
            "vault://kv/moonmind/workers/executor-01/github#token"
        );
        // Fail closed: nothing to bind, or a value that is not one segment.
        assert!(t.bind(&ctx(None, None)).is_none());
        assert!(t.bind(&ctx(None, Some(".."))).is_none());
        assert!(t.bind(&ctx(None, Some("a/b"))).is_none());
        let r = RefTemplate::parse("vault://kv/moonmind/repos/{repository}#github_token").unwrap();
        assert_eq!(
            r.bind(&ctx(Some("Acme/Api"), None))
                .unwrap()
                .unwrap()
                .path(),
            "moonmind/repos/Acme/Api"
        );
        assert!(r.bind(&ctx(Some("https://h/Acme/Api"), None)).is_none());
        assert!(r.bind(&ctx(Some("Acme/../x"), None)).is_none());
        // No variable at all: a fixed ref.
        assert!(RefTemplate::parse("vault://kv/w/github#token").is_ok());
    }

    #[test]
    fn ref_templates_refuse_unknown_variables_and_variables_outside_the_path() {
        for bad in [
            "vault://kv/w/{job_id}#token",
            "vault://kv/w/{worker_id#token",
            "vault://{owner}/w#token",
            "vault://kv/w#{repo}",
            "vault://kv/w/{worker_id}",
            "kv/w/{worker_id}#token",
        ] {
            let e = RefTemplate::parse(bad).unwrap_err();
            assert!(e.message().contains(bad), "{bad}: {}", e.message());
        }
    }

    #[test]
    fn scopes_become_vault_acl_paths_bound_to_the_job() {
        let p = RefPolicy::default()
            .with_scopes([
                "moonmind/repos/{repository}",
                "moonmind/workers/{worker_id}/**",
                "shared/*/{repo}",
            ])
            .unwrap();
        let paths = p
            .vault_acl_paths(&ctx("Acme/Api", Some("executor-01")))
            .unwrap();
        assert_eq!(
            paths,
            [
                "kv/data/moonmind/repos/Acme/Api",
                "kv/data/moonmind/workers/executor-01/*",
                "kv/data/shared/+/Api",
            ]
        );
        // Unbindable variables give nothing: scopes fail closed.
        let paths = p.vault_acl_paths(&ctx("not-a-slug", None)).unwrap();
        assert!(paths.is_empty(), "{paths:?}");
        assert_eq!(
            RefPolicy::default().vault_acl_paths(&ctx("Acme/Api", None)),
            None
        );
    }

    fn ctx(repo: &str, worker: Option<&str>) -> ScopeContext {
        ScopeContext {
            repository: Some(repo.into()),
            worker_id: worker.map(Into::into),
        }
    }

    #[test]
    fn scopes_bind_the_job() {
        let p = RefPolicy::default()
            .with_scopes([
                "moonmind/repos/{repository}",
                "moonmind/workers/{worker_id}/**",
            ])
            .unwrap();
        let c = ctx("Acme/Api", Some("executor-01"));
        assert!(
            p.check("vault://kv/moonmind/repos/Acme/Api#github_token", &c)
                .is_ok()
        );
        assert!(
            p.check("vault://kv/moonmind/workers/executor-01/github#token", &c)
                .is_ok()
        );
        let e = p
            .check("vault://kv/moonmind/repos/Acme/Other#github_token", &c)
            .unwrap_err();
        assert_eq!((e.code(), e.offset()), (ErrorCode::RefOutOfScope, Some(11)));
        // `**` needs at least one segment.
        assert!(
            p.check("vault://kv/moonmind/workers/executor-01#token", &c)
                .is_err()
        );
        // No worker id bound: the worker template matches nothing.
        let no_worker = ctx("Acme/Api", None);
        assert!(
            p.check(
                "vault://kv/moonmind/workers/executor-01/github#token",
                &no_worker
            )
            .is_err()
        );
    }

    #[test]
    fn mount_allow_list_and_length() {
        let p = RefPolicy::default().with_max_length(20).unwrap();
        let c = ScopeContext::default();
        assert_eq!(p.check("vault://kv/a#f", &c).unwrap().field(), "f");
        let e = p.check("vault://kv/abcdefghijk#f", &c).unwrap_err();
        assert_eq!((e.code(), e.offset()), (ErrorCode::RefTooLong, Some(20)));
        let e = p.check("vault://secret/a#f", &c).unwrap_err();
        assert_eq!(e.code(), ErrorCode::RefMountNotAllowed);
        assert!(RefPolicy::default().with_max_length(513).is_err());
        assert!(RefPolicy::default().with_scopes(["a/**/b"]).is_err());
        assert!(RefPolicy::default().with_scopes(["a/../b"]).is_err());
    }
}
