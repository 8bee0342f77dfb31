//! `vaultref-adapter`: the reference implementation behind the conformance
//! protocol (`spec/protocol.md`). Run it through the harness:
//! `cargo xtask conformance` (the default `--impl`).

fn main() -> std::process::ExitCode {
    match vaultref_conformance::adapter::serve(None) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vaultref-adapter: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
