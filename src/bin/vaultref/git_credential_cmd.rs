//! `vaultref git-credential <get|store|erase>`: git's credential helper.
//!
//! git runs this (configured by the worker with `-c credential.helper=...`);
//! it is not meant to be run by hand. `get` asks the worker's credential
//! session named by the environment; `store` and `erase` do nothing, so git
//! can never make it persist a token. See `vaultref::git::credential`.

use std::io;
use std::process::ExitCode;

use clap::Args;
use vaultref::git::credential;

#[derive(Args)]
pub struct GitCredentialArgs {
    /// The operation git asks for: `get`, `store` or `erase`.
    #[arg(value_name = "OPERATION")]
    operation: String,
}

pub fn run(args: GitCredentialArgs) -> ExitCode {
    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    match credential::helper(
        &args.operation,
        &credential::process_env,
        &mut stdin,
        &mut stdout,
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // The message never holds the credential: it comes from I/O or
            // protocol errors, not from the answer.
            errln!("error: vaultref git-credential helper: {message}");
            ExitCode::from(1)
        }
    }
}
