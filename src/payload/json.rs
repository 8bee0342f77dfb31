//! Step 1: strict JSON parsing.
//!
//! `serde_json::Value` silently keeps the last of two members with the same
//! name. For a job that is a security hole twice over: two parsers in a
//! pipeline may disagree about which `repository` a job is for (one checks the
//! first, the other acts on the last), and the dropped member is never seen by
//! the raw-secret lint. So objects are built here by a visitor that refuses a
//! repeated name, and the whole job is rejected as `payload_not_json`.
//!
//! The error message is serde_json's (a position, never the input) or ours,
//! which does not repeat the duplicated name either: a name can be a secret.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value parsed with duplicate member names refused.
pub(crate) struct StrictValue(pub(crate) Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // serde_json never produces a non-finite f64, so this is never Null.
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                return Err(de::Error::custom(
                    "an object has two members with the same name",
                ));
            }
            let StrictValue(v) = map.next_value()?;
            members.insert(key, v);
        }
        Ok(Value::Object(members))
    }
}

/// Parses `bytes` as one JSON value, refusing duplicate member names.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice::<StrictValue>(bytes)
        .map(|StrictValue(v)| v)
        .map_err(|e| format!("the job is not valid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_names_are_refused_without_naming_them() {
        let e = parse(br#"{"a": {"secretname": 1, "secretname": 2}}"#).unwrap_err();
        assert!(e.contains("two members with the same name"), "{e}");
        assert!(!e.contains("secretname"), "{e}");
    }

    #[test]
    fn ordinary_json_parses_as_serde_json_does() {
        let text = br#"{"a": [1, -2, 3.5, true, null, "x"], "b": {"c": {}}}"#;
        let ours = parse(text).unwrap();
        let theirs: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(ours, theirs);
    }

    /// spec §5 step 1: nesting up to 64 levels MUST be accepted.
    #[test]
    fn sixty_four_levels_of_nesting_parse() {
        let deep = format!("{}1{}", "[".repeat(64), "]".repeat(64));
        assert!(parse(deep.as_bytes()).is_ok());
        let objects = format!("{}1{}", r#"{"a":"#.repeat(64), "}".repeat(64));
        assert!(parse(objects.as_bytes()).is_ok());
        // Far deeper input is refused, not a stack overflow.
        let too_deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(too_deep.as_bytes()).is_err());
    }

    #[test]
    fn syntax_errors_and_lone_surrogates_are_errors() {
        assert!(parse(b"{").is_err());
        assert!(parse(br#"{"a": "\ud800"}"#).is_err());
        assert!(parse(b"").is_err());
        assert!(parse(b"{} {}").is_err());
    }
}
