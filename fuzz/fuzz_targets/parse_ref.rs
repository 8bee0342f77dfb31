//! The ref parser and the policy check on arbitrary bytes: no panic; an
//! accepted ref is its only spelling (it prints back to the same bytes and
//! parses to the same ref), and an error's offset lies inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vaultref::{RefPolicy, ScopeContext, SecretRef};

fuzz_target!(|data: &[u8]| {
    match SecretRef::parse_bytes(data, 512) {
        Ok(r) => {
            let printed = r.to_string();
            assert_eq!(printed.as_bytes(), data, "an accepted ref has one spelling");
            assert_eq!(SecretRef::parse(&printed).ok(), Some(r));
        }
        Err(e) => {
            if let Some(at) = e.offset() {
                assert!(at <= data.len(), "offset {at} past the input");
            }
        }
    }
    let policy = RefPolicy::default()
        .with_scopes(["moonmind/repos/{repository}/**"])
        .expect("a valid scope");
    let ctx = ScopeContext {
        repository: Some("Acme/Api".into()),
        worker_id: Some("w".into()),
    };
    let _ = policy.check_bytes(data, &ctx);
});
