//! The `codex_exec` job payload: schema, typed model and the raw-secret lint.
//!
//! Goal 1 of the design is that raw secrets never travel in queue payloads;
//! this module makes that, and the rest of a job's shape, checkable by any
//! producer or worker. `spec/codex-exec.md` is the normative text,
//! `spec/codex-exec.schema.json` the schema, `fixtures/payloads/` the vectors.
//!
//! # Design
//!
//! There is one entry point, [`validate`], a pipeline of five steps:
//!
//! 1. `json`: strict parsing (duplicate member names refused) of a JSON
//!    object, else `payload_not_json` and nothing else runs;
//! 2. [`schema`]: the shipped JSON Schema, every violation reported;
//! 3. auth refs: `repoAuthRef` and `publishAuthRef`, when they are strings,
//!    checked with the [`RefPolicy`], scopes bound to this job's repository
//!    ([`repository_slug`]) and the worker's id;
//! 4. the [`QueuePolicy`], when given;
//! 5. `lint`: every string and member name against the token rule table.
//!
//! Steps 2 to 5 all run on every JSON object, even when an earlier one found
//! errors: a producer fixing a job wants the whole list at once, and a secret
//! must be reported whatever else is wrong. A step only skips a value it cannot
//! look at (a ref that is not a string is the schema's to report).
//!
//! Errors come back sorted (step, pointer, code, rule) so output is
//! deterministic. Before they are returned, every message and pointer is
//! scrubbed: each text the lint matched, and anything the rule table still
//! finds, is replaced by `[REDACTED]`. Messages are written not to
//! quote input in the first place; the scrub is the second line, so that no
//! code path (a ref error naming a path, say) can echo a token.

mod json;
mod lint;
pub mod model;
pub mod queue;
pub mod repository;
pub mod schema;

use std::fmt;

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorCode;
use crate::policy::{RefPolicy, ScopeContext};
use crate::redact::rules;

pub use model::{CodexExecJob, CodexExecPayload, CodexOptions, Publish, PublishMode, WorkdirMode};
pub use queue::QueuePolicy;
pub use repository::repository_slug;

/// The job type this module validates.
pub const JOB_TYPE: &str = "codex_exec";

/// The payload members that hold secret refs, checked in step 3.
pub const AUTH_REF_FIELDS: [&str; 2] = ["repoAuthRef", "publishAuthRef"];

/// One reason a job was rejected. Serialisable: the conformance protocol and
/// `vaultref payload check --format json` carry these as is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadError {
    /// The stable error code.
    pub code: ErrorCode,
    /// RFC 6901 JSON pointer into the job (`""` is the whole job).
    pub pointer: String,
    /// A message for people. It never contains secret material.
    pub message: String,
    /// For `payload_contains_secret`: the id of the token rule that matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "(the job)"
        } else {
            &self.pointer
        };
        write!(f, "{} at {pointer}: {}", self.code, self.message)
    }
}

/// What a job is checked against besides the schema and the rule table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationOptions {
    /// Mounts, length and scopes for `repoAuthRef` and `publishAuthRef`.
    #[serde(default)]
    pub ref_policy: RefPolicy,
    /// The worker's id, bound to `{worker_id}` in scopes. `None`: templates
    /// using it match nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    /// The queue policy. `None`: step 4 is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_policy: Option<QueuePolicy>,
}

/// Validates a job given as JSON bytes: the whole pipeline of
/// `spec/codex-exec.md` §5.
///
/// Returns the typed job, or every error found, sorted. No error's message or
/// pointer contains text that a token rule matches.
///
/// ```
/// use vaultref::payload::{validate, ValidationOptions};
/// let job = br#"{"type": "codex_exec", "payload": {
///     "repository": "MoonLadderStudios/MoonMind",
///     "repoAuthRef": "vault://kv/moonmind/repos/MoonLadderStudios/MoonMind#github_token",
///     "instruction": "Implement the assigned task"}}"#;
/// let job = validate(job, &ValidationOptions::default()).unwrap();
/// assert_eq!(job.publish_auth_ref().unwrap().field(), "github_token");
/// ```
pub fn validate(
    job_json: &[u8],
    options: &ValidationOptions,
) -> Result<CodexExecJob, Vec<PayloadError>> {
    let job = match json::parse(job_json) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return Err(vec![error(
                ErrorCode::PayloadNotJson,
                "",
                "the job must be a JSON object".into(),
            )]);
        }
        Err(message) => return Err(vec![error(ErrorCode::PayloadNotJson, "", message)]),
    };

    let mut errors = schema::check(&job);
    errors.extend(check_refs(&job, options));
    if let Some(queue) = &options.queue_policy {
        errors.extend(check_queue(&job, queue));
    }
    let lint = lint::scan(&job);
    if errors.is_empty() && lint.findings.is_empty() {
        return serde_json::from_value(job).map_err(|_| {
            // The schema and step 3 admit only what the model reads; reaching
            // this is a bug in one of them. serde's message could quote the
            // input, so it is not passed on.
            vec![error(
                ErrorCode::PayloadSchema,
                "",
                "the job passed the schema but not the typed model (a vaultref bug)".into(),
            )]
        });
    }
    // Steps 2-4 may quote input; lint messages are built from the rule table
    // only (and a rule's description can look like what it describes).
    for e in &mut errors {
        e.message = scrub(&e.message, &lint.matched);
        e.pointer = scrub(&e.pointer, &lint.matched);
    }
    errors.extend(lint.findings.iter().map(|f| {
        let rule = rules::rule(f.rule_id).map_or("", |r| r.description);
        let place = match f.place {
            lint::Place::Value => "this string",
            lint::Place::Name => "a member name of this object",
            lint::Place::Beneath => {
                "a string or name beneath a member of this object whose name matched"
            }
        };
        PayloadError {
            code: ErrorCode::PayloadContainsSecret,
            pointer: f.pointer.clone(),
            message: format!(
                "{place} contains what looks like a credential (rule `{}`: {rule}); \
                 put the secret in Vault and pass a vault:// ref instead",
                f.rule_id
            ),
            rule_id: Some(f.rule_id.to_string()),
        }
    }));
    errors.sort_by(|a, b| {
        (step(a.code), &a.pointer, a.code, &a.rule_id).cmp(&(
            step(b.code),
            &b.pointer,
            b.code,
            &b.rule_id,
        ))
    });
    errors.dedup();
    Err(errors)
}

