//! Project chores, run as `cargo xtask <command>` (the alias is in
//! `.cargo/config.toml`). One file per command, as in rust-analyzer's xtask.

mod bench_backup;
mod bench_compare;
mod conformance;
mod fuzz;
mod load;
mod python;
mod vault;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("help") | None => {
            println!(
                "usage: cargo xtask <command>

commands:
  help
  conformance [ARGS]        run the conformance suite (vaultref-conformance --help)
  vault [--persistent | --cluster]  run OpenBao (or a 3-node cluster) for a person until Ctrl-C
  bench-compare [--mib N]   vaultref redact vs gitleaks and kingfisher
  bench-backup [--mib N]    codex backup/restore of an N MiB volume vs plain tar
  fuzz [--seconds N] [--target T]...  run the cargo fuzz targets of fuzz/ (nightly)
  load [--jobs M] [--levels 1,8,64]  a worker fleet vs the naive worker on a 3-node cluster, leader killed
  python [--bench] [PYTEST ARGS]  build the Python wheel (maturin), run its pytest suite"
            );
            ExitCode::SUCCESS
        }
        Some("conformance") => conformance::run(&args[1..]),
        Some("vault") => vault::run(&args[1..]),
        Some("bench-compare") => bench_compare::run(&args[1..]),
        Some("bench-backup") => bench_backup::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("python") => python::run(&args[1..]),
        Some("load") => load::run(&args[1..]),
        Some(other) => {
            eprintln!("unknown xtask command `{other}`; run `cargo xtask help`");
            ExitCode::from(2)
        }
    }
}
