//! `vaultref-broken-adapter --fault NAME`: the reference adapter with one
//! deliberate defect, used by the conformance crate's tests to prove that each
//! scenario can fail. Never use it for anything else.

use vaultref_conformance::adapter::{Fault, serve};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fault = match args.as_slice() {
        [flag, name] if flag == "--fault" => Fault::from_name(name),
        _ => None,
    };
    let Some(fault) = fault else {
        let names: Vec<&str> = Fault::ALL.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "usage: vaultref-broken-adapter --fault <{}>",
            names.join("|")
        );
        return std::process::ExitCode::from(2);
    };
    match serve(Some(fault)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vaultref-broken-adapter: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
