//! The `repoAuthRef` grammar: `vault://<mount>/<path>[?version=<n>]#<field>`.
//!
//! This module is the one place the grammar lives (`spec/secret-ref.md` is its
//! normative text, and `fixtures/refs/` its vectors). It turns bytes into a
//! [`SecretRef`] or a [`RefError`] carrying a stable [`ErrorCode`] and a byte
//! offset.
//!
//! # Design
//!
//! The check order is part of the contract: two implementations given the same
//! malformed ref must name the same first error. So parsing runs in the four
//! passes of spec §2: emptiness, length, one scan of the whole input against the
//! ref alphabet, the scheme, and only then a left-to-right `nom` parse of the
//! structure. The alphabet scan up front is what makes every look-alike of
//! traversal that needs decoding (`%2e%2e`, `\`, full-width dots) fail the same
//! way, before anything could be mistaken for structure.
//!
//! The structural parsers report failures as `nom::Err::Failure` with the code
//! and the length of the unparsed rest, from which the byte offset follows. No
//! backtracking is needed: the grammar is LL(1) on its delimiters.
//!
//! Parsing is canonical. Nothing is decoded or normalised, so an accepted string
//! is the only spelling of its ref and [`SecretRef`]'s `Display` returns it byte
//! for byte.

use std::fmt;

use nom::bytes::complete::{tag, take_while, take_while1};
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Parser};

use crate::error::ErrorCode;

/// The scheme every ref starts with.
pub const SCHEME: &str = "vault://";

/// The default and highest maximum length of a ref, in bytes.
pub const MAX_REF_LENGTH: usize = 512;

/// The highest version a ref may pin.
pub const MAX_VERSION: u32 = u32::MAX;

/// A parsed, syntactically valid secret reference.
///
/// Construct one with [`SecretRef::parse`] (or through
/// [`RefPolicy::check`](crate::policy::RefPolicy::check), which also applies
/// the policy). Its `Display` is the canonical string it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretRef {
    mount: String,
    path: String,
    version: Option<u32>,
    field: String,
}

impl SecretRef {
    /// Parses a ref with the default maximum length of 512 bytes.
    pub fn parse(input: &str) -> Result<SecretRef, RefError> {
        Self::parse_bytes(input.as_bytes(), MAX_REF_LENGTH)
    }

    /// Parses a ref given as raw bytes, with a maximum length in bytes.
    ///
    /// Bytes that are not valid UTF-8 fail the alphabet check
    /// (`ref_invalid_char`), so any byte string can be given.
    pub fn parse_bytes(input: &[u8], max_length: usize) -> Result<SecretRef, RefError> {
        if input.is_empty() {
            return Err(RefError::new(
                ErrorCode::RefEmpty,
                None,
                "the ref is empty".into(),
            ));
        }
        if input.len() > max_length {
            return Err(RefError::new(
                ErrorCode::RefTooLong,
                Some(max_length),
                format!(
                    "the ref is {} bytes long; the limit is {max_length}",
                    input.len()
                ),
            ));
        }
        if let Some(at) = input.iter().position(|&b| !is_alphabet(b)) {
            return Err(invalid_char(input[at], at));
        }
        if !input.starts_with(SCHEME.as_bytes()) {
            let at = input
                .iter()
                .zip(SCHEME.as_bytes())
                .take_while(|(a, b)| a == b)
                .count();
            return Err(RefError::new(
                ErrorCode::RefBadScheme,
                Some(at),
                "a ref must start with `vault://`".into(),
            ));
        }
        match structure(&input[SCHEME.len()..]) {
            Ok((_, parts)) => Ok(parts),
            Err(nom::Err::Failure(fail) | nom::Err::Error(fail)) => Err(fail.into_error(input)),
            // Complete parsers never ask for more input.
            Err(nom::Err::Incomplete(_)) => unreachable!("complete parsers only"),
        }
    }

    /// The KV v2 mount, e.g. `kv`.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// The secret's path inside the mount, without `data/`, e.g. `moonmind/repos/A/B`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path's segments.
    pub fn path_segments(&self) -> impl Iterator<Item = &str> {
        self.path.split('/')
    }

