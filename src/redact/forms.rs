//! The derived forms of a registered secret (`spec/redaction.md` §2).
//!
//! A secret leaks in more spellings than its own: git sends it base64-encoded
//! in a Basic `Authorization` header, HTTP traces print it URL-encoded, JSON
//! loggers escape it. Each form listed here is masked like the raw value.
//!
//! Base64 is the subtle one. When the secret sits inside a longer encoded
//! string (`user:secret`, a JSON blob), its bytes start at one of three byte
//! alignments, and the characters that straddle its first and last byte depend
//! on the neighbours. So for each alignment `k` (0, 1, 2 bytes of prefix) this
//! module derives the *inner* form, the characters fully determined by the
//! secret alone, and the *tail* forms, inner plus the final partial character
//! as an encoder emits it when the secret ends the data, with and without `=`
//! padding. The characters that also depend on a neighbour are the price: up
//! to one character on each side of the inner form may stay visible, which
//! carries at most 4 bits of the secret each.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use zeroize::Zeroizing;

/// Bytes left unescaped by URL encoding: RFC 3986 unreserved characters.
const URL_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Every form of `secret` to mask, raw first, without duplicates. Forms
/// shorter than 4 bytes are dropped (they can only come from inner base64 of a
/// secret of 1 or 2 bytes, which the minimum length already refuses).
///
/// `usernames` are the user names whose `base64(user:secret)` (git's Basic
/// header) is masked whole; the alignment forms already hide the secret part
/// of that header for any user name.
pub fn derived_forms(secret: &str, usernames: &[String]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut forms: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut add = |f: Vec<u8>| {
        let f = Zeroizing::new(f);
        if f.len() >= 4 && !forms.iter().any(|g| **g == *f) {
            forms.push(f);
        }
    };
    let raw = secret.as_bytes();
    add(raw.to_vec());

    for engine in [&STANDARD, &URL_SAFE] {
        for k in 0..3usize {
            let mut data = Zeroizing::new(vec![0u8; k]);
            data.extend_from_slice(raw);
            let enc = Zeroizing::new(engine.encode(&*data));
            // Characters before `first` carry bits of the k prefix bytes.
            let first = (8 * k).div_ceil(6);
            // Characters before `full` are determined by bytes alone, with no
            // bits from whatever follows the secret.
            let full = (8 * (k + raw.len())) / 6;
            let b = enc.as_bytes();
            add(b[first..full].to_vec());
            let unpadded = enc.trim_end_matches('=').len();
            add(b[first..unpadded].to_vec());
            add(b[first..].to_vec());
        }
        for user in usernames {
            let mut data = Zeroizing::new(user.as_bytes().to_vec());
            data.push(b':');
            data.extend_from_slice(raw);
            let enc = Zeroizing::new(engine.encode(&*data));
            add(enc.as_bytes().to_vec());
            add(enc.trim_end_matches('=').as_bytes().to_vec());
        }
    }

    let url = Zeroizing::new(utf8_percent_encode(secret, URL_ESCAPE).to_string());
    add(url.as_bytes().to_vec());
    add(url.to_ascii_lowercase_escapes());

    let json = Zeroizing::new(serde_json::to_string(secret).unwrap_or_default());
    if json.len() >= 2 {
        add(json.as_bytes()[1..json.len() - 1].to_vec());
    }

    // Hex dumps (`xxd -p`, `od`, debug prints of bytes), in either case.
    for digits in [b"0123456789abcdef", b"0123456789ABCDEF"] {
        let hex: Vec<u8> = raw
            .iter()
            .flat_map(|b| [digits[usize::from(b >> 4)], digits[usize::from(b & 15)]])
            .collect();
        add(hex);
    }
    forms
}

/// Lower-case hex in percent escapes (`%2f`), which some encoders emit.
trait LowerEscapes {
    fn to_ascii_lowercase_escapes(&self) -> Vec<u8>;
}

impl LowerEscapes for str {
    fn to_ascii_lowercase_escapes(&self) -> Vec<u8> {
        let mut out = self.as_bytes().to_vec();
        let mut i = 0;
        while i < out.len() {
            if out[i] == b'%' && i + 2 < out.len() {
                out[i + 1] = out[i + 1].to_ascii_lowercase();
                out[i + 2] = out[i + 2].to_ascii_lowercase();
                i += 3;
            } else {
                i += 1;
            }
        }
        out
    }
}

/// Whether `line` is PEM armour (`-----BEGIN X-----`, `-----END X-----`): such
/// lines of a multi-line secret are not registered on their own, because they
/// are public and would mask every certificate in the log.
pub fn is_pem_armour(line: &str) -> bool {
    let t = line.trim();
    t.starts_with("-----BEGIN") || t.starts_with("-----END")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms(s: &str) -> Vec<String> {
        derived_forms(s, &["x-access-token".to_string()])
            .iter()
            .map(|f| String::from_utf8(f.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn base64_alignments_appear_inside_longer_encodings() {
        let secret = "FAKEsecret-0123456789";
        let fs = forms(secret);
        for prefix in ["", "a", "ab", "abc", "x-access-token:", "user:"] {
            for suffix in ["", "z", "zz", "zzz", "\n"] {
                let data = format!("{prefix}{secret}{suffix}");
                for engine in [&STANDARD, &URL_SAFE] {
                    let enc = engine.encode(data.as_bytes());
                    assert!(
                        fs.iter().any(|f| enc.contains(f.as_str())),
                        "{prefix:?}+secret+{suffix:?} -> {enc} has no form"
                    );
                }
            }
        }
    }

    #[test]
    fn tail_form_covers_the_basic_header_secret_part() {
        let secret = "ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0000";
        let fs = forms(secret);
        let header = STANDARD.encode(format!("someone:{secret}"));
        // The longest form found in the header ends at its end: nothing of the
        // secret part stays visible.
        let best = fs
            .iter()
            .filter(|f| header.ends_with(f.as_str()))
            .map(|f| f.len())
            .max()
            .unwrap();
        assert!(header.len() - best <= "someone:".len() * 4 / 3 + 1);
        // The known user name's header is masked whole.
        let whole = STANDARD.encode(format!("x-access-token:{secret}"));
        assert!(fs.contains(&whole));
    }

    #[test]
    fn url_and_json_forms() {
        let fs = forms("pa ss/wörd\"\\x");
        assert!(fs.contains(&"pa%20ss%2Fw%C3%B6rd%22%5Cx".to_string()));
        assert!(fs.contains(&"pa%20ss%2fw%c3%b6rd%22%5cx".to_string()));
        assert!(fs.contains(&r#"pa ss/wörd\"\\x"#.to_string()));
        assert!(fs.contains(&("7061207373".to_string() + "2f77c3b67264225c78")));
        assert!(fs.contains(&("7061207373".to_string() + "2F77C3B67264225C78")));
        assert_eq!(fs[0], "pa ss/wörd\"\\x");
        let n = fs.len();
        let mut dedup = fs.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), n);
    }

    #[test]
    fn armour_lines() {
        assert!(is_pem_armour("-----BEGIN OPENSSH PRIVATE KEY-----"));
        assert!(is_pem_armour("  -----END RSA PRIVATE KEY-----\r"));
        assert!(!is_pem_armour("MIIEowIBAAKCAQEA"));
    }
}
