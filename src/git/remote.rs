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
        if let Some(p) = port
            && (p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()))
        {
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
}
