//! `vaultref redact` as a pipe: stdin to stdout, exit codes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vaultref"))
}

#[test]
fn pipes_and_masks() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::write(
        &secrets,
        "FAKE-s3cret-value\n<<END\nmulti-FAKE-line-1\nmulti-FAKE-line-2\nEND\n",
    )
    .unwrap();
    let out = bin()
        .args(["redact", "--secrets-file"])
        .arg(&secrets)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(
                b"a FAKE-s3cret-value\nx multi-FAKE-line-1\nmulti-FAKE-line-2 y\ntoken: FAKEfake1234\n",
            )?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "a [REDACTED]\nx [REDACTED] y\ntoken: [REDACTED:secret-assignment]\n"
    );
}

/// A complete line comes out before the input ends: logs keep flowing.
#[test]
fn lines_flow_live() {
    let mut child = bin()
        .args(["redact"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"first password=FAKE-value-1\nsecond without newline")
        .unwrap();
    stdin.flush().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "first password=[REDACTED:secret-assignment]\n");
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    assert_eq!(rest, "second without newline");
    assert!(child.wait().unwrap().success());
}

#[test]
fn refuses_short_secret_and_bad_usage() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::write(&secrets, "okay-long-FAKE\nshort\n").unwrap();
    let out = bin()
        .args(["redact", "--secrets-file"])
        .arg(&secrets)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("secret_too_short") && err.contains(":2:"),
        "{err}"
    );
    assert!(
        !err.contains("short\n") && !err.contains("okay-long"),
        "{err}"
    );

    let out = bin()
        .args(["redact", "--min-secret-length", "nope"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .args(["redact", "--secrets-file", "/nonexistent/secrets"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Runs `vaultref redact` with `args` on `input`.
fn redact(args: &[&std::ffi::OsStr], input: &[u8]) -> std::process::Output {
    let mut child = bin()
        .arg("redact")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// Settings never fail open: a minimum below what the engine can mask was
/// accepted and the 3-byte secret then never masked (exit 0). Now a usage
/// error, before any input is read.
#[test]
fn a_minimum_length_the_engine_cannot_mask_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    let with_min = |secret: &str, min: &str, input: &[u8]| {
        std::fs::write(&secrets, format!("{secret}\n")).unwrap();
        redact(
            &[
                "--secrets-file".as_ref(),
                secrets.as_os_str(),
                "--min-secret-length".as_ref(),
                min.as_ref(),
            ],
            input,
        )
    };
    let out = with_min("abc", "3", b"x abc y\n");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error[config_invalid]") && err.contains("at least 4"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // 4 is the floor: `abc` is refused under it, `abcd` is masked.
    let out = with_min("abc", "4", b"x abc y\n");
    assert_eq!(out.status.code(), Some(2), "abc is too short for 4");
    let out = with_min("abcd", "4", b"x abcd y\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "x [REDACTED] y\n");
}

/// A UTF-8 byte-order mark at the start of a secrets file made the first
/// secret unmaskable (the BOM became part of it).
#[test]
fn a_byte_order_mark_does_not_hide_the_first_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::write(
        &secrets,
        b"\xef\xbb\xbfFAKE-secret-value-1\r\nFAKE-secret-value-2\r\n",
    )
    .unwrap();
    let out = redact(
        &["--secrets-file".as_ref(), secrets.as_os_str()],
        b"FAKE-secret-value-1 FAKE-secret-value-2\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[REDACTED] [REDACTED]\n"
    );
}
