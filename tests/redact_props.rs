//! Properties of the redaction engine (`spec/redaction.md` §6).
//!
//! - chunking invariance: any split into writes gives the one-shot output;
//! - no registered secret, nor any derived form, survives, whatever surrounds it;
//! - rule matches around a long line's segment boundary do not depend on the
//!   writes, and the second segment is searched as a line of its own;
//! - text with no secret passes byte for byte.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use proptest::prelude::*;
use secrecy::SecretString;
use tokio::io::AsyncWriteExt;
use vaultref::redact::engine::SEGMENT;
use vaultref::redact::forms::derived_forms;
use vaultref::redact::rules::RULE_REACH;
use vaultref::redact::{AsyncRedactWriter, RedactWriter, Redactor, RedactorBuilder};

fn build(secrets: &[String]) -> Redactor {
    let mut b = RedactorBuilder::new();
    for s in secrets {
        b.add_secret(&SecretString::from(s.clone()))
            .expect("generated secrets are long enough");
    }
    b.build().expect("builds")
}

fn stream(r: &Redactor, input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = r.stream();
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    for c in cuts {
        s.push(&input[at..c.max(at)], &mut out);
        at = c.max(at);
    }
    s.push(&input[at..], &mut out);
    s.finish(&mut out);
    out
}

/// A secret: 8 to 40 characters, some of them awkward for encoders.
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_~+/=%\"\\\\ .-]{8,40}"
}

/// A multi-line secret: 2-4 lines, some short.
fn multi_secret() -> impl Strategy<Value = String> {
    prop::collection::vec("[A-Za-z0-9+/=]{1,20}", 2..5).prop_map(|ls| {
        let mut s = ls.join("\n");
        if s.chars().count() < 8 {
            s.push_str("PADPADPAD");
        }
        s
    })
}

