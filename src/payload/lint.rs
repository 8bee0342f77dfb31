//! Step 5: the raw-secret lint.
//!
//! Goal 1 of the design is that raw secrets never travel in queue payloads.
//! The lint makes that checkable: every string anywhere in the job (values,
//! member names, unknown fields, nested arrays) is searched with the token rule
//! table of [`crate::redact::rules`], the same table the log redactor masks
//! with, so a shape the lint refuses is a shape the redactor would hide.
//!
//! Besides each string on its own, every member whose value is a string is
//! also searched as `name=value`. That is how a credential in a field that
//! says what it is (`{"githubToken": "…"}`) is caught by the assignment rules
//! even when the value has no recognisable prefix; only matches whose secret
//! part lies in the value count.
//!
//! Findings name the rule and the JSON pointer, never the value. A pointer
//! must not carry a secret either, so when a member *name* matches a rule the
//! finding is reported at the enclosing object, and so is everything found
//! beneath that member (`spec/codex-exec.md` §6).
//!
//! The matched texts are returned to the caller, wrapped in [`SecretString`],
//! only so that it can scrub them from every other message before anything is
//! shown (defence in depth: a ref error quoting a path, say).

use std::collections::BTreeSet;

use secrecy::SecretString;
use serde_json::Value;

use crate::redact::rules::{self, TokenMatch};

/// One rule match in the job.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Finding {
    /// Where it was found (see the module docs for member names).
    pub pointer: String,
    /// The rule's id.
    pub rule_id: &'static str,
    /// What kind of text matched.
    pub place: Place,
}

/// Where in the job a match was found, relative to its pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Place {
    /// The string at the pointer.
    Value,
    /// A member name of the object at the pointer.
    Name,
    /// A string or name somewhere beneath a member of the object at the
    /// pointer whose name matched (the pointer stops at that object).
    Beneath,
}

/// All findings, one per (pointer, rule, place), and the matched texts.
pub(crate) struct Lint {
    pub findings: BTreeSet<Finding>,
    pub matched: Vec<SecretString>,
}

/// Searches every string in `job`.
pub(crate) fn scan(job: &Value) -> Lint {
    let mut lint = Lint {
        findings: BTreeSet::new(),
        matched: Vec::new(),
    };
    walk(job, "", false, &mut lint);
    lint
}

/// `frozen`: a member name above matched a rule, so `pointer` must not grow
/// (it would pass through that name).
fn walk(value: &Value, pointer: &str, frozen: bool, lint: &mut Lint) {
    match value {
        Value::String(s) => {
            search(s, 0, pointer, value_place(frozen), lint);
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let child = if frozen {
                    pointer.to_string()
                } else {
                    format!("{pointer}/{i}")
                };
                walk(item, &child, frozen, lint);
            }
        }
        Value::Object(members) => {
            for (name, member) in members {
                // A name that matched must not appear in any pointer: report
                // what lies beneath it at this object.
                let place = if frozen { Place::Beneath } else { Place::Name };
                let name_matched = search(name, 0, pointer, place, lint) > 0;
                let child = if frozen || name_matched {
                    pointer.to_string()
                } else {
                    format!("{pointer}/{}", escape(name))
                };
                if let Value::String(s) = member {
                    let joined = format!("{name}={s}");
                    let place = value_place(frozen || name_matched);
                    search(&joined, name.len() + 1, &child, place, lint);
                }
                walk(member, &child, frozen || name_matched, lint);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Records the matches in `text` whose secret part starts at or after
/// `from`, and returns how many there were.
fn search(text: &str, from: usize, pointer: &str, place: Place, lint: &mut Lint) -> usize {
    let mut count = 0;
    for TokenMatch { rule, range } in rules::find_tokens(text) {
        if range.start < from {
            continue;
        }
        count += 1;
        lint.matched
            .push(SecretString::from(text[range].to_owned()));
        lint.findings.insert(Finding {
            pointer: pointer.to_string(),
            rule_id: rule.id,
            place,
        });
    }
    count
}

fn value_place(frozen: bool) -> Place {
    if frozen { Place::Beneath } else { Place::Value }
}

/// RFC 6901: `~` becomes `~0` and `/` becomes `~1`.
pub(crate) fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}
