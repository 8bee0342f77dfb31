//! The KV v2 answer parser on arbitrary bodies and statuses: no panic, and
//! every outcome is a value or an error with a code of the catalogue whose
//! message quotes nothing of the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vaultref::SecretRef;

fuzz_target!(|data: &[u8]| {
    let Some((&s, body)) = data.split_first() else {
        return;
    };
    let status = [200u16, 404, 403, 500, 429, 307][usize::from(s) % 6];
    let r = SecretRef::parse("vault://kv/a/b#token").expect("a valid ref");
    if let Err(e) = vaultref::vault::fuzzing::kv2_interpret(status, body, &r) {
        assert!(!e.code().as_str().is_empty());
    }
});
