//! The expectations file: scenarios known to fail, each with a reason.
//!
//! Like BoGo's config in rustls, it lets a project run the whole suite in CI
//! while it works through known gaps, without hiding them: an expected failure
//! is still listed, a scenario that starts passing is `unexpected-pass` (so the
//! entry gets removed), and entries that match nothing are reported, so the file
//! cannot silently rot.

use serde::Deserialize;

/// The parsed expectations file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// Globs of scenario ids expected to fail.
    #[serde(default)]
    pub expected_failures: Vec<Expectation>,
}

/// One expected failure.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// A glob over scenario ids (`*` any run of characters, `?` one character).
    pub id: String,
    /// Why it fails; required and non-empty.
    pub reason: String,
}

impl Expectations {
    /// Parses and checks a file's text: every entry needs a non-empty id and reason.
    pub fn parse(text: &str) -> Result<Expectations, String> {
        let e: Expectations =
            serde_json::from_str(text).map_err(|e| format!("expectations file: {e}"))?;
        for (i, x) in e.expected_failures.iter().enumerate() {
            if x.id.trim().is_empty() {
                return Err(format!("expectations entry {i}: empty id"));
            }
            if x.reason.trim().is_empty() {
                return Err(format!(
                    "expectations entry {i} (`{}`): a reason is required",
                    x.id
                ));
            }
        }
        Ok(e)
    }

    /// The reason of the first entry matching `id`, if any.
    pub fn lookup(&self, id: &str) -> Option<&str> {
        self.expected_failures
            .iter()
            .find(|x| glob_match(&x.id, id))
            .map(|x| x.reason.as_str())
    }

    /// Entries whose glob matches none of `ids`.
    pub fn unmatched<'a>(&'a self, ids: &[&str]) -> Vec<&'a Expectation> {
        self.expected_failures
            .iter()
            .filter(|x| !ids.iter().any(|id| glob_match(&x.id, id)))
            .collect()
    }
}

/// Matches `text` against a glob with `*` (any run, possibly empty) and `?`
/// (one character). Iterative with one backtrack point, so linear-ish and
/// without recursion on hostile patterns.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("resolve.*", "resolve.latest"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*.pinned*", "resolve.pinned-version"));
        assert!(!glob_match("resolve.*", "auth.approle"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }

    #[test]
    fn reasons_are_required_and_unmatched_entries_found() {
        assert!(Expectations::parse(r#"{"expected_failures":[{"id":"x","reason":""}]}"#).is_err());
        assert!(Expectations::parse(r#"{"expected_failures":[{"id":"x"}]}"#).is_err());
        assert!(Expectations::parse(r#"{"other":1}"#).is_err());
        let e = Expectations::parse(
            r#"{"expected_failures":[{"id":"resolve.*","reason":"r1"},{"id":"gone","reason":"r2"}]}"#,
        )
        .unwrap();
        assert_eq!(e.lookup("resolve.latest"), Some("r1"));
        assert_eq!(e.lookup("auth.x"), None);
        let un = e.unmatched(&["resolve.latest"]);
        assert_eq!(un.len(), 1);
        assert_eq!(un[0].id, "gone");
    }
}
