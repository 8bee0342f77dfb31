//! Vault policies made from the worker's own authorization: the queue policy
//! (which repositories it takes) and the ref policy (mounts and scope
//! templates), so that Vault access aligns with the worker's authorization
//! (the design's "defence in depth").
//!
//! - [`render`] writes the HCL policy that grants `read` on exactly the KV v2
//!   data paths those jobs may name (`RefPolicy::vault_acl_paths`, one per
//!   repository, mount and template), and optionally the `list` on their
//!   parents the design's example shows, nothing else.
//! - [`check`] asks Vault, with the worker's own token, whether it can read
//!   every path the worker needs and none of a repository outside the queue
//!   policy; a grant that is too wide is named when the token may read its
//!   own policies.
//!
//! Both refuse to work from a queue policy that allows every repository or a
//! ref policy without scopes: no policy narrower than the whole mount
//! expresses those, and pretending otherwise would fail open.

use std::collections::BTreeMap;

use serde::Serialize;

use super::error::ResolveError;
use super::resolver::Resolver;
use crate::{RefPolicy, ScopeContext};

/// A repository no queue policy names, used to probe for grants that are too
/// wide. Two valid segments, so every scope template binds it.
pub const OUTSIDE_PROBE: &str = "vaultref-probe/not-in-queue-policy";

/// A worker id other than the one checked, bound to `{worker_id}` in the
/// outside probe.
pub const OUTSIDE_WORKER: &str = "vaultref-probe-worker";

/// The segment written for `+` and `*` when a path pattern is turned into a
/// path to ask Vault about.
const PROBE_SEGMENT: &str = "vaultref-probe";

/// What the worker's policy is made from.
#[derive(Clone, Debug)]
pub struct WorkerGrant<'a> {
    /// The worker's id (binds `{worker_id}`).
    pub worker_id: &'a str,
    /// The queue policy's repositories (`owner/repo`), at least one.
    pub repositories: &'a [String],
    /// Mounts and scope templates.
    pub ref_policy: &'a RefPolicy,
}

impl WorkerGrant<'_> {
    /// The data path patterns per repository, in order, without duplicates.
    fn paths(&self) -> Result<Vec<(String, String)>, ResolveError> {
        if self.repositories.is_empty() {
            return Err(ResolveError::config(
                "name the repositories the worker takes (--allowed-repository): a queue policy that allows every repository cannot be expressed narrower than the whole mount",
            ));
        }
        let mut out: Vec<(String, String)> = Vec::new();
        for repo in self.repositories {
            let bound = self.bind(repo)?;
            if bound.is_empty() {
                return Err(ResolveError::config(format!(
                    "no scope template binds for repository `{repo}` and worker `{}`: is the repository `owner/repo` and the worker id one segment?",
                    self.worker_id
                )));
            }
            for path in bound {
                if !out.iter().any(|(_, p)| *p == path) {
                    out.push((repo.clone(), path));
                }
            }
        }
        Ok(out)
    }

    fn bind(&self, repository: &str) -> Result<Vec<String>, ResolveError> {
        self.bind_for(repository, self.worker_id)
    }

    fn bind_for(&self, repository: &str, worker_id: &str) -> Result<Vec<String>, ResolveError> {
        self.ref_policy
            .vault_acl_paths(&ScopeContext {
                repository: Some(repository.to_owned()),
                worker_id: Some(worker_id.to_owned()),
            })
            .ok_or_else(|| {
                ResolveError::config(
                    "give at least one scope template (--scope): without scopes a job may name any path of the mount, which no narrower policy expresses",
                )
            })
    }
}

