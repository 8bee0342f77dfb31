"""The Python glue (logging filter, stream wrapper), the CLI-equivalent error
cases, and the GIL being released on large inputs."""

from __future__ import annotations

import io
import logging
import threading
import time

import pytest
import vaultref

SECRET = "FAKE-registered-Secret-42"
GHP = "ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0000"


def capture(filt: logging.Filter) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(filt)
    logger = logging.getLogger(f"vaultref-test-{id(out)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, out


def test_the_logging_filter_redacts_message_args_and_tracebacks() -> None:
    logger, out = capture(vaultref.RedactingFilter(vaultref.Redactor([SECRET])))
    logger.info("cloning with %s", SECRET)
    logger.info("a token the rules know: %s", GHP)
    try:
        raise RuntimeError(f"failed with {SECRET}")
    except RuntimeError:
        logger.exception("job failed")
    text = out.getvalue()
    assert SECRET not in text and GHP not in text
    assert "cloning with [REDACTED]" in text
    assert "[REDACTED:github-pat]" in text
    assert "RuntimeError: failed with [REDACTED]" in text


def test_a_later_handler_never_sees_the_unredacted_exception() -> None:
    # The filter sits on the first handler; a second handler on the same
    # logger formats the same record after it, reading the exception object
    # itself (as structured-logging formatters do).
    class Structured(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return f"{record.getMessage()} {record.exc_info!r} {record.exc_text}"

    logger, first = capture(vaultref.RedactingFilter(vaultref.Redactor([SECRET])))
    second = io.StringIO()
    handler = logging.StreamHandler(second)
    handler.setFormatter(Structured())
    logger.addHandler(handler)
    try:
        raise RuntimeError(f"failed with {SECRET}")
    except RuntimeError:
        logger.exception("job failed")
    assert "failed with [REDACTED]" in first.getvalue()
    assert "failed with [REDACTED]" in second.getvalue()
    assert SECRET not in first.getvalue() + second.getvalue()


def test_lone_surrogates_are_redacted_and_kept() -> None:
    logger, out = capture(vaultref.RedactingFilter(vaultref.Redactor([SECRET])))
    name = b"file-\xff".decode("utf-8", "surrogateescape")
    logger.info("opened %s with %s", name, SECRET)
    assert out.getvalue() == f"INFO opened {name} with [REDACTED]\n"
    wrapped = io.StringIO()
    with vaultref.RedactingStream(wrapped, vaultref.Redactor([SECRET])) as s:
        s.write(f"{name} {SECRET}\n")
    assert wrapped.getvalue().endswith(" [REDACTED]\n") and SECRET not in wrapped.getvalue()


def test_the_stream_wrapper_masks_a_secret_split_across_writes() -> None:
    out = io.StringIO()
    with vaultref.RedactingStream(out, vaultref.Redactor([SECRET])) as s:
        s.write("token: " + SECRET[:10])
        s.write(SECRET[10:] + " done\nnext line")
    assert out.getvalue() == "token: [REDACTED] done\nnext line"
    with pytest.raises(ValueError):
        s.write("after close")


def test_cli_equivalent_errors() -> None:
    # `vaultref ref check --scope 'a/{nope}'`: a policy that cannot be built.
    with pytest.raises(vaultref.RefError) as caught:
        vaultref.check_ref("vault://kv/a#f", scopes=["a/{nope}"])
    assert (caught.value.code, caught.value.offset) == ("config_invalid", None)
    with pytest.raises(vaultref.RefError) as caught:
        vaultref.check_ref("vault://kv/a#f", max_length=513)
    assert caught.value.code == "config_invalid"
    # A pasted token instead of a ref: refused, and never echoed back.
    with pytest.raises(vaultref.RefError) as caught:
        vaultref.check_ref(GHP)
    assert caught.value.code == "ref_bad_scheme" and GHP not in str(caught.value)
    # Bytes that are not UTF-8 carry their offset.
    with pytest.raises(vaultref.RefError) as caught:
        vaultref.check_ref(b"vault://kv/a\xe9#f")
    assert (caught.value.code, caught.value.offset) == ("ref_invalid_char", 12)
    # `vaultref payload check` on text that is not JSON.
    with pytest.raises(vaultref.PayloadError) as caught:
        vaultref.validate_payload("not json")
    assert [(e.code, e.pointer) for e in caught.value.errors] == [("payload_not_json", "")]
    # Every code is one of the catalogue's, and errors are ValueErrors.
    assert issubclass(vaultref.PayloadError, ValueError)
    assert "ref_out_of_scope" in vaultref.ERROR_CODES


def test_a_job_has_typed_accessors() -> None:
    job = vaultref.validate_payload(
        b'{"type":"codex_exec","payload":{"repository":"https://github.com/Acme/Api.git",'
        b'"instruction":"x","workdirMode":"reuse","publish":{"mode":"pr","baseBranch":"main"},'
        b'"repoAuthRef":"vault://kv/moonmind/repos/Acme/Api#github_token","extra":1}}',
        scopes=["moonmind/repos/{repository}"],
        allowed_repositories=["https://github.com/Acme/Api.git"],
    )
    assert (job.repository_slug, job.workdir_mode, job.publish_mode, job.base_branch) == (
        "Acme/Api",
        "reuse",
        "pr",
        "main",
    )
    assert job.publish_auth_ref == job.repo_auth_ref
    assert job.repo_auth_ref.kv2_data_path == "kv/data/moonmind/repos/Acme/Api"
    assert '"extra"' not in job.to_json()
    with pytest.raises(vaultref.PayloadError) as caught:
        vaultref.validate_payload(job.to_json(), allowed_repositories=["Acme/Web"])
    assert caught.value.code == "repository_not_allowed"


def test_large_inputs_are_redacted_without_the_gil() -> None:
    r = vaultref.Redactor([SECRET])
    text = ("a log line without anything in it, " * 3 + "\n") * 2_000_000  # ~200 MB
    done = threading.Event()
    result: list[str] = []

    def work() -> None:
        result.append(r.redact(text))
        done.set()

    worker = threading.Thread(target=work)
    started = time.perf_counter()
    worker.start()
    ticks = 0
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    elapsed = time.perf_counter() - started
    assert result[0] == text
    # Holding the GIL would leave this thread no turn until the call ended:
    # one tick in all. Released, it ticks about once a millisecond.
    assert elapsed > 0.02, "too fast to tell; make the input larger"
    assert ticks >= elapsed / 0.01, (elapsed, ticks)


def test_one_stream_fed_from_two_threads_does_not_deadlock() -> None:
    # One thread pushes large chunks (redacted without the GIL), the other
    # small ones (which used to wait for the stream's lock holding the GIL,
    # so the first could never attach again).
    stream = vaultref.Redactor([SECRET]).stream()
    big = ("x" * 99 + "\n") * 2_000  # 200 KB: past the detach threshold
    outputs: list[str] = []
    lock = threading.Lock()

    def feed(chunk: str, times: int) -> None:
        for _ in range(times):
            out = stream.push(chunk)
            with lock:
                outputs.append(out)

    threads = [
        threading.Thread(target=feed, args=(big, 50)),
        threading.Thread(target=feed, args=("y\n", 5_000)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "deadlocked"
    total = "".join(outputs) + stream.finish()
    assert len(total) == 50 * len(big) + 5_000 * 2


def test_bytes_with_an_invalid_byte_keep_a_character_split_across_pushes() -> None:
    stream = vaultref.Redactor().stream()
    # An invalid byte early, then the first half of "é" at the end: the half
    # waits for the rest instead of becoming U+FFFD.
    out = stream.push(b"a\xffb \xc3")
    out += stream.push(b"\xa9\n")
    assert out + stream.finish() == "a\ufffdb \u00e9\n"
