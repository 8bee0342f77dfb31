//! The streaming redactor with arbitrary input cut into arbitrary chunks:
//! the output is the same as one-shot redaction (spec/redaction.md §5,
//! chunking invariance), and the registered secret never survives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use vaultref::redact::RedactorBuilder;

const SECRET: &str = "FAKE-fuzz-secret-0123456789";

fuzz_target!(|data: &[u8]| {
    // The first bytes choose the cuts; the rest is the text.
    let (cuts, text) = data.split_at(data.len().min(8));
    let mut b = RedactorBuilder::new();
    b.add_secret(&SecretString::from(SECRET)).expect("long enough");
    let r = b.build().expect("builds");
    let whole = r.redact_bytes(text);
    let mut out = Vec::new();
    let mut s = r.stream();
    let mut at = 0;
    for &c in cuts {
        let end = (at + c as usize).min(text.len());
        s.push(&text[at..end], &mut out);
        at = end;
    }
    s.push(&text[at..], &mut out);
    s.finish(&mut out);
    assert_eq!(out, whole, "chunking changed the output");
    assert!(
        !out.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the registered secret survived"
    );
});