/// The HCL policy granting `read` on exactly the data paths of `grant`, and
/// with `list`, `list` on each path's parent in the metadata tree (the
/// design's example; KV v2 lists through `metadata/`, not `data/`).
pub fn render(grant: &WorkerGrant<'_>, list: bool) -> Result<String, ResolveError> {
    let paths = grant.paths()?;
    let mut out = format!(
        "# Rendered by `vaultref policy render` for worker {}: read on exactly the\n# KV v2 paths its jobs may name ({} repositor{}; scopes {}). Nothing else.\n",
        grant.worker_id,
        grant.repositories.len(),
        if grant.repositories.len() == 1 {
            "y"
        } else {
            "ies"
        },
        grant
            .ref_policy
            .scopes()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (_, path) in &paths {
        out.push_str(&format!(
            "\npath \"{path}\" {{\n  capabilities = [\"read\"]\n}}\n"
        ));
    }
    if list {
        let mut parents: Vec<String> = Vec::new();
        for (_, path) in &paths {
            if let Some(parent) = list_path(path)
                && !parents.contains(&parent)
            {
                parents.push(parent);
            }
        }
        for parent in parents {
            out.push_str(&format!(
                "\npath \"{parent}\" {{\n  capabilities = [\"list\"]\n}}\n"
            ));
        }
    }
    Ok(out)
}

/// `<mount>/data/a/b/c` → `<mount>/metadata/a/b/*`.
fn list_path(data_path: &str) -> Option<String> {
    let (mount, rest) = data_path.split_once("/data/")?;
    let (parent, _) = rest.rsplit_once('/')?;
    Some(format!("{mount}/metadata/{parent}/*"))
}

/// Whether Vault's ACL path pattern `pattern` matches `path`: `+` is one
/// segment, a trailing `*` matches any rest (the only glob), the rest is
/// literal.
pub fn acl_matches(pattern: &str, path: &str) -> bool {
    let (body, prefix) = match pattern.strip_suffix('*') {
        Some(b) => (b, true),
        None => (pattern, false),
    };
    let pat: Vec<&str> = body.split('/').collect();
    let segs: Vec<&str> = path.split('/').collect();
    // The last pattern piece may be a partial segment before `*`.
    for (i, p) in pat.iter().enumerate() {
        let last = i + 1 == pat.len();
        let Some(s) = segs.get(i) else {
            return false;
        };
        let ok = if *p == "+" {
            true
        } else if last && prefix {
            s.starts_with(p)
        } else {
            p == s
        };
        if !ok {
            return false;
        }
    }
    prefix || segs.len() == pat.len()
}

/// The `path "..." { capabilities = [...] }` rules of an HCL policy text,
/// enough to name the rule behind a grant (not a full HCL parser).
pub fn policy_rules(hcl: &str) -> Vec<(String, Vec<String>)> {
    let mut rules = Vec::new();
    let mut rest = hcl;
    while let Some(at) = rest.find("path") {
        rest = &rest[at + 4..];
        let Some(open) = rest.find('"') else { break };
        let Some(close) = rest[open + 1..].find('"') else {
            break;
        };
        let path = rest[open + 1..open + 1 + close].to_owned();
        let after = &rest[open + 2 + close..];
        let Some(block_end) = after.find('}') else {
            break;
        };
        let block = &after[..block_end];
        let caps = block
            .find("capabilities")
            .and_then(|c| {
                let b = &block[c..];
                let (l, r) = (b.find('[')?, b.find(']')?);
                Some(
                    b[l + 1..r]
                        .split(',')
                        .map(|x| x.trim().trim_matches('"').to_owned())
                        .filter(|x| !x.is_empty())
                        .collect(),
                )
            })
            .unwrap_or_default();
        rules.push((path, caps));
        rest = &after[block_end..];
    }
    rules
}

/// One line of a policy check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `readable` (the worker needs it) or `not-readable` (outside the
    /// queue policy).
    pub kind: &'static str,
    /// The repository the path was bound for.
    pub repository: String,
    /// The path pattern, and the concrete path Vault was asked about.
    pub pattern: String,
    /// The path asked about (`+`/`*` replaced by a probe segment).
    pub probed: String,
    /// Whether the check passed.
    pub ok: bool,
    /// What to do about a failure (or what was found), for people.
    pub detail: String,
}

/// What [`check`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The worker.
    pub worker_id: String,
    /// The token's policies.
    pub policies: Vec<String>,
    /// Every check, in order: the allowed repositories, then the outside probe.
    pub checks: Vec<Check>,
}