fn error(code: ErrorCode, pointer: &str, message: String) -> PayloadError {
    PayloadError {
        code,
        pointer: pointer.to_string(),
        message,
        rule_id: None,
    }
}

/// Pipeline step of a code, for sorting.
fn step(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::PayloadNotJson => 1,
        ErrorCode::PayloadSchema => 2,
        ErrorCode::RepositoryNotAllowed | ErrorCode::JobTypeNotAllowed => 4,
        ErrorCode::PayloadContainsSecret => 5,
        _ => 3,
    }
}

/// Step 3: each auth ref that is a string, with scopes bound to this job.
fn check_refs(job: &Value, options: &ValidationOptions) -> Vec<PayloadError> {
    let ctx = ScopeContext {
        repository: job
            .pointer("/payload/repository")
            .and_then(Value::as_str)
            .and_then(repository_slug),
        worker_id: options.worker_id.clone(),
    };
    AUTH_REF_FIELDS
        .iter()
        .filter_map(|field| {
            let pointer = format!("/payload/{field}");
            let text = job.pointer(&pointer)?.as_str()?;
            let e = options.ref_policy.check(text, &ctx).err()?;
            let at = e
                .offset()
                .map(|o| format!(" (byte {o})"))
                .unwrap_or_default();
            Some(PayloadError {
                code: e.code(),
                pointer,
                message: format!("{}{at}", e.message()),
                rule_id: None,
            })
        })
        .collect()
}

/// Step 4: the queue policy's allow-lists.
fn check_queue(job: &Value, queue: &QueuePolicy) -> Vec<PayloadError> {
    let mut errors = Vec::new();
    if let Some(t) = job.get("type").and_then(Value::as_str)
        && !queue.allows_job_type(t)
    {
        errors.push(error(
            ErrorCode::JobTypeNotAllowed,
            "/type",
            "the queue policy does not allow this job type".into(),
        ));
    }
    if let Some(r) = job.pointer("/payload/repository").and_then(Value::as_str)
        && !queue.allows_repository(r)
    {
        errors.push(error(
            ErrorCode::RepositoryNotAllowed,
            "/payload/repository",
            "the queue policy does not allow this repository (exact match)".into(),
        ));
    }
    errors
}

/// Replaces every occurrence of each text the lint matched, and every match
/// of the rule table, with `[REDACTED]`.
///
/// All ranges are collected on the original text and merged before anything
/// is replaced: replacing one secret at a time can cut another that overlaps
/// it (one fake token inside another), after which neither is found whole
/// and the rest of the longer one would be shown. One pass: the placeholder
/// holds nothing secret, even where it looks like an assignment.
fn scrub(text: &str, matched: &[secrecy::SecretString]) -> String {
    let mut ranges: Vec<std::ops::Range<usize>> =
        rules::find_tokens(text).map(|m| m.range).collect();
    for m in matched {
        let m = m.expose_secret();
        if !m.is_empty() {
            ranges.extend(text.match_indices(m).map(|(at, _)| at..at + m.len()));
        }
    }
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    let mut out = text.to_string();
    for r in merged.into_iter().rev() {
        out.replace_range(r, "[REDACTED]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn scrub_covers_overlapping_and_nested_secrets() {
        let long = "ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0000";
        let inner = "FAKEFAKEFAKEFAKEFAKE";
        let matched = [SecretString::from(inner), SecretString::from(long)];
        let out = scrub(&format!("mount `{long}` and {inner}!"), &matched);
        assert_eq!(out, "mount `[REDACTED]` and [REDACTED]!");
    }

    #[test]
    fn scrub_finds_rule_matches_it_was_not_told_about() {
        let out = scrub("path `x/AKIAFAKEFAKEFAKEFAKE/y`", &[]);
        assert_eq!(out, "path `x/[REDACTED]/y`");
    }
}
