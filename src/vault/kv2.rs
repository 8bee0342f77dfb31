//! Reading one field of a KV v2 secret, and telling Vault's 404s apart.
//!
//! KV v2 answers 404 in three situations that need different remedies:
//! nothing was ever written there (`secret_not_found`), the version was
//! soft-deleted and can be undeleted (`secret_version_deleted`), or it was
//! destroyed for good (`secret_version_destroyed`). Only the body tells them
//! apart: the last two carry `data.metadata` with `deletion_time` /
//! `destroyed`. This module is pure (bytes in, outcome out) so the mapping is
//! unit-tested without a server; the integration tests check it against
//! OpenBao.
//!
//! The parsed JSON holds every field of the secret, not only the one asked
//! for; all of its strings are zeroized before it is dropped.

use secrecy::SecretString;
use serde_json::Value;
use zeroize::Zeroize;

use super::error::ResolveError;
use crate::{ErrorCode, SecretRef};

/// The API path (relative to `/v1/`) of the ref's data, with its version.
pub(crate) fn data_path(r: &SecretRef) -> String {
    match r.version() {
        Some(v) => format!("{}?version={v}", r.kv2_data_path()),
        None => r.kv2_data_path(),
    }
}

/// A resolved value and what its secret document says about where it may
/// be used: the design's credential documents carry a `host` and a
/// `username` beside the token (`spec/resolver.md` G10). `Debug` shows the
/// host and user name, never the value (`SecretString` prints a marker).
#[derive(Debug)]
pub struct Credential {
    /// The field's value.
    pub value: SecretString,
    /// The document's `host` field, when it is a string: the only host (and
    /// port) the value may be sent to.
    pub host: Option<String>,
    /// The document's `username` field, when it is a string: the user name
    /// git sends with the value.
    pub username: Option<String>,
    /// The version read (`data.metadata.version`).
    pub version: Option<u64>,
    /// Vault's `request_id` for the read: what the audit log records, so a
    /// job event can point at the audit entry.
    pub request_id: Option<String>,
}

