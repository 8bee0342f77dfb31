//! `vaultref._vaultref`: the Python face of vaultref's core (refs, policy,
//! `codex_exec` payloads, redaction), for workers and queues written in
//! Python. The package `vaultref` (py_src/vaultref) re-exports it and adds
//! the pure-Python glue (`logging.Filter`, text stream wrapper).
//!
//! This crate is plumbing: every decision is the core crate's, so a Python
//! caller and a Rust caller get the same answer for the same input (pytest
//! runs every vector of `fixtures/` through this module to keep it so).
//!
//! Errors are exceptions carrying the stable codes of `spec/errors.md` as
//! `.code`. Secret values never appear in a `repr`, an exception or a
//! message. Redaction of large inputs runs without the GIL.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::{PyBytes, PyTuple};
use secrecy::SecretString;
use vaultref::payload::{self, QueuePolicy, ValidationOptions};
use vaultref::redact::{self as core_redact, RedactorBuilder};
use vaultref::{ErrorCode, RefPolicy, ScopeContext};

create_exception!(
    _vaultref,
    VaultrefError,
    PyValueError,
    "Base of every vaultref error; `.code` is a code of spec/errors.md."
);
create_exception!(
    _vaultref,
    RefError,
    VaultrefError,
    "A ref was refused: `.code`, `.offset` (byte offset or None), `.message`."
);
create_exception!(
    _vaultref,
    PayloadError,
    VaultrefError,
    "A job was refused: `.errors` lists every problem; `.code` is the first one's."
);
create_exception!(
    _vaultref,
    RedactError,
    VaultrefError,
    "A redactor could not be built (a secret too short, a bad setting)."
);

/// Inputs at least this long are redacted with the GIL released.
const DETACH_AT: usize = 64 * 1024;

/// An exception of type `T` with `code`, `message` (and `extra`) set as
/// attributes.
fn error<T: pyo3::type_object::PyTypeInfo>(
    py: Python<'_>,
    code: ErrorCode,
    message: &str,
    extra: &[(&str, Py<PyAny>)],
) -> PyErr {
    let err = PyErr::new::<T, _>(format!("[{}] {message}", code.as_str()));
    let value = err.value(py);
    let _ = value.setattr("code", code.as_str());
    let _ = value.setattr("message", message);
    for (k, v) in extra {
        let _ = value.setattr(*k, v);
    }
    err
}

fn ref_error(py: Python<'_>, e: &vaultref::RefError) -> PyErr {
    let offset = e.offset().into_pyobject(py).map(|o| o.unbind()).ok();
    let offset = offset.unwrap_or_else(|| py.None());
    error::<RefError>(py, e.code(), e.message(), &[("offset", offset)])
}

fn policy_error(py: Python<'_>, message: &str) -> PyErr {
    error::<RefError>(
        py,
        ErrorCode::ConfigInvalid,
        message,
        &[("offset", py.None())],
    )
}

/// `str` or `bytes`, as bytes (a ref may be given as raw bytes that are not
/// UTF-8, which is itself an error the parser reports with its offset).
#[derive(FromPyObject)]
enum Text {
    Str(PyBackedStr),
    Bytes(PyBackedBytes),
}

impl Text {
    fn bytes(&self) -> &[u8] {
        match self {
            Text::Str(s) => s.as_bytes(),
            Text::Bytes(b) => b,
        }
    }
}

fn ref_policy(
    py: Python<'_>,
    allowed_mounts: Vec<String>,
    max_length: usize,
    scopes: Vec<String>,
) -> PyResult<RefPolicy> {
    RefPolicy::default()
        .with_allowed_mounts(allowed_mounts)
        .with_max_length(max_length)
        .and_then(|p| p.with_scopes(scopes))
        .map_err(|e| policy_error(py, e.message()))
}

/// A parsed, policy-checked secret ref (`vault://mount/path[?version=N]#field`).
#[pyclass(frozen, eq, hash, skip_from_py_object, module = "vaultref")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    inner: vaultref::SecretRef,
}