    /// The pinned KV v2 version, if any. `None` means "latest at the moment of use".
    pub fn version(&self) -> Option<u32> {
        self.version
    }

    /// The field of the secret's data to read, e.g. `github_token`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The KV v2 API path of the secret's data, relative to `/v1/`:
    /// `<mount>/data/<path>` (spec §3). A pinned version is a query parameter,
    /// see [`SecretRef::version`].
    pub fn kv2_data_path(&self) -> String {
        format!("{}/data/{}", self.mount, self.path)
    }

    /// The KV v2 API path of the secret's metadata, relative to `/v1/`:
    /// `<mount>/metadata/<path>` (spec §3).
    pub fn kv2_metadata_path(&self) -> String {
        format!("{}/metadata/{}", self.mount, self.path)
    }

    /// Byte offset of the path's first byte in the canonical string.
    pub fn path_offset(&self) -> usize {
        SCHEME.len() + self.mount.len() + 1
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.mount, self.path)?;
        if let Some(v) = self.version {
            write!(f, "?version={v}")?;
        }
        write!(f, "#{}", self.field)
    }
}

impl std::str::FromStr for SecretRef {
    type Err = RefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SecretRef::parse(s)
    }
}

/// Why a ref was rejected: a stable code, the byte offset it applies to and a
/// message for people. The message never repeats the ref itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefError {
    code: ErrorCode,
    offset: Option<usize>,
    message: String,
}

impl RefError {
    /// The message passes through the token rules: it may quote a mount or
    /// a path, and a token pasted where a ref belongs must not come back out.
    pub(crate) fn new(code: ErrorCode, offset: Option<usize>, message: String) -> RefError {
        RefError {
            code,
            offset,
            message: crate::redact::redact(&message),
        }
    }

    /// The stable error code, one of the `ref_*` codes.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The byte offset the error points at, where one applies (all but `ref_empty`).
    pub fn offset(&self) -> Option<usize> {
        self.offset
    }

    /// A message for people. It does not include the ref.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for RefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for RefError {}

/// `segchar = ALPHA / DIGIT / "." / "_" / "-"`
pub(crate) fn is_segchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// The ref alphabet of R3: segchars plus the delimiters `/ : ? # =`.
fn is_alphabet(b: u8) -> bool {
    is_segchar(b) || matches!(b, b'/' | b':' | b'?' | b'#' | b'=')
}

fn is_dot_segment(s: &[u8]) -> bool {
    s == b"." || s == b".."
}

fn invalid_char(byte: u8, at: usize) -> RefError {
    let what = match byte {
        b' ' => "a space".to_string(),
        b'\t' => "a tab".to_string(),
        0 => "a NUL byte".to_string(),
        b'%' => "`%` (percent-encoding is never decoded)".to_string(),
        b'\\' => "a backslash".to_string(),
        b if b.is_ascii_control() => format!("the control byte 0x{b:02x}"),
        b if !b.is_ascii() => format!("the non-ASCII byte 0x{b:02x}"),
        b => format!("`{}`", b as char),
    };
    RefError::new(
        ErrorCode::RefInvalidChar,
        Some(at),
        format!("{what} is not allowed here"),
    )
}

/// A structural failure: the code and how many bytes were left unparsed where
/// it happened. The offset is `input.len() - rest`.
#[derive(Debug)]
struct Fail {
    code: ErrorCode,
    rest: usize,
    /// The segment text, for traversal messages.
    detail: &'static str,
}

impl Fail {
    fn at(code: ErrorCode, rest: &[u8]) -> nom::Err<Fail> {
        Self::with(code, rest, "")
    }

    fn with(code: ErrorCode, rest: &[u8], detail: &'static str) -> nom::Err<Fail> {
        nom::Err::Failure(Fail {
            code,
            rest: rest.len(),
            detail,
        })
    }

