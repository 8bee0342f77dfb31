//! What transient git credentials cost.
//!
//! - `session/open_close`: bind the per-command Unix socket, start its thread,
//!   stop it and remove the socket (paid once per network git command).
//! - `session/helper_round_trip`: the helper side in-process: connect, send
//!   nonce + request, get the answer (paid once per credential `get`).
//! - `clone/*`: a clone of a one-commit repository from the local git HTTP
//!   test server, with the credential session and `vaultref git-credential`
//!   (a process git spawns) vs. a public repository needing no credential.
//!   The difference is the whole per-clone overhead of the design.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::SecretString;
use vaultref::git::credential::{self, CredentialSession};
use vaultref::git::{Git, GitSettings, Remote};
use vaultref::testing::git_server::{Access, GitServer};

fn session(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let remote = Remote::parse("https://git.example.com/Owner/Repo.git", false).unwrap();
    let token = SecretString::from("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEBENCH");
    let mut g = c.benchmark_group("session");
    g.bench_function("open_close", |b| {
        b.iter(|| {
            CredentialSession::open(dir.path(), "bench.sock", &remote, "x-access-token", &token)
                .unwrap()
        })
    });
    let s =
        CredentialSession::open(dir.path(), "rt.sock", &remote, "x-access-token", &token).unwrap();
    let socket = s.socket().to_string_lossy().into_owned();
    let nonce = s.nonce().to_owned();
    let env = move |k: &str| match k {
        credential::SOCKET_ENV => Some(socket.clone()),
        credential::NONCE_ENV => Some(nonce.clone()),
        _ => None,
    };
    let request = b"protocol=https\nhost=git.example.com\npath=Owner/Repo.git\n";
    g.bench_function("helper_round_trip", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(128);
            credential::helper("get", &env, &mut &request[..], &mut out).unwrap();
            assert!(!out.is_empty());
        })
    });
    g.finish();
}

fn clone(c: &mut Criterion) {
    let server = GitServer::start().unwrap();
    server.create_repo("Owner/Private").unwrap();
    server.create_repo("Owner/Public").unwrap();
    server.set_public("Owner/Public", true);
    let token = SecretString::from("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEBENCH");
    server.set_token("Owner/Private", Access::Read, &token);
    let root = tempfile::tempdir().unwrap();
    let mut settings = GitSettings::new(env!("CARGO_BIN_EXE_vaultref"));
    settings.allow_http = true;
    settings.tmp_dir = Some(root.path().to_owned());
    let git = Git::new(settings);
    let private = Remote::parse(&server.url("Owner/Private"), true).unwrap();
    let public = Remote::parse(&server.url("Owner/Public"), true).unwrap();

    let mut g = c.benchmark_group("clone");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let mut n = 0u64;
    g.bench_function("with_credential_helper", |b| {
        b.iter(|| {
            n += 1;
            let job = git.begin_job().unwrap();
            let dest = root.path().join(format!("p{n}"));
            job.prepare(&private, &dest, None, Some(&token)).unwrap();
            std::fs::remove_dir_all(dest).unwrap();
        })
    });
    g.bench_function("public_no_credential", |b| {
        b.iter(|| {
            n += 1;
            let job = git.begin_job().unwrap();
            let dest = root.path().join(format!("q{n}"));
            job.prepare(&public, &dest, None, None).unwrap();
            std::fs::remove_dir_all(dest).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, session, clone);
criterion_main!(benches);