#[pymethods]
impl SecretRef {
    /// Parses `ref` (syntax only, no policy); raises `RefError`.
    #[new]
    fn py_new(py: Python<'_>, r#ref: Text) -> PyResult<SecretRef> {
        vaultref::SecretRef::parse_bytes(r#ref.bytes(), vaultref::secret_ref::MAX_REF_LENGTH)
            .map(|inner| SecretRef { inner })
            .map_err(|e| ref_error(py, &e))
    }

    /// The KV v2 mount, e.g. `kv`.
    #[getter]
    fn mount(&self) -> &str {
        self.inner.mount()
    }

    /// The secret's path under the mount, without `data/`.
    #[getter]
    fn path(&self) -> &str {
        self.inner.path()
    }

    /// The field of the secret document.
    #[getter]
    fn field(&self) -> &str {
        self.inner.field()
    }

    /// The pinned version, or None for the latest.
    #[getter]
    fn version(&self) -> Option<u32> {
        self.inner.version()
    }

    /// The KV v2 read path, e.g. `kv/data/moonmind/repos/Acme/Api`.
    #[getter]
    fn kv2_data_path(&self) -> String {
        self.inner.kv2_data_path()
    }

    /// The KV v2 metadata path.
    #[getter]
    fn kv2_metadata_path(&self) -> String {
        self.inner.kv2_metadata_path()
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!("SecretRef({:?})", self.inner.to_string())
    }
}

/// Checks a ref under a policy bound to one job; returns a `SecretRef` or
/// raises `RefError` (`.code`, `.offset`, `.message`). A policy that cannot
/// be built raises `RefError` with code `config_invalid`.
#[pyfunction]
#[pyo3(signature = (r#ref, *, allowed_mounts=vec!["kv".to_owned()], max_length=512, scopes=vec![], repository=None, worker_id=None))]
fn check_ref(
    py: Python<'_>,
    r#ref: Text,
    allowed_mounts: Vec<String>,
    max_length: usize,
    scopes: Vec<String>,
    repository: Option<String>,
    worker_id: Option<String>,
) -> PyResult<SecretRef> {
    let policy = ref_policy(py, allowed_mounts, max_length, scopes)?;
    let ctx = ScopeContext {
        repository,
        worker_id,
    };
    policy
        .check_bytes(r#ref.bytes(), &ctx)
        .map(|inner| SecretRef { inner })
        .map_err(|e| ref_error(py, &e))
}

/// One problem with a job.
#[pyclass(frozen, get_all, module = "vaultref")]
pub struct PayloadIssue {
    /// The code (spec/errors.md).
    code: &'static str,
    /// RFC 6901 pointer into the job (`""`: the whole job).
    pointer: String,
    /// For people; never holds secret material.
    message: String,
    /// For `payload_contains_secret`: the token rule that matched.
    rule_id: Option<String>,
}

#[pymethods]
impl PayloadIssue {
    fn __repr__(&self) -> String {
        format!(
            "PayloadIssue(code={:?}, pointer={:?}, rule_id={:?})",
            self.code, self.pointer, self.rule_id
        )
    }
}

/// A validated `codex_exec` job: holding one means it passed every check.
#[pyclass(frozen, module = "vaultref")]
pub struct CodexExecJob {
    inner: payload::CodexExecJob,
}

fn wrap(r: Option<&vaultref::SecretRef>) -> Option<SecretRef> {
    r.map(|r| SecretRef { inner: r.clone() })
}

#[pymethods]
impl CodexExecJob {
    /// `payload.repository` as submitted.
    #[getter]
    fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The repository as `owner/repo`, or None when it has no such shape.
    #[getter]
    fn repository_slug(&self) -> Option<String> {
        self.inner.repository_slug()
    }

    /// `payload.instruction`.
    #[getter]
    fn instruction(&self) -> &str {
        self.inner.instruction()
    }

    /// `payload.ref` (the git ref to check out), if any.
    #[getter]
    fn git_ref(&self) -> Option<&str> {
        self.inner.git_ref()
    }

    /// `fresh_clone`, `reuse`, or None.
    #[getter]
    fn workdir_mode(&self) -> Option<&'static str> {
        self.inner.workdir_mode().map(|m| match m {
            payload::WorkdirMode::FreshClone => "fresh_clone",
            payload::WorkdirMode::Reuse => "reuse",
        })
    }

    /// `none`, `branch` or `pr`.
    #[getter]
    fn publish_mode(&self) -> &'static str {
        match self.inner.publish().mode() {
            payload::PublishMode::None => "none",
            payload::PublishMode::Branch => "branch",
            payload::PublishMode::Pr => "pr",
        }
    }

    /// `publish.baseBranch`, if any.
    #[getter]
    fn base_branch(&self) -> Option<String> {
        self.inner.publish().base_branch().map(str::to_owned)
    }

    /// `codex.model`, if any.
    #[getter]
    fn model(&self) -> Option<String> {
        self.inner.codex().model().map(str::to_owned)
    }

    /// `codex.effort`, if any.
    #[getter]
    fn effort(&self) -> Option<String> {
        self.inner.codex().effort().map(str::to_owned)
    }

