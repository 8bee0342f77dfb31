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
