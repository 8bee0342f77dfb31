//! Job events: one JSON object per job outcome and one per degraded-mode
//! transition, for alerting that names job ids (`spec/events.md`, schema
//! `spec/events.schema.json`).
//!
//! The log ([`super::log`]) is for people reading one job; events are for
//! machines watching a fleet. An event says what happened and why, in stable
//! codes: the job id, the outcome, the error code, the repository, the refs
//! used (refs, never values), how long it took and the `request_id` of every
//! Vault read the job made, which is what the Vault audit log records, so an
//! operator can go from an alert to the audit entry without a token.
//!
//! # What an event never holds
//!
//! A secret value, a token, a secret id: nothing in an event is taken from a
//! Vault answer except request ids (UUIDs Vault made) and nothing from the
//! job except what the queue already shows. The job id, the repository and
//! the message pass through the job's redactor anyway, since a job submitter
//! controls them and may have pasted a token into one.
//!
//! # Sinks
//!
//! [`EventSink`]: off (the default), stderr, a file (opened once, append
//! only, mode 0600, one `write` per event so concurrent jobs never interleave
//! a line), or a callback for a library user who forwards events elsewhere.
//! Emitting never fails a job: a full disk loses events, not work.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::ErrorCode;

/// The version of the event format (`spec/events.md`); bumped on a change
/// that is not an added optional field.
pub const EVENT_FORMAT: u32 = 1;

/// One event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A job ended (completed, failed or declined).
    Job(JobEvent),
    /// The worker entered or left degraded mode.
    VaultHealth(HealthEvent),
}

/// How one job ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobEvent {
    /// [`EVENT_FORMAT`].
    pub format: u32,
    /// When the job ended, RFC 3339 in UTC with milliseconds.
    pub time: String,
    /// The worker's id.
    pub worker_id: String,
    /// The queue's job id.
    pub job_id: String,
    /// `completed`, `failed` or `declined`.
    pub outcome: &'static str,
    /// The error code of a failed job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    /// Why the job failed or was declined, for people (no secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The job's `repository` as submitted.
    pub repository: String,
    /// The refs the job used or tried, in order: `repoAuthRef` (or the
    /// worker's default), then the publish ref when it was read.
    pub refs: Vec<String>,
    /// From taken to ended, in milliseconds.
    pub duration_ms: u64,
    /// The `request_id` of each Vault read that returned a secret, in order.
    pub vault_request_ids: Vec<String>,
    /// The branch pushed, when the job published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_branch: Option<String>,
}

/// A degraded-mode transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HealthEvent {
    /// [`EVENT_FORMAT`].
    pub format: u32,
    /// When it happened, RFC 3339 in UTC with milliseconds.
    pub time: String,
    /// The worker's id.
    pub worker_id: String,
    /// `degraded` (secret jobs are declined from now on) or `healthy`.
    pub state: &'static str,
    /// Entering: the failure that switched it on. Leaving: how many probes
    /// it took.
    pub reason: String,
    /// Leaving: how long the worker was degraded, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded_ms: Option<u64>,
}

/// A callback receiving each event.
pub type EventCallback = Arc<dyn Fn(&Event) + Send + Sync>;

/// Where events go.
#[derive(Clone, Default)]
pub enum EventSink {
    /// Nowhere (the default).
    #[default]
    Off,
    /// One JSON line per event on the process's stderr.
    Stderr,
    /// One JSON line per event appended to a file ([`EventSink::file`]).
    File(Arc<Mutex<File>>),
    /// A function of the embedding program.
    Callback(EventCallback),
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventSink::Off => "EventSink::Off",
            EventSink::Stderr => "EventSink::Stderr",
            EventSink::File(_) => "EventSink::File",
            EventSink::Callback(_) => "EventSink::Callback",
        })
    }
}

impl EventSink {
    /// Appends to `path`, creating it with mode 0600 (events name
    /// repositories and refs: not for every local user).
    pub fn file(path: &Path) -> io::Result<EventSink> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        Ok(EventSink::File(Arc::new(Mutex::new(file))))
    }

    /// A sink calling `f` with each event.
    pub fn callback(f: impl Fn(&Event) + Send + Sync + 'static) -> EventSink {
        EventSink::Callback(Arc::new(f))
    }

    /// Sends `event`. Never fails: an event that cannot be written is lost.
    pub fn emit(&self, event: &Event) {
        let line = || {
            let mut line = serde_json::to_vec(event).unwrap_or_default();
            line.push(b'\n');
            line
        };
        match self {
            EventSink::Off => {}
            EventSink::Stderr => {
                let _ = io::stderr().lock().write_all(&line());
            }
            EventSink::File(file) => {
                let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
                let _ = file.write_all(&line());
            }
            EventSink::Callback(f) => f(event),
        }
    }
}

/// Milliseconds of a duration, saturated.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Now, as RFC 3339 in UTC with milliseconds (`2026-12-02T18:20:18.123Z`).
pub(crate) fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's `civil_from_days`).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        let at = |s: u64, ms: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(s * 1000 + ms));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.007Z");
        assert_eq!(at(1_796_235_618, 123), "2026-12-02T18:20:18.123Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    }

    #[test]
    fn events_serialise_with_their_tag_and_without_absent_fields() {
        let e = Event::VaultHealth(HealthEvent {
            format: EVENT_FORMAT,
            time: "t".into(),
            worker_id: "w".into(),
            state: "healthy",
            reason: "r".into(),
            degraded_ms: None,
        });
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"vault_health","format":1,"time":"t","worker_id":"w","state":"healthy","reason":"r"}"#
        );
    }

    #[test]
    fn a_file_sink_appends_one_line_per_event_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "earlier\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let fresh = dir.path().join("fresh.jsonl");
        for p in [&path, &fresh] {
            let sink = EventSink::file(p).unwrap();
            for state in ["degraded", "healthy"] {
                sink.emit(&Event::VaultHealth(HealthEvent {
                    format: EVENT_FORMAT,
                    time: now_rfc3339(),
                    worker_id: "w".into(),
                    state,
                    reason: "r".into(),
                    degraded_ms: None,
                }));
            }
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "earlier");
        assert!(lines[2].contains(r#""state":"healthy""#));
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
