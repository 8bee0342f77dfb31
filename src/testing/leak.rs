//! Leak scanning, once for every test and the conformance harness: the
//! spellings of a secret that must never appear ([`forms`]), a search of
//! some output for them ([`find_leak`]), and a scan of a directory tree
//! ([`scan_tree`]) that reports what it could not look at instead of passing
//! by failing to look.
//!
//! The forms are the ones careless code is known to leak a secret in: raw,
//! base64 (standard and URL-safe, with and without padding), percent-encoded,
//! escaped inside a JSON string, and inside a git Basic-auth header
//! (`base64("<username>:" + value)`). Findings name the form, never the value.
//! One substring search (`memchr::memmem`) per form is fast enough for a
//! run's output and a few hundred secrets; there is no automaton to build.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};

/// The username git's Basic-auth header carries for a token (GitHub's
/// convention, and the worker's default).
pub const GIT_USERNAME: &str = "x-access-token";

/// The forms of `secret` that must never appear, with their names; for each
/// of `usernames`, also the base64 of `username:secret` (unpadded, so the
/// padded spelling is found too). Forms that coincide are listed once, under
/// their first name.
pub fn forms(secret: &str, usernames: &[&str]) -> Vec<(&'static str, String)> {
    let raw = secret.as_bytes();
    let mut forms = vec![
        ("raw", secret.to_string()),
        ("base64", STANDARD.encode(raw)),
        ("base64 (no padding)", STANDARD_NO_PAD.encode(raw)),
        ("base64url", URL_SAFE.encode(raw)),
        ("base64url (no padding)", URL_SAFE_NO_PAD.encode(raw)),
        (
            "percent-encoded",
            utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string(),
        ),
        ("JSON string", json_escaped(secret)),
    ];
    for u in usernames {
        forms.push((
            "git Basic-auth header",
            STANDARD_NO_PAD.encode(format!("{u}:{secret}")),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    forms.retain(|(_, f)| !f.is_empty() && seen.insert(f.clone()));
    forms
}

/// `secret` as it stands inside a JSON string (quotes left out): a reply or
/// log line that serialises it escapes newlines, quotes and backslashes.
fn json_escaped(secret: &str) -> String {
    let quoted = serde_json::to_string(secret).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(&quoted)
        .to_string()
}

/// The byte needles of [`forms`] of `token`, for [`scan_tree`].
pub fn token_forms(token: &SecretString, usernames: &[&str]) -> Vec<Vec<u8>> {
    forms(token.expose_secret(), usernames)
        .into_iter()
        .map(|(_, f)| f.into_bytes())
        .collect()
}

/// Spellings that give a secret away without being an encoding of all of
/// it, searched in an implementation's *output* (not on disk, where other
/// test files may share a prefix): hex in either case, and a substantial
/// part, its first or last half (at least 12 characters), for secrets of 24
/// characters or more.
pub fn partial_forms(secret: &str) -> Vec<(&'static str, String)> {
    let mut forms = vec![
        ("hex", hex::encode(secret.as_bytes())),
        ("hex (upper case)", hex::encode_upper(secret.as_bytes())),
    ];
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() >= 24 {
        let n = (chars.len() / 2).max(12);
        forms.push(("its first half", chars[..n].iter().collect()));
        forms.push(("its last half", chars[chars.len() - n..].iter().collect()));
    }
    forms
}

/// The name of the first form of any of `secrets` found in `haystack` (with
/// the git username [`GIT_USERNAME`], and [`partial_forms`]), or `None`.
pub fn find_leak(haystack: &[u8], secrets: &[SecretString]) -> Option<&'static str> {
    secrets.iter().find_map(|secret| {
        let s = secret.expose_secret();
        forms(s, &[GIT_USERNAME])
            .into_iter()
            .chain(partial_forms(s))
            .find(|(_, form)| contains(haystack, form.as_bytes()))
            .map(|(name, _)| name)
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    // memmem, not a window-by-window compare: the harness's last pass
    // searches all output of a run for hundreds of forms.
    !needle.is_empty() && memchr::memmem::find(haystack, needle).is_some()
}

/// The needle index [`scan_for_needles`] reports for a path it could not
/// read (a missing root, an unreadable directory or file): a scan never
/// passes by failing to look.
pub const UNREADABLE: usize = usize::MAX;

/// The needle index [`scan_for_needles`] reports for a symlink that resolves
/// outside the scanned root: the scan does not follow it, so whatever it
/// points at was not looked at.
pub const LINK_OUTSIDE: usize = usize::MAX - 1;

/// What a leak scan found and how much it looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// `(path, needle index)` for every hit, plus [`UNREADABLE`] and
    /// [`LINK_OUTSIDE`] findings.
    pub hits: Vec<(PathBuf, usize)>,
    /// How many regular files were read. A caller that expects files (a
    /// work dir, a repository) asserts this is above zero, so a scan of the
    /// wrong directory cannot pass vacuously.
    pub files: usize,
}

/// Scans every regular file under `root` for each of `needles`
/// ([`scan_tree`]) and returns the hits. Used after each job to prove that a
/// token (and its encodings, see [`token_forms`]) was left nowhere on disk.
pub fn scan_for_needles(root: &Path, needles: &[Vec<u8>]) -> Vec<(PathBuf, usize)> {
    scan_tree(root, needles).hits
}

/// Scans every regular file under `root` for each of `needles`. Symlinks are
/// not followed; one resolving outside `root` is reported ([`LINK_OUTSIDE`]).
/// A missing or unreadable root, directory or file is reported
/// ([`UNREADABLE`]). Counts the files read.
pub fn scan_tree(root: &Path, needles: &[Vec<u8>]) -> Scan {
    let mut scan = Scan::default();
    let Ok(canonical_root) = std::fs::canonicalize(root) else {
        scan.hits.push((root.to_path_buf(), UNREADABLE));
        return scan;
    };
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(_) => {
                scan.hits.push((dir, UNREADABLE));
                continue;
            }
        };
        for entry in entries {
            let Ok(entry) = entry else {
                scan.hits.push((dir.clone(), UNREADABLE));
                continue;
            };
            let path = entry.path();
            let Ok(ft) = entry.file_type() else {
                scan.hits.push((path, UNREADABLE));
                continue;
            };
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_symlink() {
                // A dangling link points at nothing that could hold a token.
                if let Ok(target) = std::fs::canonicalize(&path)
                    && !target.starts_with(&canonical_root)
                {
                    scan.hits.push((path, LINK_OUTSIDE));
                }
            } else if ft.is_file() {
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        scan.files += 1;
                        for (i, n) in needles.iter().enumerate() {
                            if !n.is_empty() && bytes.windows(n.len()).any(|w| w == n.as_slice()) {
                                scan.hits.push((path.clone(), i));
                            }
                        }
                    }
                    Err(_) => scan.hits.push((path, UNREADABLE)),
                }
            }
        }
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> SecretString {
        SecretString::from(v.to_string())
    }

    #[test]
    fn finds_each_form_and_nothing_in_clean_text() {
        let secret = "ghp_FAKEFAKEFAKE+/=1234567890abcdefghij\n\"";
        let secrets = [s(secret)];
        for (name, form) in forms(secret, &[GIT_USERNAME])
            .into_iter()
            .chain(partial_forms(secret))
        {
            let text = format!("before {form} after");
            assert!(find_leak(text.as_bytes(), &secrets).is_some(), "{name}");
        }
        assert_eq!(find_leak(b"nothing to see", &secrets), None);
        assert_eq!(find_leak(b"", &secrets), None);
    }

    #[test]
    fn a_padded_basic_header_is_found_through_the_unpadded_form() {
        let token = s("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0000");
        let padded = STANDARD.encode(format!("x-access-token:{}", token.expose_secret()));
        assert!(find_leak(padded.as_bytes(), &[token]).is_some());
    }

    #[test]
    fn scan_finds_every_form_of_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let token = SecretString::from("ghp_FAKEFAKEFAKEFAKE");
        let named = forms(token.expose_secret(), &[GIT_USERNAME]);
        let basic = named
            .iter()
            .position(|(n, _)| *n == "git Basic-auth header")
            .unwrap();
        let needles = token_forms(&token, &[GIT_USERNAME]);
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("clean"), "nothing here").unwrap();
        std::fs::write(dir.path().join("sub/raw"), b"a ghp_FAKEFAKEFAKEFAKE b").unwrap();
        std::fs::write(dir.path().join("sub/basic"), &needles[basic]).unwrap();
        let hits = scan_for_needles(dir.path(), &needles);
        assert!(hits.contains(&(dir.path().join("sub/raw"), 0)), "{hits:?}");
        assert!(
            hits.contains(&(dir.path().join("sub/basic"), basic)),
            "{hits:?}"
        );
        assert!(!hits.iter().any(|(p, _)| p.ends_with("clean")), "{hits:?}");
    }

    #[test]
    fn scan_reports_what_it_could_not_look_at() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let forms = token_forms(&SecretString::from("ghp_FAKEFAKEFAKEFAKE"), &[]);
        // A missing root is a finding, not an empty (passing) scan.
        let missing = dir.path().join("missing");
        assert_eq!(
            scan_tree(&missing, &forms).hits,
            vec![(missing.clone(), UNREADABLE)]
        );
        // An empty root: no hits, and zero files for the caller to notice.
        assert_eq!(scan_tree(dir.path(), &forms), Scan::default());
        std::fs::write(dir.path().join("a"), "clean").unwrap();
        std::fs::write(outside.path().join("secret"), "ghp_FAKEFAKEFAKEFAKE").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("out")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("a"), dir.path().join("in")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("dangling")).unwrap();
        let scan = scan_tree(dir.path(), &forms);
        assert_eq!(scan.files, 1);
        assert_eq!(scan.hits, vec![(dir.path().join("out"), LINK_OUTSIDE)]);
    }
}
