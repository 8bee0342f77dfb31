//! The remote a job clones from and pushes to, parsed strictly.
//!
//! A remote is `scheme://host[:port]/seg/seg...` with nothing else: no
//! userinfo (a credential in a URL is exactly what this crate exists to
//! prevent), no query, no fragment, no `.`/`..` segments. The credential
//! session answers only for the exact (protocol, host, path) triple parsed
//! here, so the parse is also the credential's scope.

use std::fmt;

/// A parsed git HTTP(S) remote.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Remote {
    scheme: String,
    host: String,
    path: String,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Remote({self})")
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/{}", self.scheme, self.host, self.path)
    }
}

/// Why a remote was refused. The message never repeats a userinfo part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteError(pub String);

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RemoteError {}

impl Remote {
    /// Parses an `https://` URL (or `http://` when `allow_http`, for local
    /// test servers only: over plain HTTP the token crosses the wire in clear).
    pub fn parse(url: &str, allow_http: bool) -> Result<Remote, RemoteError> {
        let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
            ("https", r)
        } else if let Some(r) = url.strip_prefix("http://") {
            if !allow_http {
                return Err(RemoteError(
                    "plain http:// remotes are refused (the token would travel unencrypted)".into(),
                ));
            }
            ("http", r)
        } else {
            return Err(RemoteError("a remote must be an https:// URL".into()));
        };
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| RemoteError("the remote URL has no repository path".into()))?;
        if authority.contains('@') {
            // Deliberately not echoing the URL: the part before `@` may be a token.
            return Err(RemoteError(
                "the remote URL carries a username or password; credentials come from refs only"
                    .into(),
            ));
        }
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !host_ok {
            return Err(RemoteError(
                "the remote URL's host is not a plain host name".into(),
            ));
        }
        let port_ok = port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
        if !port_ok {
            return Err(RemoteError("the remote URL's port is not a number".into()));
        }
        if path.contains(['?', '#']) {
            return Err(RemoteError(
                "the remote URL may not have a query or fragment".into(),
            ));
        }
        let path = path.trim_end_matches('/');
        let segments_ok = !path.is_empty()
            && path.split('/').all(|s| {
                !s.is_empty()
                    && s != "."
                    && s != ".."
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
        if !segments_ok {
            return Err(RemoteError(
                "the remote URL's path must be segments of A-Z a-z 0-9 . _ - (no . or ..)".into(),
            ));
        }
        Ok(Remote {
            scheme: scheme.to_owned(),
            host: authority.to_ascii_lowercase(),
            path: path.to_owned(),
        })
    }

    /// The remote for an `owner/repo` slug on `base` (e.g. `https://github.com`):
    /// `base/owner/repo.git`.
    pub fn from_slug(base: &str, slug: &str, allow_http: bool) -> Result<Remote, RemoteError> {
        let parts: Vec<&str> = slug.split('/').collect();
        if parts.len() != 2 {
            return Err(RemoteError("a repository slug must be owner/repo".into()));
        }
        let repo = parts[1].strip_suffix(".git").unwrap_or(parts[1]);
        Remote::parse(
            &format!("{}/{}/{}.git", base.trim_end_matches('/'), parts[0], repo),
            allow_http,
        )
    }

    /// `https` or `http`: git's `protocol` credential attribute.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// `host[:port]`, lower-cased: git's `host` credential attribute.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The path without leading or trailing `/`: git's `path` credential
    /// attribute when `credential.useHttpPath` is on.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The URL given to git.
    pub fn url(&self) -> String {
        self.to_string()
    }
}

/// Whether a credential bound to `bound` (`host` or `host:port`, any ASCII
/// case, as a secret document's `host` field or a worker's allowed host
/// says) may be sent to `remote` (`spec/resolver.md` G10).
///
/// Hosts compare case-insensitively and exactly (no wildcard, no suffix
/// match, a trailing dot is another name). A port absent on either side is
/// the scheme's default (443 for `https`, 80 for `http`). Anything that does
/// not parse (a scheme, a path, an empty host, a bad port) matches nothing.
pub fn host_matches(bound: &str, remote: &Remote) -> bool {
    let default = match remote.scheme() {
        "https" => 443,
        "http" => 80,
        _ => return false,
    };
    let split = |authority: &str| -> Option<(String, u16)> {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                (h, p.parse().ok()?)
            }
            Some(_) => return None,
            None => (authority, default),
        };
        let ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        ok.then(|| (host.to_ascii_lowercase(), port))
    };
    match (split(bound), split(remote.host())) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_https() {
        let r = Remote::parse("https://GitHub.com/Owner/Repo.git", false).unwrap();
        assert_eq!(
            (r.scheme(), r.host(), r.path()),
            ("https", "github.com", "Owner/Repo.git")
        );
        assert_eq!(r.url(), "https://github.com/Owner/Repo.git");
    }

    #[test]
    fn refuses_credentials_in_urls_without_echoing_them() {
        let e = Remote::parse("https://x:ghp_FAKEFAKE@github.com/O/R.git", false).unwrap_err();
        assert!(!e.0.contains("FAKE"));
    }

    #[test]
    fn refuses_http_unless_allowed() {
        assert!(Remote::parse("http://127.0.0.1:8080/O/R.git", false).is_err());
        let r = Remote::parse("http://127.0.0.1:8080/O/R.git", true).unwrap();
        assert_eq!(r.host(), "127.0.0.1:8080");
    }

    #[test]
    fn refuses_odd_shapes() {
        for bad in [
            "ssh://github.com/O/R.git",
            "git@github.com:O/R.git",
            "https://github.com",
            "https://github.com/",
            "https://github.com/O/../R.git",
            "https://github.com/O//R.git",
            "https://github.com/O/R.git?x=1",
            "https://github.com:port/O/R.git",
            "https://gith ub.com/O/R.git",
            "ext::sh -c touch% /tmp/pwned",
        ] {
            assert!(Remote::parse(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs() {
        let r = Remote::from_slug("https://github.com/", "Owner/Repo", false).unwrap();
        assert_eq!(r.url(), "https://github.com/Owner/Repo.git");
        assert!(Remote::from_slug("https://github.com", "a/b/c", false).is_err());
    }

    proptest::proptest! {
        /// Whatever the input: no panic, and an accepted remote never carries
        /// userinfo, a query or a fragment, and prints back as it parsed.
        #[test]
        fn parse_is_total_and_strict(url in "(https?://)?[a-zA-Z0-9@:/.?#%_-]{0,60}") {
            if let Ok(r) = Remote::parse(&url, true) {
                let printed = r.url();
                proptest::prop_assert!(!printed.contains(['@', '?', '#', '%']));
                proptest::prop_assert_eq!(Remote::parse(&printed, true).unwrap(), r);
            }
        }
    }
}