/// Log-ish text made of fragments likely to interact with rules and secrets.
fn log_text(secrets: Vec<String>) -> impl Strategy<Value = String> {
    let mut frags: Vec<BoxedStrategy<String>> = vec![
        "[a-z0-9 ]{0,12}".boxed(),
        Just("\n".to_string()).boxed(),
        Just("\r\n".to_string()).boxed(),
        Just("\r".to_string()).boxed(),
        Just("token=".to_string()).boxed(),
        Just("Authorization: Bearer ".to_string()).boxed(),
        Just("https://user:".to_string()).boxed(),
        Just("@host/".to_string()).boxed(),
        Just("ghp_".to_string()).boxed(),
        Just("FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0000".to_string()).boxed(),
        Just("-----BEGIN RSA PRIVATE KEY-----".to_string()).boxed(),
        Just("-----END RSA PRIVATE KEY-----".to_string()).boxed(),
        Just("password=".to_string()).boxed(),
        Just("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_string()).boxed(),
        Just("é€".to_string()).boxed(),
        Just("s.FAKEfake0123456789ABCDEF".to_string()).boxed(),
        Just("AKIAFAKEFAKEFAKE1234".to_string()).boxed(),
        Just("hvs.CAESIFAKEFAKEFAKEFAKEFAKE".to_string()).boxed(),
    ];
    for s in secrets {
        let b64 = STANDARD.encode(format!("x-access-token:{s}"));
        let half = s.len() / 2;
        let prefix = s.get(..half).unwrap_or("").to_string();
        frags.push(Just(s).boxed());
        frags.push(Just(b64).boxed());
        frags.push(Just(prefix).boxed());
    }
    prop::collection::vec(
        prop::sample::select((0..frags.len()).collect::<Vec<_>>()),
        0..40,
    )
    .prop_flat_map(move |idx| {
        idx.into_iter()
            .map(|i| frags[i].clone())
            .collect::<Vec<_>>()
    })
    .prop_map(|parts| parts.concat())
}

fn case() -> impl Strategy<Value = (Vec<String>, String, Vec<usize>)> {
    (
        prop::collection::vec(secret(), 0..3),
        prop::collection::vec(multi_secret(), 0..2),
    )
        .prop_flat_map(|(mut single, multi)| {
            single.extend(multi);
            let secrets = single.clone();
            (
                Just(secrets),
                log_text(single),
                prop::collection::vec(0usize..2000, 0..12),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Any split into writes gives exactly the one-shot output.
    #[test]
    fn chunking_invariance((secrets, text, cuts) in case()) {
        let r = build(&secrets);
        let one = r.redact_bytes(text.as_bytes());
        let many = stream(&r, text.as_bytes(), &cuts);
        prop_assert_eq!(String::from_utf8_lossy(&many), String::from_utf8_lossy(&one));
        // Byte at a time too.
        let all: Vec<usize> = (0..text.len()).collect();
        let bytes = stream(&r, text.as_bytes(), &all);
        prop_assert_eq!(bytes, one);
    }

    /// No registered secret nor derived form survives, whatever surrounds it,
    /// however the stream is cut.
    #[test]
    fn no_secret_survives(
        s in secret(),
        before in "[a-z0-9 :=/@\n]{0,10}",
        after in "[a-z0-9 :=/@\n]{0,10}",
        pre in "[a-z0-9:]{0,3}",
        cuts in prop::collection::vec(0usize..400, 0..8),
    ) {
        let r = build(std::slice::from_ref(&s));
        let forms = derived_forms(&s, &[]);
        // Raw, each derived form, and base64 of the secret inside other bytes.
        let mut texts: Vec<String> = forms
            .iter()
            .map(|f| format!("{before}{}{after}", String::from_utf8_lossy(f)))
            .collect();
        for e in [&STANDARD, &URL_SAFE] {
            texts.push(format!("{before}{}{after}", e.encode(format!("{pre}{s}{after}"))));
        }
        for t in &texts {
            let out = stream(&r, t.as_bytes(), &cuts);
            let out = String::from_utf8_lossy(&out);
            prop_assert!(!out.contains(s.as_str()), "raw secret in {:?}", out);
            for f in &forms {
                let f = String::from_utf8_lossy(f);
                prop_assert!(!out.contains(f.as_ref()), "form {:?} in {:?}", f, out);
            }
        }
    }

    /// A secret printed in a random guaranteed spelling (spec §2.4: each
    /// character as itself, percent-escaped in either case or `\u`-escaped,
    /// a colour code anywhere inside) never survives, however the stream is
    /// cut, and the one-shot and streamed outputs agree.
    #[test]
    fn no_escaped_spelling_survives(
        s in "[A-Za-z0-9_/+&<>é -]{8,30}",
        how in prop::collection::vec(0u8..4, 30),
        ansi_at in prop::option::of(1usize..29),
        before in "[a-z0-9 :=]{0,10}",
        after in "[a-z0-9 :=]{0,10}",
        cuts in prop::collection::vec(0usize..400, 0..8),
    ) {
        let r = build(std::slice::from_ref(&s));
        let mut spelled = String::new();
        for (i, c) in s.chars().enumerate() {
            if ansi_at == Some(i) {
                spelled.push_str("\x1b[01;31m\x1b[K");
            }
            let mut buf = [0u8; 4];
            match how[i % how.len()] {
                0 => spelled.push(c),
                1 => c.encode_utf8(&mut buf).bytes().for_each(|b| spelled.push_str(&format!("%{b:02X}"))),
                2 => c.encode_utf8(&mut buf).bytes().for_each(|b| spelled.push_str(&format!("%{b:02x}"))),
                _ => c.encode_utf16(&mut [0u16; 2]).iter().for_each(|u| spelled.push_str(&format!("\\u{u:04x}"))),
            }
        }
        let text = format!("{before}{spelled}{after}\n");
        let one = r.redact_bytes(text.as_bytes());
        let out = stream(&r, text.as_bytes(), &cuts);
        prop_assert_eq!(&out, &one);
        let out = String::from_utf8_lossy(&out);
        prop_assert!(!out.contains(spelled.as_str()), "spelling {:?} in {:?}", spelled, out);
        prop_assert!(out.contains("[REDACTED"), "nothing masked in {:?}", out);
    }

    /// A secret inside base64 text wrapped across lines (`base64`, MIME,
    /// PEM: spec §2.5), at any alignment, any wrap width, any line end, fed
    /// in random chunks: its inner base64 form never survives, even with the
    /// line ends taken out of the output.
    #[test]
    fn no_wrapped_base64_spelling_survives(
        s in "[A-Za-z0-9_/+&<>-]{8,40}",
        prefix in prop::collection::vec(any::<u8>(), 0..60),
        suffix in prop::collection::vec(any::<u8>(), 0..60),
        width in 16usize..100,
        end in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        url_safe in any::<bool>(),
        cuts in prop::collection::vec(0usize..600, 0..8),
    ) {
        let r = build(std::slice::from_ref(&s));
        let engine = if url_safe { &URL_SAFE } else { &STANDARD };
        let mut data = prefix.clone();
        data.extend_from_slice(s.as_bytes());
        data.extend_from_slice(&suffix);
        let encoded = engine.encode(&data);
        let wrapped: Vec<&str> = encoded
            .as_bytes()
            .chunks(width)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let text = format!("$ base64 config.json{end}{}{end}$ echo done{end}", wrapped.join(end));
        let one = r.redact_bytes(text.as_bytes());
        let out = stream(&r, text.as_bytes(), &cuts);
        prop_assert_eq!(&out, &one);
        // The characters the secret alone determines (forms.rs): at most
        // one on each side may depend on a neighbour and stay.
        let k = prefix.len() % 3;
        let mut aligned = vec![0u8; k];
        aligned.extend_from_slice(s.as_bytes());
        let enc = engine.encode(&aligned);
        let inner = &enc[(8 * k).div_ceil(6)..(8 * (k + s.len())) / 6];
        let joined: String = String::from_utf8_lossy(&out).chars().filter(|c| *c != '\n' && *c != '\r').collect();
        prop_assert!(!joined.contains(inner), "inner form {:?} in {:?}", inner, joined);
    }

    /// Text without secrets or token shapes passes byte for byte.
    #[test]
    fn clean_text_unchanged(
        text in "[a-z0-9 ,.\n\r-]{0,300}",
        cuts in prop::collection::vec(0usize..400, 0..8),
    ) {
        // Registered secrets use upper-case letters, which the text lacks.
        let r = build(&["FAKE-SECRET-VALUE-1".to_string(), "ZZZZ\nYYYY-MULTI".to_string()]);
        prop_assert_eq!(stream(&r, text.as_bytes(), &cuts), text.as_bytes().to_vec());
    }
}

proptest! {
    // Each case redacts a line of over 256 KiB three ways. 384 cases (about
    // 20 s in a debug build): a defect that one case in a hundred hits is
    // caught before CI with odds of 49 in 50 (96 cases let session 11's
    // marker defect through to CI, where a new seed found it).
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    /// Rule keywords around the 256 KiB segment boundary of a long line
    /// (spec §4.1), overlapping each other in every way the fragments
    /// allow, in any case: the output does not depend on how the line is
    /// cut into writes (a forced cut at the boundary when the line end
    /// comes later), and a credential's value written after the boundary
    /// is masked whenever it is masked in that segment as a line alone.
    #[test]
    fn rules_at_the_segment_boundary_do_not_depend_on_the_writes(
        back in 0usize..48,
        parts in prop::collection::vec(prop::sample::select(vec![
            "npm", "NPM_", "_PWD=", "_pwd=", "api", "API", "api-", "api_", "Key=", "--",
            "token ", "TOKEN=", "glpat-", "AIz", "AIza", "pi_key=", "ghp_", "access",
            "-----BEGIN", " RSA PRIVATE KEY-----", "password", "=", ":", " ", "x",
        ]), 0..8),
        tail in prop::sample::select(vec![
            "NPM_PWD=", "api_key=", "--token ", "password=", "Secret_Key: ", "",
        ]),
        cuts in prop::collection::vec(0usize..(SEGMENT + 3 * RULE_REACH), 0..6),
    ) {
        let r = Redactor::builtin();
        let value = "FAKEfake0123456789abcdef";
        let head: String = parts.concat();
        let line = format!(
            "{}{head}{tail}{value} {}\nnext line\n",
            "x".repeat(SEGMENT - back),
            "y".repeat(3 * RULE_REACH)
        );
        let one = r.redact_bytes(line.as_bytes());
        // Writes ending past the boundary but before the line end force
        // a cut there; the random ones fall anywhere.
        let mut at = cuts;
        at.push(SEGMENT + 2 * RULE_REACH);
        let many = stream(&r, line.as_bytes(), &at);
        prop_assert!(many == one, "{:?}{:?}: the writes changed the output", head, tail);
        if head.len() + tail.len() >= back {
            // The value is after the boundary, where the line's second
            // segment is searched as a line of its own would be (but for
            // `^` and `\b` at its first byte, which only ever match less
            // in context, and the values here are also found without
            // them): what is masked there on its own is masked here.
            let rest = &line[SEGMENT..line.find('\n').unwrap_or(line.len())];
            if !r.redact(rest).contains(value) {
                prop_assert!(
                    !String::from_utf8_lossy(&one).contains(value),
                    "{:?}{:?}: the value survived at the boundary", head, tail
                );
            }
        }
    }
}

#[test]
fn writer_matches_one_shot() {
    let r = build(&["FAKE-s3cret-value".to_string()]);
    let text = "a FAKE-s3cret-value b\nghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0000\ntail";
    let mut w = RedactWriter::new(&r, Vec::new());
    for c in text.as_bytes().chunks(3) {
        std::io::Write::write_all(&mut w, c).unwrap();
    }
    let out = w.finish().unwrap();
    assert_eq!(out, r.redact_bytes(text.as_bytes()));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "a [REDACTED] b\n[REDACTED:github-pat]\ntail"
    );
}

#[tokio::test]
async fn async_writer_matches_one_shot() {
    let r = build(&["FAKE-s3cret-value".to_string()]);
    let text = "a FAKE-s3cret-value b\nAuthorization: token FAKEFAKE\nend";
    let mut w = AsyncRedactWriter::new(&r, Vec::new());
    for c in text.as_bytes().chunks(5) {
        w.write_all(c).await.unwrap();
    }
    w.shutdown().await.unwrap();
    let out = w.into_inner();
    assert_eq!(out, r.redact_bytes(text.as_bytes()));
    assert!(!String::from_utf8(out).unwrap().contains("FAKE"));
}
