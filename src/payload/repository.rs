//! The job's repository as `owner/repo` (`spec/codex-exec.md` §3).
//!
//! Ref scopes (`{repository}`, `{owner}`, `{repo}` in `spec/secret-ref.md` §4)
//! are bound to a slug, but a payload may name its repository by URL. This
//! module is the one function that turns either form into the slug. It is
//! deliberately narrow: nothing is decoded or case-folded, and anything that is
//! not exactly two plain segments gives `None`, so scopes fail closed rather
//! than bind to a guess.

use crate::secret_ref::is_segchar;

/// Normalises a payload `repository` to `owner/repo`.
///
/// - `owner/repo` is returned as is;
/// - `https://host[:port]/owner/repo`, optionally followed by `.git` and/or a
///   single trailing `/` (in that order: `/owner/repo.git/`), gives `owner/repo`;
/// - anything else gives `None`: other schemes, user info, a query or
///   fragment, more or fewer than two path segments, a segment that is empty,
///   `.` or `..` or has a byte other than `A-Z a-z 0-9 . _ -`.
///
/// ```
/// use vaultref::payload::repository_slug;
/// assert_eq!(repository_slug("Acme/Api").as_deref(), Some("Acme/Api"));
/// assert_eq!(repository_slug("https://github.com/Acme/Api.git").as_deref(), Some("Acme/Api"));
/// assert_eq!(repository_slug("https://x:y@github.com/Acme/Api"), None);
/// assert_eq!(repository_slug("https://gitlab.com/group/sub/repo"), None);
/// ```
pub fn repository_slug(repository: &str) -> Option<String> {
    let path = match repository.strip_prefix("https://") {
        Some(rest) => {
            let (host, path) = rest.split_once('/')?;
            if !is_host(host) {
                return None;
            }
            let path = path.strip_suffix('/').unwrap_or(path);
            let (owner, repo) = path.split_once('/')?;
            let repo = repo.strip_suffix(".git").unwrap_or(repo);
            return slug(owner, repo);
        }
        None => repository,
    };
    let (owner, repo) = path.split_once('/')?;
    slug(owner, repo)
}

fn slug(owner: &str, repo: &str) -> Option<String> {
    (is_segment(owner) && is_segment(repo)).then(|| format!("{owner}/{repo}"))
}

/// A name made of segchars that is not `.` or `..`.
fn is_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && s.bytes().all(is_segchar)
}

/// `name[:port]`: letters, digits, `.` and `-` (first and last byte
/// alphanumeric), then optionally `:` and 1 to 5 digits. This excludes `@`,
/// so user info never gets here.
fn is_host(host: &str) -> bool {
    let (name, port) = match host.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let name_ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    name_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_urls() {
        let cases = [
            ("Acme/Api", Some("Acme/Api")),
            ("acme/api.js", Some("acme/api.js")),
            ("https://github.com/Acme/Api", Some("Acme/Api")),
            ("https://github.com/Acme/Api.git", Some("Acme/Api")),
            ("https://github.com/Acme/Api/", Some("Acme/Api")),
            ("https://github.com/Acme/Api.git/", Some("Acme/Api")),
            ("https://git.example:8443/Acme/Api", Some("Acme/Api")),
            ("https://github.com/Acme/.git", None),
            ("https://github.com/Acme/Api//", None),
            ("https://github.com/Acme", None),
            ("https://github.com/a/b/c", None),
            ("https://u:p@github.com/Acme/Api", None),
            ("https://u@github.com/Acme/Api", None),
            ("https://github.com/Acme/Api?x=1", None),
            ("https://github.com:/Acme/Api", None),
            ("http://github.com/Acme/Api", None),
            ("HTTPS://github.com/Acme/Api", None),
            ("git@github.com:Acme/Api.git", None),
            ("Acme", None),
            ("Acme/Api/x", None),
            ("../Api", None),
            ("Acme/..", None),
            ("Acme/", None),
            ("/Api", None),
            ("", None),
            ("Ac me/Api", None),
        ];
        for (input, want) in cases {
            assert_eq!(repository_slug(input).as_deref(), want, "{input:?}");
        }
    }
}