    /// `payload.repoAuthRef`, parsed.
    #[getter]
    fn repo_auth_ref(&self) -> Option<SecretRef> {
        wrap(self.inner.repo_auth_ref())
    }

    /// The ref used to push: `publishAuthRef`, else `repoAuthRef`.
    #[getter]
    fn publish_auth_ref(&self) -> Option<SecretRef> {
        wrap(self.inner.publish_auth_ref())
    }

    /// The validated job as canonical JSON (unknown members dropped).
    fn to_json(&self) -> String {
        serde_json::to_string(&self.inner).unwrap_or_default()
    }

    fn __repr__(&self) -> String {
        format!(
            "CodexExecJob(repository={:?}, publish_mode={:?})",
            self.inner.repository(),
            self.publish_mode()
        )
    }
}

/// Validates a `codex_exec` job (JSON as `bytes` or `str`): the whole
/// pipeline of spec/codex-exec.md §5. Returns a `CodexExecJob` or raises
/// `PayloadError` whose `.errors` lists every problem (`PayloadIssue`).
#[pyfunction]
#[pyo3(signature = (data, *, allowed_mounts=vec!["kv".to_owned()], max_length=512, scopes=vec![], worker_id=None, allowed_repositories=None, allowed_job_types=None))]
#[allow(clippy::too_many_arguments)]
fn validate_payload(
    py: Python<'_>,
    data: Text,
    allowed_mounts: Vec<String>,
    max_length: usize,
    scopes: Vec<String>,
    worker_id: Option<String>,
    allowed_repositories: Option<Vec<String>>,
    allowed_job_types: Option<Vec<String>>,
) -> PyResult<CodexExecJob> {
    let ref_policy = ref_policy(py, allowed_mounts, max_length, scopes)?;
    let queue_policy =
        (allowed_repositories.is_some() || allowed_job_types.is_some()).then_some(QueuePolicy {
            allowed_repositories,
            allowed_job_types,
        });
    let options = ValidationOptions {
        ref_policy,
        worker_id,
        queue_policy,
    };
    match payload::validate(data.bytes(), &options) {
        Ok(inner) => Ok(CodexExecJob { inner }),
        Err(errors) => {
            let first = errors
                .first()
                .map(|e| (e.code, e.to_string()))
                .unwrap_or((ErrorCode::PayloadSchema, String::new()));
            let issues: Vec<Py<PayloadIssue>> = errors
                .into_iter()
                .map(|e| {
                    Py::new(
                        py,
                        PayloadIssue {
                            code: e.code.as_str(),
                            pointer: e.pointer,
                            message: e.message,
                            rule_id: e.rule_id,
                        },
                    )
                })
                .collect::<PyResult<_>>()?;
            let issues = issues.into_pyobject(py)?.into_any().unbind();
            Err(error::<PayloadError>(
                py,
                first.0,
                &first.1,
                &[("errors", issues)],
            ))
        }
    }
}

/// Masks registered secrets (and their encoded forms) and the built-in token
/// rules. Immutable: register every secret at construction. Its `repr`
/// shows how many secrets it holds, never one of them.
#[pyclass(frozen, module = "vaultref")]
pub struct Redactor {
    inner: core_redact::Redactor,
    builtin_rules: bool,
    replacement: String,
}

#[pymethods]
impl Redactor {
    #[new]
    #[pyo3(signature = (secrets=vec![], *, builtin_rules=true, min_secret_length=8, replacement="[REDACTED]".to_owned()))]
    fn py_new(
        py: Python<'_>,
        secrets: Vec<PyBackedStr>,
        builtin_rules: bool,
        min_secret_length: usize,
        replacement: String,
    ) -> PyResult<Redactor> {
        let mut builder = RedactorBuilder::new()
            .builtin_rules(builtin_rules)
            .min_secret_length(min_secret_length)
            .replacement(replacement.clone());
        for s in &secrets {
            let secret = SecretString::from(&**s);
            builder
                .add_secret(&secret)
                .map_err(|e| error::<RedactError>(py, e.code(), e.message(), &[]))?;
        }
        let inner = builder
            .build()
            .map_err(|e| error::<RedactError>(py, e.code(), e.message(), &[]))?;
        Ok(Redactor {
            inner,
            builtin_rules,
            replacement,
        })
    }

    /// `text` with every secret masked. Large inputs run without the GIL.
    fn redact(&self, py: Python<'_>, text: PyBackedStr) -> String {
        if text.len() >= DETACH_AT {
            py.detach(|| self.inner.redact(&text))
        } else {
            self.inner.redact(&text)
        }
    }