impl CheckReport {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

fn probe_path(pattern: &str) -> String {
    let concrete: Vec<&str> = pattern
        .split('/')
        .map(|s| {
            if s == "+" || s == "*" {
                PROBE_SEGMENT
            } else {
                s
            }
        })
        .collect();
    concrete.join("/")
}

fn can_read(caps: Option<&Vec<String>>) -> bool {
    caps.is_some_and(|c| c.iter().any(|x| x == "read" || x == "root"))
}

/// Asks Vault, with `resolver`'s token, whether the worker can read every
/// data path `grant` needs and none of [`OUTSIDE_PROBE`]'s (bound for
/// [`OUTSIDE_WORKER`]). Errors only when
/// Vault cannot be asked (`sys/capabilities-self` refused or unreachable).
pub async fn check(
    resolver: &Resolver,
    grant: &WorkerGrant<'_>,
) -> Result<CheckReport, ResolveError> {
    let needed = grant.paths()?;
    let outside_repo = if grant.repositories.iter().any(|r| r == OUTSIDE_PROBE) {
        "vaultref-probe/also-not-in-queue-policy"
    } else {
        OUTSIDE_PROBE
    };
    // Another repository, on behalf of another worker: a grant wider than
    // the queue policy or than this worker's own paths shows on one of them.
    let outside: Vec<String> = grant.bind_for(outside_repo, OUTSIDE_WORKER)?;
    let mut ask: Vec<String> = needed.iter().map(|(_, p)| probe_path(p)).collect();
    ask.extend(outside.iter().map(|p| probe_path(p)));
    ask.sort();
    ask.dedup();
    let caps: BTreeMap<String, Vec<String>> = resolver.capabilities(&ask).await?;
    let policies = resolver.token_policies().await?;
    let mut texts: Vec<(String, Option<String>)> = Vec::new();
    for name in &policies {
        texts.push((
            name.clone(),
            resolver.acl_policy_text(name).await.ok().flatten(),
        ));
    }
    let mut checks = Vec::new();
    for (repo, pattern) in &needed {
        let probed = probe_path(pattern);
        let ok = can_read(caps.get(&probed));
        checks.push(Check {
            kind: "readable",
            repository: repo.clone(),
            pattern: pattern.clone(),
            probed: probed.clone(),
            ok,
            detail: if ok {
                "the worker can read it".into()
            } else {
                format!(
                    "no policy of the token grants read: add path \"{pattern}\" {{ capabilities = [\"read\"] }} (vaultref policy render)"
                )
            },
        });
    }
    for pattern in outside
        .iter()
        .filter(|p| !needed.iter().any(|(_, n)| n == *p))
    {
        let probed = probe_path(pattern);
        let readable = can_read(caps.get(&probed));
        let detail = if !readable {
            "not readable: no grant wider than the queue policy".into()
        } else {
            let named: Vec<String> = texts
                .iter()
                .filter_map(|(name, text)| {
                    let rules = policy_rules(text.as_deref()?);
                    let hits: Vec<String> = rules
                        .into_iter()
                        .filter(|(p, c)| {
                            acl_matches(p, &probed) && c.iter().any(|x| x == "read" || x == "root")
                        })
                        .map(|(p, _)| format!("policy `{name}` grants read on `{p}`"))
                        .collect();
                    (!hits.is_empty()).then(|| hits.join("; "))
                })
                .collect();
            if named.is_empty() {
                format!(
                    "readable, though it is outside this worker's queue policy: a grant is too wide (the token's policies {} could not be read to name it)",
                    policies.join(", ")
                )
            } else {
                format!(
                    "readable, though it is outside this worker's queue policy: {}",
                    named.join("; ")
                )
            }
        };
        checks.push(Check {
            kind: "not-readable",
            repository: outside_repo.to_owned(),
            pattern: pattern.clone(),
            probed,
            ok: !readable,
            detail,
        });
    }
    Ok(CheckReport {
        worker_id: grant.worker_id.to_owned(),
        policies,
        checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RefPolicy {
        RefPolicy::default()
            .with_scopes([
                "moonmind/repos/{repository}",
                "moonmind/workers/{worker_id}/**",
            ])
            .unwrap()
    }

    #[test]
    fn acl_globs_follow_vault() {
        assert!(acl_matches("kv/data/a/+/c", "kv/data/a/b/c"));
        assert!(!acl_matches("kv/data/a/+/c", "kv/data/a/b/x/c"));
        assert!(acl_matches("kv/data/a/*", "kv/data/a/b/c"));
        assert!(acl_matches("kv/data/a*", "kv/data/ab/c"));
        assert!(!acl_matches("kv/data/a", "kv/data/a/b"));
        assert!(acl_matches("kv/data/a", "kv/data/a"));
        assert!(!acl_matches("kv/data/a/*", "kv/data/b/c"));
    }

    /// Every ref the scopes admit for an allowed repository is granted by
    /// the rendered policy, and none for another repository.
    #[test]
    fn the_rendered_policy_grants_what_the_scopes_admit_and_nothing_else() {
        let p = policy();
        let repos = vec!["Acme/Api".to_string(), "Acme/Web".to_string()];
        let grant = WorkerGrant {
            worker_id: "executor-01",
            repositories: &repos,
            ref_policy: &p,
        };
        let hcl = render(&grant, false).unwrap();
        let rules: Vec<String> = policy_rules(&hcl).into_iter().map(|(p, _)| p).collect();
        let granted = |path: &str| rules.iter().any(|r| acl_matches(r, path));
        for (repo, reference) in [
            (
                "Acme/Api",
                "vault://kv/moonmind/repos/Acme/Api#github_token",
            ),
            (
                "Acme/Web",
                "vault://kv/moonmind/repos/Acme/Web#github_token",
            ),
            (
                "Acme/Api",
                "vault://kv/moonmind/workers/executor-01/github#token",
            ),
            (
                "Acme/Api",
                "vault://kv/moonmind/workers/executor-01/a/b#token",
            ),
        ] {
            let ctx = ScopeContext {
                repository: Some(repo.into()),
                worker_id: Some("executor-01".into()),
            };
            let r = p.check(reference, &ctx).unwrap();
            assert!(
                granted(&r.kv2_data_path()),
                "{reference} not granted by\n{hcl}"
            );
        }
        for outside in [
            "kv/data/moonmind/repos/Acme/Other",
            "kv/data/moonmind/repos/Acme",
            "kv/data/moonmind/workers/executor-02/github",
            "kv/metadata/moonmind/repos/Acme/Api",
        ] {
            assert!(!granted(outside), "{outside} granted by\n{hcl}");
        }
    }

    #[test]
    fn render_refuses_what_no_narrow_policy_expresses() {
        let p = policy();
        let none: Vec<String> = Vec::new();
        let e = render(
            &WorkerGrant {
                worker_id: "w",
                repositories: &none,
                ref_policy: &p,
            },
            false,
        )
        .unwrap_err();
        assert!(
            e.message().contains("--allowed-repository"),
            "{}",
            e.message()
        );
        let unscoped = RefPolicy::default();
        let repos = vec!["Acme/Api".to_string()];
        let e = render(
            &WorkerGrant {
                worker_id: "w",
                repositories: &repos,
                ref_policy: &unscoped,
            },
            false,
        )
        .unwrap_err();
        assert!(e.message().contains("--scope"), "{}", e.message());
    }

    #[test]
    fn rules_are_read_back_and_list_paths_go_to_metadata() {
        let rules = policy_rules(
            "path \"kv/data/a/*\" {\n  capabilities = [\"read\", \"list\"]\n}\npath \"sys/x\" { capabilities = [\"deny\"] }",
        );
        assert_eq!(
            rules,
            [
                (
                    "kv/data/a/*".to_string(),
                    vec!["read".to_string(), "list".to_string()]
                ),
                ("sys/x".to_string(), vec!["deny".to_string()]),
            ]
        );
        assert_eq!(
            list_path("kv/data/moonmind/repos/Acme/Api").as_deref(),
            Some("kv/metadata/moonmind/repos/Acme/*")
        );
    }
}
