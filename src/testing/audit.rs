//! Reading OpenBao's file audit log, once for every test and the harness.
//!
//! Each line of the log is one JSON object: a `request` entry when Vault
//! receives a request, a `response` entry when it answers. Tests and
//! conformance scenarios ask the same few questions of it (which paths were
//! requested, by whom, with which job-id header), so the answers live here
//! and the raw JSON stays reachable through `Deref` for anything else.

use std::ops::Deref;
use std::path::Path;

use serde_json::Value;

use super::{TestSupportError, err};

/// One entry of the audit log.
#[derive(Clone, Debug)]
pub struct AuditEntry(Value);

impl AuditEntry {
    /// One line of the log; `None` if it is not JSON (a line being written).
    pub fn parse(line: &str) -> Option<AuditEntry> {
        serde_json::from_str(line).ok().map(AuditEntry)
    }

    /// A `request` entry (as opposed to its `response`).
    pub fn is_request(&self) -> bool {
        self.0["type"] == "request"
    }

    /// The request path, e.g. `kv/data/moonmind/repos/Acme/Api` (no `/v1/`).
    pub fn path(&self) -> &str {
        self.0["request"]["path"].as_str().unwrap_or("")
    }

    /// The request's id (`request.id`): the `request_id` of Vault's answer.
    pub fn request_id(&self) -> Option<&str> {
        self.0["request"]["id"].as_str()
    }

    /// The operation: `read`, `list`, `create`, `update`, `delete`.
    pub fn operation(&self) -> &str {
        self.0["request"]["operation"].as_str().unwrap_or("")
    }

    /// A write (`create` or `update`): in the harness, its own provisioning.
    pub fn is_write(&self) -> bool {
        matches!(self.operation(), "create" | "update")
    }

    /// The value of a request header the audit device records in clear
    /// (`sys/config/auditing/request-headers`); names compare without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        let h = &self.0["request"]["headers"][name.to_ascii_lowercase()];
        h.as_str()
            .or_else(|| h.as_array().and_then(|a| a.first()).and_then(Value::as_str))
    }

    /// The tokens this entry names in clear (the audit device logs raw, see
    /// [`crate::testing::audit_config`]): the token that made the request
    /// and, in a response, the token the server issued.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        [
            &self.0["auth"]["client_token"],
            &self.0["response"]["auth"]["client_token"],
        ]
        .into_iter()
        .filter_map(Value::as_str)
        .filter(|t| !t.is_empty() && !t.starts_with("hmac-"))
    }

    /// The AppRole role name of the token that made the request, if any.
    pub fn role_name(&self) -> Option<&str> {
        self.0["auth"]["metadata"]["role_name"].as_str()
    }
}

impl Deref for AuditEntry {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.0
    }
}

/// Every entry of the audit log at `path`, in order (lines that are not JSON,
/// such as a line being written, are skipped).
pub fn read_log(path: &Path) -> Result<Vec<AuditEntry>, TestSupportError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("read audit log {}: {e}", path.display())))?;
    Ok(text.lines().filter_map(AuditEntry::parse).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_requests_headers_and_roles() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        std::fs::write(
            &log,
            concat!(
                r#"{"type":"request","request":{"path":"kv/data/a","operation":"read","headers":{"x-vaultref-job-id":["job-1"]}},"auth":{"metadata":{"role_name":"r"}}}"#,
                "\n",
                r#"{"type":"response","request":{"path":"kv/data/a","operation":"update"}}"#,
                "\n{\"type\":\"requ"
            ),
        )
        .unwrap();
        let entries = read_log(&log).unwrap();
        assert_eq!(entries.len(), 2);
        let (req, resp) = (&entries[0], &entries[1]);
        assert!(req.is_request() && !resp.is_request());
        assert_eq!(req.path(), "kv/data/a");
        assert_eq!(req.header("X-Vaultref-Job-Id"), Some("job-1"));
        assert_eq!(req.role_name(), Some("r"));
        assert!(!req.is_write() && resp.is_write());
        assert_eq!(req["request"]["operation"], "read");
        assert!(read_log(&dir.path().join("none")).is_err());
        assert_eq!(req.tokens().count(), 0);
        let issued: AuditEntry = AuditEntry(serde_json::json!({"type": "response",
            "auth": {"client_token": "s.FAKEREQUESTER"},
            "response": {"auth": {"client_token": "s.FAKEISSUED"}}}));
        assert_eq!(
            issued.tokens().collect::<Vec<_>>(),
            ["s.FAKEREQUESTER", "s.FAKEISSUED"]
        );
        let hashed = AuditEntry(serde_json::json!({"auth": {"client_token": "hmac-sha256:ab"}}));
        assert_eq!(hashed.tokens().count(), 0);
    }
}