    fn into_error(self, input: &[u8]) -> RefError {
        let at = input.len() - self.rest;
        let message = match self.code {
            ErrorCode::RefInvalidChar => return invalid_char(input[at], at),
            ErrorCode::RefMissingMount => "no mount after `vault://`".to_string(),
            ErrorCode::RefMissingPath => "no secret path after the mount".to_string(),
            ErrorCode::RefMissingField if at > 0 && input[at - 1] == b'#' => {
                "the field after `#` is empty".to_string()
            }
            ErrorCode::RefMissingField => "no `#field` at the end of the ref".to_string(),
            ErrorCode::RefEmptySegment => {
                "empty path segment (`//`, or a leading or trailing `/`)".to_string()
            }
            ErrorCode::RefTraversal => {
                format!("`{}` is not allowed as a {}", dots(input, at), self.detail)
            }
            ErrorCode::RefBadQuery => format!(
                "only `?version=<n>` is allowed, with n from 1 to {MAX_VERSION} and no leading zeros"
            ),
            code => code.as_str().to_string(),
        };
        RefError::new(self.code, Some(at), message)
    }
}

fn dots(input: &[u8], at: usize) -> &'static str {
    if input[at..].starts_with(b"..") {
        ".."
    } else {
        "."
    }
}

impl<'a> ParseError<&'a [u8]> for Fail {
    fn from_error_kind(input: &'a [u8], _kind: ErrorKind) -> Self {
        // Only reached through combinators whose failure we always map; the
        // generic fallback names the position as an invalid character.
        Fail {
            code: ErrorCode::RefInvalidChar,
            rest: input.len(),
            detail: "",
        }
    }

    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type Res<'a, T> = IResult<&'a [u8], T, Fail>;

/// Reads segchars up to a delimiter (`/`, `?`, `#`) or the end; any other
/// byte there is invalid where it stands (R9).
fn segment(input: &[u8]) -> Res<'_, &[u8]> {
    let (rest, seg) = take_while(is_segchar).parse(input)?;
    match rest.first() {
        None | Some(b'/' | b'?' | b'#') => Ok((rest, seg)),
        Some(_) => Err(Fail::at(ErrorCode::RefInvalidChar, rest)),
    }
}

/// Everything after `vault://`: mount, path, optional query, field.
fn structure(input: &[u8]) -> Res<'_, SecretRef> {
    let (rest, mount) = segment(input)?;
    if mount.is_empty() {
        return Err(Fail::at(ErrorCode::RefMissingMount, input));
    }
    if is_dot_segment(mount) {
        return Err(Fail::with(ErrorCode::RefTraversal, input, "mount"));
    }
    let Ok((mut rest, _)) = tag::<_, _, Fail>(&b"/"[..]).parse(rest) else {
        return Err(Fail::at(ErrorCode::RefMissingPath, rest));
    };

    let path_start = rest;
    let mut first = true;
    let path_end = loop {
        let (after, seg) = segment(rest)?;
        if seg.is_empty() {
            let code = if first && after.first() != Some(&b'/') {
                ErrorCode::RefMissingPath
            } else {
                ErrorCode::RefEmptySegment
            };
            return Err(Fail::at(code, after));
        }
        if is_dot_segment(seg) {
            return Err(Fail::with(ErrorCode::RefTraversal, rest, "path segment"));
        }
        first = false;
        match after.first() {
            Some(b'/') => rest = &after[1..],
            Some(_) => break after,
            None => return Err(Fail::at(ErrorCode::RefMissingField, after)),
        }
    };
    let path = &path_start[..path_start.len() - path_end.len()];

    let (rest, version) = if path_end.first() == Some(&b'?') {
        let (rest, v) = query(&path_end[1..])?;
        (rest, Some(v))
    } else {
        (path_end, None)
    };
    let rest = match rest.first() {
        Some(b'#') => &rest[1..],
        _ => return Err(Fail::at(ErrorCode::RefMissingField, rest)),
    };
    let (tail, field) = take_while(is_segchar).parse(rest)?;
    if !tail.is_empty() {
        return Err(Fail::at(ErrorCode::RefInvalidChar, tail));
    }
    if field.is_empty() {
        return Err(Fail::at(ErrorCode::RefMissingField, rest));
    }

    // Every byte here passed `is_alphabet`, so it is ASCII.
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok((
        tail,
        SecretRef {
            mount: text(mount),
            path: text(path),
            version,
            field: text(field),
        },
    ))
}