    /// [`Redactor.redact`] for bytes (any encoding; matching is on bytes).
    fn redact_bytes<'py>(&self, py: Python<'py>, data: PyBackedBytes) -> Bound<'py, PyBytes> {
        let out = if data.len() >= DETACH_AT {
            py.detach(|| self.inner.redact_bytes(&data))
        } else {
            self.inner.redact_bytes(&data)
        };
        PyBytes::new(py, &out)
    }

    /// A streaming redactor: `push(chunk)` returns what can be released so
    /// far (a secret split across chunks is still masked), `finish()` the
    /// rest.
    fn stream(&self) -> RedactStream {
        RedactStream {
            state: std::sync::Mutex::new(StreamState {
                stream: Some(self.inner.stream()),
                carry: Vec::new(),
            }),
        }
    }

    /// How many secrets are registered.
    #[getter]
    fn secret_count(&self) -> usize {
        self.inner.secret_count()
    }

    fn __repr__(&self) -> String {
        format!(
            "Redactor(secrets={}, builtin_rules={}, replacement={:?})",
            self.inner.secret_count(),
            if self.builtin_rules { "True" } else { "False" },
            self.replacement
        )
    }
}

/// A redaction stream (from `Redactor.stream()`): text in, text out.
#[pyclass(module = "vaultref")]
pub struct RedactStream {
    /// Locked only while detached from the interpreter: a thread holding it
    /// may be detached (redacting a large chunk) and must be able to attach
    /// again, which it could not if a waiter held the GIL.
    state: std::sync::Mutex<StreamState>,
}

struct StreamState {
    /// `None` once finished.
    stream: Option<core_redact::RedactStream>,
    /// The bytes of an incomplete UTF-8 character at the end of the last
    /// output, held until the rest comes.
    carry: Vec<u8>,
}

impl StreamState {
    /// `out` after what was carried, as text; unless `last`, an incomplete
    /// character at the end is carried to the next call. Invalid bytes
    /// elsewhere become U+FFFD.
    fn text(&mut self, out: Vec<u8>, last: bool) -> String {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(&out);
        if !last {
            let keep = bytes.len() - incomplete_tail(&bytes);
            self.carry = bytes.split_off(keep);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The length of the incomplete UTF-8 character `b` ends with (0 if none):
/// only its last three bytes are looked at, so invalid bytes earlier do not
/// decide it.
fn incomplete_tail(b: &[u8]) -> usize {
    for back in 1..=b.len().min(3) {
        let tail = &b[b.len() - back..];
        if tail[0] & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        return match std::str::from_utf8(tail) {
            Err(e) if e.valid_up_to() == 0 && e.error_len().is_none() => back,
            _ => 0,
        };
    }
    0
}

#[pymethods]
impl RedactStream {
    /// Feeds a chunk (`str` or `bytes`); returns the text released so far.
    fn push(&self, py: Python<'_>, chunk: Text) -> PyResult<String> {
        let input = chunk.bytes();
        py.detach(|| {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let stream = state.stream.as_mut()?;
            let mut out = Vec::new();
            stream.push(input, &mut out);
            Some(state.text(out, false))
        })
        .ok_or_else(|| PyValueError::new_err("the stream is finished"))
    }

    /// Ends the stream; returns what was held back. Further pushes raise.
    fn finish(&self, py: Python<'_>) -> String {
        py.detach(|| {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let mut out = Vec::new();
            if let Some(mut stream) = state.stream.take() {
                stream.finish(&mut out);
            }
            state.text(out, true)
        })
    }

    fn __repr__(&self) -> &'static str {
        "RedactStream(...)"
    }
}

/// `text` through the built-in token rules only (no registered secret).
#[pyfunction]
fn redact_tokens(text: &str) -> String {
    core_redact::redact(text)
}

/// The extension module.
#[pymodule]
fn _vaultref(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("VaultrefError", py.get_type::<VaultrefError>())?;
    m.add("RefError", py.get_type::<RefError>())?;
    m.add("PayloadError", py.get_type::<PayloadError>())?;
    m.add("RedactError", py.get_type::<RedactError>())?;
    m.add_class::<SecretRef>()?;
    m.add_class::<CodexExecJob>()?;
    m.add_class::<PayloadIssue>()?;
    m.add_class::<Redactor>()?;
    m.add_class::<RedactStream>()?;
    m.add_function(wrap_pyfunction!(check_ref, m)?)?;
    m.add_function(wrap_pyfunction!(validate_payload, m)?)?;
    m.add_function(wrap_pyfunction!(redact_tokens, m)?)?;
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    m.add("ERROR_CODES", PyTuple::new(py, codes)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
