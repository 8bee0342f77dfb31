//! `vaultref-conformance`: run the conformance suite against an implementation.
//!
//! Exit codes: 0 every result as expected; 1 otherwise; 2 the harness could
//! not run (bad arguments, the implementation cannot start, no scenario
//! selected), with the reason on stderr.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use vaultref_conformance::backend::BackendSpec;
use vaultref_conformance::expect::Expectations;
use vaultref_conformance::iut::IutCommand;
use vaultref_conformance::runner::{RunConfig, as_expected};
use vaultref_conformance::scenario::Profile;
use vaultref_conformance::{backend, report, scenarios};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// Docker (the default when a Docker engine answers).
    Container,
    /// A local `bao`/`vault` binary in dev mode.
    Process,
    /// Your own Vault: needs --vault-addr and --vault-token-file.
    External,
}

#[derive(Parser, Debug)]
#[command(
    name = "vaultref-conformance",
    version,
    about = "Check a secret-ref resolver/worker against the vaultref specification"
)]
struct Cli {
    /// The implementation under test (an executable speaking spec/protocol.md).
    #[arg(long = "impl", value_name = "BINARY")]
    implementation: Option<PathBuf>,
    /// An argument for the implementation (repeatable).
    #[arg(long = "impl-arg", value_name = "ARG", allow_hyphen_values = true)]
    impl_args: Vec<String>,
    /// Run only these profiles (repeatable): refs, payload, resolve, auth, lifecycle, worker, degraded, hostile, codex, ha.
    #[arg(long = "profile", value_name = "P")]
    profiles: Vec<String>,
    /// Where Vault comes from.
    #[arg(long, value_enum)]
    backend: Option<Backend>,
    /// Container image to run (`openbao/openbao:<v>`, `hashicorp/vault:<v>`); default: build a local OpenBao image.
    #[arg(long, value_name = "IMAGE")]
    vault_image: Option<String>,
    /// The `bao`/`vault` binary for the process backend and the local image.
    #[arg(long, value_name = "PATH")]
    bao: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS (by default the shared server, on
    /// the process and container backends, has a certificate from a CA made
    /// for the run, handed to the implementation as `vault.ca_cert`).
    #[arg(long)]
    plain_http: bool,
    /// External backend: Vault's address.
    #[arg(long, value_name = "URL")]
    vault_addr: Option<String>,
    /// External backend: a file holding a token that can manage mounts, policies and roles.
    #[arg(long, value_name = "FILE")]
    vault_token_file: Option<PathBuf>,
    /// External backend: the CA (PEM) of an `https://` Vault's certificate,
    /// trusted by the harness and handed to the implementation.
    #[arg(long, value_name = "FILE")]
    vault_ca_cert: Option<PathBuf>,
    /// Expected failures (JSON, see spec/protocol.md §4).
    #[arg(long = "expect", value_name = "FILE")]
    expect: Option<PathBuf>,
    /// Write report.json, junit.xml and report.md here.
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
    /// Run only scenarios whose id matches (glob; repeatable).
    #[arg(long = "filter", value_name = "GLOB")]
    filters: Vec<String>,
    /// The fixtures directory (default: the one in this source tree).
    #[arg(long, value_name = "DIR")]
    fixtures: Option<PathBuf>,
    /// Seconds to wait for each reply.
    #[arg(long, default_value_t = 20)]
    request_timeout: u64,
    /// Live scenarios run at once.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("vaultref-conformance: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The degraded scenario's own persistent server is started by the
    // project's test support, which finds its binary through VAULTREF_BAO:
    // hand `--bao` over. Sound here: no other thread exists yet (the
    // runtime is built below).
    if let Some(bao) = &cli.bao {
        // SAFETY: single-threaded at this point; nothing reads the
        // environment concurrently.
        unsafe { std::env::set_var("VAULTREF_BAO", bao) };
    }
    let fixtures = cli
        .fixtures
        .clone()
        .or_else(|| std::env::var_os("VAULTREF_FIXTURES").map(PathBuf::from))
        .unwrap_or_else(scenarios::default_fixtures);
    let catalogue = match scenarios::catalogue(&fixtures) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if cli.list {
        let run_wide = vaultref_conformance::runner::all_output_meta();
        for m in catalogue.iter().map(|s| &s.meta).chain([&run_wide]) {
            println!(
                "{}\t{}\t{}\t{}\t{}",
                m.id, m.profile, m.level, m.spec, m.title
            );
        }
        return ExitCode::SUCCESS;
    }
    let mut profiles = Vec::new();
    for p in &cli.profiles {
        match Profile::from_name(p) {
            Some(p) => profiles.push(p),
            None => return fail(format!("unknown profile `{p}`")),
        }
    }
    let Some(program) = cli.implementation.clone().or_else(default_impl) else {
        return fail("no --impl given and no vaultref-adapter next to this binary");
    };
    // The implementation runs in a temporary directory: resolve a relative
    // path (one with a `/`) now; a bare name is looked up on PATH.
    let program = if program.components().count() > 1 && program.is_relative() {
        match std::env::current_dir() {
            Ok(d) => d.join(program),
            Err(e) => return fail(e),
        }
    } else {
        program
    };
    let expectations = match &cli.expect {
        None => Expectations::default(),
        Some(f) => match std::fs::read_to_string(f)
            .map_err(|e| e.to_string())
            .and_then(|t| Expectations::parse(&t))
        {
            Ok(e) => e,
            Err(e) => return fail(format!("{}: {e}", f.display())),
        },
    };
    let backend = match backend_spec(&cli) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let config = RunConfig {
        iut: IutCommand {
            program,
            args: cli.impl_args.clone(),
            timeout: Duration::from_secs(cli.request_timeout.max(1)),
        },
        backend,
        profiles,
        filters: cli.filters.clone(),
        expectations,
        concurrency: cli.jobs,
        progress: true,
        stray_roots: vaultref_conformance::hygiene::StraySnapshot::default_roots(),
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    let outcome = match rt.block_on(vaultref_conformance::runner::run(catalogue, config)) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    print!("{}", report::console(&outcome));
    if let Some(dir) = &cli.report_dir {
        if let Err(e) = report::write_all(&outcome, dir) {
            return fail(format!("writing reports to {}: {e}", dir.display()));
        }
        println!("reports: {}", dir.display());
    }
    if as_expected(&outcome.results) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `vaultref-adapter` next to this executable (both are built together).
fn default_impl() -> Option<PathBuf> {
    let p = std::env::current_exe()
        .ok()?
        .with_file_name("vaultref-adapter");
    p.is_file().then_some(p)
}

fn backend_spec(cli: &Cli) -> Result<BackendSpec, String> {
    let chosen = cli.backend.unwrap_or_else(|| {
        if cli.vault_addr.is_some() {
            Backend::External
        } else if backend::container_engine_available() {
            Backend::Container
        } else {
            Backend::Process
        }
    });
    Ok(match chosen {
        Backend::External => BackendSpec::External {
            addr: cli
                .vault_addr
                .clone()
                .ok_or("--backend external needs --vault-addr")?,
            token_file: cli
                .vault_token_file
                .clone()
                .ok_or("--backend external needs --vault-token-file")?,
            ca_cert: cli.vault_ca_cert.clone(),
        },
        Backend::Process => BackendSpec::Process {
            binary: backend::find_binary(cli.bao.clone())?,
            tls: !cli.plain_http,
        },
        Backend::Container => BackendSpec::Container {
            tls: !cli.plain_http,
            image: cli.vault_image.clone(),
            binary: if cli.vault_image.is_some() {
                None
            } else {
                Some(backend::find_binary(cli.bao.clone())?)
            },
        },
    })
}