/// `version=` 1-9 *DIGIT, then `#` or the end (R10).
fn query(input: &[u8]) -> Res<'_, u32> {
    const KEY: &[u8] = b"version=";
    let matched = input.iter().zip(KEY).take_while(|(a, b)| a == b).count();
    if matched < KEY.len() {
        return Err(Fail::at(ErrorCode::RefBadQuery, &input[matched..]));
    }
    let digits_at = &input[KEY.len()..];
    if !matches!(digits_at.first(), Some(b'1'..=b'9')) {
        return Err(Fail::at(ErrorCode::RefBadQuery, digits_at));
    }
    let (rest, digits) = take_while1(|b: u8| b.is_ascii_digit()).parse(digits_at)?;
    // Up to 512 digits, so parse by hand with overflow checks. The range is
    // checked before the byte after the digits: the earlier offset wins.
    let version = digits.iter().try_fold(0u32, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    });
    let Some(version) = version else {
        return Err(Fail::at(ErrorCode::RefBadQuery, digits_at));
    };
    if !matches!(rest.first(), None | Some(b'#')) {
        return Err(Fail::at(ErrorCode::RefBadQuery, rest));
    }
    Ok((rest, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> (ErrorCode, Option<usize>) {
        let e = SecretRef::parse(s).unwrap_err();
        (e.code(), e.offset())
    }

    #[test]
    fn parses_the_design_example() {
        let r =
            SecretRef::parse("vault://kv/moonmind/repos/MoonLadderStudios/MoonMind#github_token")
                .unwrap();
        assert_eq!(r.mount(), "kv");
        assert_eq!(r.path(), "moonmind/repos/MoonLadderStudios/MoonMind");
        assert_eq!(r.field(), "github_token");
        assert_eq!(r.version(), None);
        assert_eq!(
            r.kv2_data_path(),
            "kv/data/moonmind/repos/MoonLadderStudios/MoonMind"
        );
        assert_eq!(
            r.kv2_metadata_path(),
            "kv/metadata/moonmind/repos/MoonLadderStudios/MoonMind"
        );
    }

    #[test]
    fn check_order_examples_from_the_spec() {
        assert_eq!(
            err("vault://KV/../a b"),
            (ErrorCode::RefInvalidChar, Some(15))
        );
        assert_eq!(err("vault://kv/a b"), (ErrorCode::RefInvalidChar, Some(12)));
        assert_eq!(err("vault:/kv/a#f"), (ErrorCode::RefBadScheme, Some(7)));
        assert_eq!(err("vault:"), (ErrorCode::RefBadScheme, Some(6)));
        assert_eq!(err("vault://../a#f"), (ErrorCode::RefTraversal, Some(8)));
        assert_eq!(
            err("vault://kv//a#f"),
            (ErrorCode::RefEmptySegment, Some(11))
        );
        assert_eq!(err("vault://kv/#f"), (ErrorCode::RefMissingPath, Some(11)));
        assert_eq!(err("vault://kv#f"), (ErrorCode::RefMissingPath, Some(10)));
        assert_eq!(
            err("vault://kv/a/#f"),
            (ErrorCode::RefEmptySegment, Some(13))
        );
        assert_eq!(err("vault://kv/a"), (ErrorCode::RefMissingField, Some(12)));
        assert_eq!(err("vault://kv/a#"), (ErrorCode::RefMissingField, Some(13)));
        assert_eq!(
            err("vault://kv/a?version=01#f"),
            (ErrorCode::RefBadQuery, Some(21))
        );
        assert_eq!(
            err("vault://kv/a?version=4294967296#f"),
            (ErrorCode::RefBadQuery, Some(21))
        );
        assert_eq!(
            err("vault://kv/a?version=1"),
            (ErrorCode::RefMissingField, Some(22))
        );
        assert_eq!(
            err("vault://kv/a?ver=1#f"),
            (ErrorCode::RefBadQuery, Some(16))
        );
        assert_eq!(
            err("vault://kv/a#f#g"),
            (ErrorCode::RefInvalidChar, Some(14))
        );
    }

    #[test]
    fn pinned_version_round_trips() {
        let s = "vault://kv/a/b?version=4294967295#f";
        let r = SecretRef::parse(s).unwrap();
        assert_eq!(r.version(), Some(4_294_967_295));
        assert_eq!(r.to_string(), s);
    }
}
