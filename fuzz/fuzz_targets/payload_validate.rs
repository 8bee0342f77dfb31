//! The `codex_exec` validation pipeline on arbitrary bytes: no panic, errors
//! sorted and non-empty when invalid, and no error message or pointer holds
//! text a token rule matches (spec/codex-exec.md §5.2).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vaultref::payload::{ValidationOptions, validate};

fuzz_target!(|data: &[u8]| {
    match validate(data, &ValidationOptions::default()) {
        Ok(job) => {
            let _ = job.publish_auth_ref();
            let _ = job.repository_slug();
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in &errors {
                assert!(
                    vaultref::redact::find_tokens(&e.message).next().is_none(),
                    "a message holds a token"
                );
                assert!(
                    vaultref::redact::find_tokens(&e.pointer).next().is_none(),
                    "a pointer holds a token"
                );
            }
        }
    }
});