/// Interprets a 200 or 404 answer to a KV v2 data read.
pub(crate) fn interpret(
    status: u16,
    body: &[u8],
    r: &SecretRef,
) -> Result<Credential, ResolveError> {
    let parsed = serde_json::from_slice::<Value>(body);
    let well_formed = matches!(parsed, Ok(Value::Object(_)));
    let mut doc: Value = parsed.unwrap_or(Value::Null);
    let result = match status {
        // A 200 that is not a JSON object did not come from a working KV v2
        // engine (a proxy's error page, a hostile server): not "not found".
        200 if !well_formed => Err(ResolveError::new(
            ErrorCode::VaultUnavailable,
            "the KV v2 read was answered with a body that is not a JSON object",
        )),
        200 => field(&doc, r).map(|value| {
            let text = |k: &str| {
                doc.pointer(&format!("/data/data/{k}"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            Credential {
                value,
                host: text("host"),
                username: text("username"),
                version: doc
                    .pointer("/data/metadata/version")
                    .and_then(Value::as_u64),
                request_id: doc
                    .get("request_id")
                    .and_then(Value::as_str)
                    .filter(|id| is_request_id(id))
                    .map(str::to_owned),
            }
        }),
        404 => Err(not_found(&doc, r)),
        other => Err(ResolveError::new(
            ErrorCode::VaultUnavailable,
            format!("unexpected HTTP {other} from the KV v2 read"),
        )),
    };
    scrub(&mut doc);
    result
}

/// Vault's request ids are UUIDs; anything else (a hostile server's text)
/// is not carried into job events.
fn is_request_id(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn field(doc: &Value, r: &SecretRef) -> Result<SecretString, ResolveError> {
    let data = doc.pointer("/data/data");
    match data.and_then(|d| d.get(r.field())) {
        Some(Value::String(s)) => Ok(SecretString::from(s.as_str())),
        Some(other) => Err(ResolveError::new(
            ErrorCode::SecretFieldMissing,
            format!(
                "field `{}` of {} is a JSON {}, not a string",
                r.field(),
                r.kv2_data_path(),
                kind(other)
            ),
        )),
        None if data.is_some_and(Value::is_object) => Err(ResolveError::new(
            ErrorCode::SecretFieldMissing,
            format!(
                "the secret at {} has no field `{}`",
                r.kv2_data_path(),
                r.field()
            ),
        )),
        // 200 without data: a version whose data is gone but that Vault
        // still answers for. Classify it by its metadata like a 404.
        None => Err(not_found(doc, r)),
    }
}

fn not_found(doc: &Value, r: &SecretRef) -> ResolveError {
    let meta = doc.pointer("/data/metadata");
    let version = meta
        .and_then(|m| m.get("version"))
        .and_then(Value::as_u64)
        .map(|v| format!("version {v}"))
        .unwrap_or_else(|| "the requested version".to_string());
    let destroyed = meta
        .and_then(|m| m.get("destroyed"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let deleted = meta
        .and_then(|m| m.get("deletion_time"))
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    if destroyed {
        ResolveError::new(
            ErrorCode::SecretVersionDestroyed,
            format!(
                "{version} of {} was destroyed; write a new version",
                r.kv2_data_path()
            ),
        )
    } else if deleted {
        ResolveError::new(
            ErrorCode::SecretVersionDeleted,
            format!(
                "{version} of {} was deleted; undelete it or write a new version",
                r.kv2_data_path()
            ),
        )
    } else {
        let what = match r.version() {
            Some(v) => format!("no version {v} of a secret at {}", r.kv2_data_path()),
            None => format!("no secret at {}", r.kv2_data_path()),
        };
        ResolveError::new(ErrorCode::SecretNotFound, what)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Zeroizes every string (keys excepted) in a JSON document.
fn scrub(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(map) => map.values_mut().for_each(scrub),
        _ => {}
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_200_that_is_not_a_json_object_is_unavailable() {
        let r = SecretRef::parse("vault://kv/a#token").unwrap();
        for body in [&b"{not json"[..], b"", b"[1]", b"\"x\""] {
            let e = interpret(200, body, &r).unwrap_err();
            assert_eq!(e.code(), ErrorCode::VaultUnavailable, "{body:?}");
        }
    }

    use super::*;
    use secrecy::ExposeSecret;

    fn r(s: &str) -> SecretRef {
        SecretRef::parse(s).unwrap()
    }

    fn code(status: u16, body: &str) -> ErrorCode {
        interpret(status, body.as_bytes(), &r("vault://kv/a/b#token"))
            .unwrap_err()
            .code()
    }

    #[test]
    fn reads_the_field() {
        let body =
            r#"{"data":{"data":{"token":"ghp_FAKEFAKEFAKE","n":1},"metadata":{"version":3}}}"#;
        let v = interpret(200, body.as_bytes(), &r("vault://kv/a/b#token")).unwrap();
        assert_eq!(v.value.expose_secret(), "ghp_FAKEFAKEFAKE");
        assert_eq!((v.host, v.username), (None, None));
        let doc = r#"{"data":{"data":{"github_token":"ghp_FAKEFAKEFAKE","host":"github.com","username":"x-access-token"}}}"#;
        let c = interpret(200, doc.as_bytes(), &r("vault://kv/a/b#github_token")).unwrap();
        assert_eq!(c.host.as_deref(), Some("github.com"));
        assert_eq!(c.username.as_deref(), Some("x-access-token"));
        let e = interpret(200, body.as_bytes(), &r("vault://kv/a/b#n")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::SecretFieldMissing);
        let e = interpret(200, body.as_bytes(), &r("vault://kv/a/b#other")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::SecretFieldMissing);
        assert!(!e.message().contains("FAKE"));
    }

    /// Bodies as OpenBao 2.7.2 sends them (see field notes §2).
    #[test]
    fn tells_404s_apart() {
        assert_eq!(code(404, r#"{"errors":[]}"#), ErrorCode::SecretNotFound);
        assert_eq!(code(404, ""), ErrorCode::SecretNotFound);
        assert_eq!(
            code(
                404,
                r#"{"data":{"data":null,"metadata":{"deletion_time":"2026-11-28T18:48:20Z","destroyed":false,"version":1}}}"#
            ),
            ErrorCode::SecretVersionDeleted
        );
        assert_eq!(
            code(
                404,
                r#"{"data":{"data":null,"metadata":{"deletion_time":"","destroyed":true,"version":2}}}"#
            ),
            ErrorCode::SecretVersionDestroyed
        );
        assert_eq!(code(500, "{}"), ErrorCode::VaultUnavailable);
    }

    #[test]
    fn scrub_clears_nested_strings() {
        let mut v: Value = serde_json::from_str(r#"{"a":["xyz",{"b":"pqr"}],"c":"stu"}"#).unwrap();
        scrub(&mut v);
        assert_eq!(v, serde_json::json!({"a":["",{"b":""}],"c":""}));
    }
}
