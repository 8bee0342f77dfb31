"""vaultref for Python: validate Vault secret refs and ``codex_exec`` jobs, and
redact secrets from logs, with the Rust core of the reference implementation.

Submit time::

    job = vaultref.validate_payload(raw_bytes, scopes=["moonmind/repos/{repository}"],
                                    allowed_repositories=["Acme/Api"])

Worker logs::

    redactor = vaultref.Redactor([resolved_token])
    handler.addFilter(vaultref.RedactingFilter(redactor))

Every error is a ``VaultrefError`` (a ``ValueError``) whose ``.code`` is one of
``ERROR_CODES`` (spec/errors.md). No ``repr`` or message ever shows a secret.
"""

from __future__ import annotations

import io
import logging
from typing import TextIO

from ._vaultref import (
    ERROR_CODES,
    CodexExecJob,
    PayloadError,
    PayloadIssue,
    RedactError,
    Redactor,
    RedactStream,
    RefError,
    SecretRef,
    VaultrefError,
    __version__,
    check_ref,
    redact_tokens,
    validate_payload,
)

__all__ = [
    "ERROR_CODES",
    "CodexExecJob",
    "PayloadError",
    "PayloadIssue",
    "RedactError",
    "RedactingFilter",
    "RedactingStream",
    "Redactor",
    "RedactStream",
    "RefError",
    "SecretRef",
    "VaultrefError",
    "__version__",
    "check_ref",
    "redact_tokens",
    "validate_payload",
]


def _redact(redactor: Redactor, text: str) -> str:
    """``redactor.redact(text)``, also for text with lone surrogates (file
    names decoded with ``surrogateescape``, say), which are not UTF-8: those
    go through as bytes and come back as they were."""
    try:
        return redactor.redact(text)
    except UnicodeEncodeError:
        data = redactor.redact_bytes(text.encode("utf-8", "surrogatepass"))
        return data.decode("utf-8", "surrogatepass")


class RedactingFilter(logging.Filter):
    """A ``logging.Filter`` that redacts each record's message.

    The message is formatted first (``record.getMessage()``: ``msg % args``),
    so a secret passed as an argument is masked too, then stored back with no
    arguments. Exception text is formatted and redacted when the record
    carries one, and the exception itself is dropped from the record
    (``exc_info = None``), so no later handler formats it again unredacted;
    formatters print ``exc_text`` as before. Add it to a handler (every record
    that handler writes) or a logger.
    """

    def __init__(self, redactor: Redactor, name: str = "") -> None:
        super().__init__(name)
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redact(self._redactor, record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = _redact(self._redactor, record.exc_text)
        if record.stack_info:
            record.stack_info = _redact(self._redactor, record.stack_info)
        return True

    def __repr__(self) -> str:
        return f"RedactingFilter({self._redactor!r})"


class RedactingStream(io.TextIOBase):
    """A text stream that redacts what is written to it before passing it on.

    ``sys.stdout = RedactingStream(sys.stdout, redactor)``. Text is released
    as the redactor decides it (a secret split across two ``write`` calls is
    still masked), so call ``close()`` (or use ``with``) at the end: it writes
    what is still held back. The wrapped stream is not closed.
    """

    def __init__(self, inner: TextIO, redactor: Redactor) -> None:
        super().__init__()
        self._inner = inner
        self._stream = redactor.stream()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.closed:
            raise ValueError("write to a closed RedactingStream")
        try:
            out = self._stream.push(text)
        except (UnicodeEncodeError, TypeError):
            if not isinstance(text, str):
                raise
            # Lone surrogates: not UTF-8; they come out as U+FFFD.
            out = self._stream.push(text.encode("utf-8", "surrogatepass"))
        if out:
            self._inner.write(out)
        return len(text)

    def flush(self) -> None:
        # Held-back text stays held: releasing it early could cut a secret.
        self._inner.flush()

    def close(self) -> None:
        if not self.closed:
            out = self._stream.finish()
            if out:
                self._inner.write(out)
            self._inner.flush()
        super().close()

    def __repr__(self) -> str:
        return f"RedactingStream({self._inner!r})"
