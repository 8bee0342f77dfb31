//! The worker's log: every line, and every byte of a job action's output,
//! goes through a redactor holding the job's resolved secrets.
//!
//! The sink is any `Write` (stderr in production, a buffer in tests), shared
//! by all jobs behind a mutex. Each job gets a [`JobLog`] whose redactor is
//! rebuilt whenever a secret is resolved ([`JobLog::register`]), so a value is
//! masked from the moment the worker holds it. Before any secret is resolved
//! the built-in token rules still apply.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use secrecy::SecretString;

use crate::error::ErrorCode;
use crate::redact::{RedactWriter, Redactor, RedactorBuilder};

/// Where the worker's log goes.
pub type LogSink = Arc<Mutex<dyn Write + Send>>;

/// A log sink writing to the process's stderr.
pub fn stderr_sink() -> LogSink {
    Arc::new(Mutex::new(io::stderr()))
}

/// A `Write` that appends to a shared sink (one lock per write).
#[derive(Clone)]
pub struct SinkWriter(pub LogSink);

impl Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut sink = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sink.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

/// One job's view of the log. Clones share the sink and see the secrets
/// registered so far (not later ones).
#[derive(Clone)]
pub struct JobLog {
    job_id: String,
    sink: LogSink,
    secrets: Vec<SecretString>,
    usernames: Vec<String>,
    redactor: Arc<Redactor>,
    /// The refs this job used or tried, for its event.
    pub(crate) refs: Vec<String>,
    /// The `request_id` of each Vault read that returned a secret.
    pub(crate) request_ids: Vec<String>,
}

impl std::fmt::Debug for JobLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobLog")
            .field("job_id", &self.job_id)
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

impl JobLog {
    /// A log for job `job_id`; `usernames` are the Basic-auth user names
    /// whose `base64(user:secret)` form is also masked.
    pub fn new(job_id: &str, sink: LogSink, usernames: &[String]) -> JobLog {
        JobLog {
            job_id: job_id.to_owned(),
            sink,
            secrets: Vec::new(),
            usernames: usernames.to_vec(),
            redactor: Arc::new(Redactor::builtin()),
            refs: Vec::new(),
            request_ids: Vec::new(),
        }
    }

    /// Registers a resolved secret: from now on it (and its encoded forms)
    /// is masked. Fails with `secret_too_short` for a value too short to be
    /// masked without mangling ordinary text.
    pub fn register(&mut self, secret: &SecretString) -> Result<(), (ErrorCode, String)> {
        let mut builder = RedactorBuilder::new().basic_auth_usernames(self.usernames.clone());
        for s in self.secrets.iter().chain(std::iter::once(secret)) {
            builder
                .add_secret(s)
                .map_err(|e| (e.code(), e.message().to_owned()))?;
        }
        let redactor = builder
            .build()
            .map_err(|e| (e.code(), e.message().to_owned()))?;
        self.secrets.push(secret.clone());
        self.redactor = Arc::new(redactor);
        Ok(())
    }

    /// Adds a Basic-auth user name (a secret document's `username`) whose
    /// `base64(user:secret)` forms are masked from the next registration on.
    pub fn add_username(&mut self, username: &str) {
        if !self.usernames.iter().any(|u| u == username) {
            self.usernames.push(username.to_owned());
        }
    }

    /// The current redactor (for git's stderr and action output).
    pub fn redactor(&self) -> Arc<Redactor> {
        Arc::clone(&self.redactor)
    }

    /// Writes one line, `job <id>: <message>`, redacted.
    pub fn line(&self, message: &str) {
        let text = format!("job {}: {}\n", self.job_id, message);
        let redacted = self.redactor.redact(&text);
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        // Logging must never fail a job.
        let _ = sink.write_all(redacted.as_bytes());
        let _ = sink.flush();
    }

    /// A writer for streamed output (an action's stdout or stderr), redacted
    /// across write boundaries. Call `finish()` on it at the end of the stream.
    pub fn stream(&self) -> RedactWriter<SinkWriter> {
        RedactWriter::new(&self.redactor, SinkWriter(Arc::clone(&self.sink)))
    }
}
