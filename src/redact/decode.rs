//! The decoding view: registered secrets printed in an escaped spelling.
//!
//! Programs print a value through escapers that touch only some of its
//! characters: Python's `quote(s, safe="/")`, JavaScript's
//! `encodeURIComponent`, `json.dumps` with non-ASCII text, Go's HTML-safe
//! JSON (`\u003c \u003e \u0026`), an encoder escaping everything, `grep
//! --color` putting a colour code in the middle of a match. Each escaped
//! subset of a secret's characters is another spelling, so there are 2^n of
//! them for an n-character secret: they cannot be listed as literal forms
//! (`forms.rs` lists the spellings that escape *every* character the same
//! way). Instead, a line holding an escape is *decoded* into a view, the same
//! literal search runs over the view, and each match is mapped back to the
//! bytes of the line it came from, so the marker replaces exactly the printed
//! spelling.
//!
//! # What is decoded (`spec/redaction.md` §2.4)
//!
//! In one pass, left to right, each of these becomes the byte(s) it stands
//! for, and every other byte stands for itself:
//!
//! - `%XX`, two hex digits in either case: the byte `0xXX` (URL encoding);
//! - `\uXXXX`, four hex digits in either case, with a high surrogate joined
//!   to a following `\uXXXX` low surrogate: the character, as UTF-8 (JSON,
//!   JavaScript); a lone surrogate stays as written;
//! - `\/ \" \\ \b \f \n \r \t`: the character (JSON);
//! - `ESC [` parameter bytes, intermediate bytes, a final byte (an ANSI CSI
//!   sequence such as a colour code): nothing.
//!
//! Escapes are not decoded twice (`%2541` is `%41`, not `A`), and the view is
//! only looked at for registered secrets: the token rules run on the text as
//! written.
//!
//! # Which escapes
//!
//! An occurrence in the view that holds no byte an escape produced is an
//! occurrence in the segment too, already found by the plain search (an
//! escape producing nothing is an ANSI sequence, always taken). And an
//! occurrence holds only bytes of registered forms. So a segment is decoded
//! only when one of its escapes decodes to bytes that some registered form
//! holds: a JSON log full of `\"` and `\\` costs nothing when no secret has a
//! quote or a backslash (measured: 2.5x the CPU time of the same log without
//! escapes, before this rule).
//!
//! # Cost
//!
//! A segment is decoded only when `memchr3` finds `%`, `\` or ESC in it *and*
//! one of them starts an escape decoded here (`100% done` and `C:\ ` do not):
//! most log lines have none, and then this module costs one vectorised scan.
//! A decoded segment costs one pass, a map of two `u32` offsets per view
//! byte, and a second literal search over the view; the buffers are reused.

use zeroize::Zeroize;

/// The offset of the first byte in `text` that may start an escape decoded
/// here, if any.
pub(crate) fn may_hold_escapes(text: &[u8]) -> Option<usize> {
    memchr::memchr3(b'%', b'\\', 0x1b, text)
}

/// A decoded segment: `bytes[i]` came from `segment[src[i].0..src[i].1]`.
/// It may hold a decoded secret, so it is zeroized before reuse and when
/// dropped, and it never grows while holding one (a view is never longer
/// than its segment, so room for the whole segment is made while empty).
#[derive(Default)]
pub(crate) struct View {
    bytes: Vec<u8>,
    /// Offsets into the segment, which is at most `SEGMENT` bytes long.
    src: Vec<(u32, u32)>,
}

impl Drop for View {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl View {
    /// The decoded bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The range of the segment that view bytes `a..b` (non-empty) were
    /// decoded from.
    pub(crate) fn source(&self, a: usize, b: usize) -> (usize, usize) {
        (self.src[a].0 as usize, self.src[b - 1].1 as usize)
    }

    /// Decodes `segment` (at most `u32::MAX` bytes) into this view, dropping
    /// what it held, when it holds an escape that matters to `form_bytes`
    /// (the bytes registered forms hold; see the module docs). Returns
    /// whether it did: when not, searching the view would find nothing the
    /// search of the segment itself does not.
    pub(crate) fn decode(&mut self, segment: &[u8], form_bytes: &[bool; 256]) -> bool {
        debug_assert!(u32::try_from(segment.len()).is_ok());
        if !holds_escape(segment, form_bytes) {
            // `100% done`, `C:\ `, or only escapes no registered form could
            // hold (`\"` when no secret has a quote): no view to build.
            return false;
        }
        self.bytes.zeroize();
        self.src.clear();
        self.bytes.reserve(segment.len());
        self.src.reserve(segment.len());
        let line = segment;
        let mut decoded = false;
        let mut i = 0;
        while i < line.len() {
            let (len, out): (usize, Decoded) = match line[i] {
                b'%' => match hex(line, i + 1, 2) {
                    Some(v) => (3, Decoded::Byte(v as u8)),
                    None => (1, Decoded::Byte(b'%')),
                },
                b'\\' => json_escape(line, i),
                0x1b => match csi_len(line, i) {
                    Some(n) => (n, Decoded::Nothing),
                    None => (1, Decoded::Byte(0x1b)),
                },
                b => (1, Decoded::Byte(b)),
            };
            if len > 1 {
                decoded = true;
            }
            // Both fit: `i + len <= segment.len() <= u32::MAX`.
            let span = (i as u32, (i + len) as u32);
            match out {
                Decoded::Byte(b) => {
                    self.bytes.push(b);
                    self.src.push(span);
                }
                Decoded::Char(c) => {
                    let mut buf = [0u8; 4];
                    for &b in c.encode_utf8(&mut buf).as_bytes() {
                        self.bytes.push(b);
                        self.src.push(span);
                    }
                    buf.zeroize();
                }
                Decoded::Nothing => {}
            }
            i += len;
        }
        decoded
    }
}

/// Whether `segment` holds an escape that could be inside an occurrence: one
/// that decodes to bytes all of which some registered form holds, or an ANSI
/// sequence (it decodes to nothing, joining what is around it).
fn holds_escape(segment: &[u8], form_bytes: &[bool; 256]) -> bool {
    let held = |b: u8| form_bytes[usize::from(b)];
    memchr::memchr3_iter(b'%', b'\\', 0x1b, segment).any(|i| match segment[i] {
        b'%' => hex(segment, i + 1, 2).is_some_and(|v| held(v as u8)),
        b'\\' => match json_escape(segment, i) {
            (1, _) => false,
            (_, Decoded::Byte(b)) => held(b),
            (_, Decoded::Char(c)) => c.encode_utf8(&mut [0; 4]).bytes().all(held),
            (_, Decoded::Nothing) => true,
        },
        _ => csi_len(segment, i).is_some(),
    })
}

enum Decoded {
    Byte(u8),
    Char(char),
    Nothing,
}

/// The value of `n` hex digits at `line[at..]`, if they are there.
fn hex(line: &[u8], at: usize, n: usize) -> Option<u32> {
    let digits = line.get(at..at + n)?;
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = (d as char).to_digit(16)?;
        Some(acc * 16 + v)
    })
}

/// A JSON escape at `line[i]` (a backslash): its length and what it stands
/// for; a backslash that starts none stands for itself.
fn json_escape(line: &[u8], i: usize) -> (usize, Decoded) {
    let simple = |b: u8| (2, Decoded::Byte(b));
    match line.get(i + 1) {
        Some(b'/') => simple(b'/'),
        Some(b'"') => simple(b'"'),
        Some(b'\\') => simple(b'\\'),
        Some(b'b') => simple(0x08),
        Some(b'f') => simple(0x0c),
        Some(b'n') => simple(b'\n'),
        Some(b'r') => simple(b'\r'),
        Some(b't') => simple(b'\t'),
        Some(b'u') => {
            let Some(unit) = hex(line, i + 2, 4) else {
                return (1, Decoded::Byte(b'\\'));
            };
            if (0xD800..0xDC00).contains(&unit)
                && line.get(i + 6..i + 8) == Some(b"\\u")
                && let Some(low) = hex(line, i + 8, 4)
                && (0xDC00..0xE000).contains(&low)
            {
                let c = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                return match char::from_u32(c) {
                    Some(c) => (12, Decoded::Char(c)),
                    None => (1, Decoded::Byte(b'\\')),
                };
            }
            match char::from_u32(unit) {
                Some(c) => (6, Decoded::Char(c)),
                // A lone surrogate: not a character; left as written.
                None => (1, Decoded::Byte(b'\\')),
            }
        }
        _ => (1, Decoded::Byte(b'\\')),
    }
}

/// The length of an ANSI CSI sequence at `line[i]` (ESC): `ESC [`, parameter
/// bytes `0x30..=0x3F`, intermediate bytes `0x20..=0x2F`, one final byte
/// `0x40..=0x7E`.
fn csi_len(line: &[u8], i: usize) -> Option<usize> {
    if line.get(i + 1) != Some(&b'[') {
        return None;
    }
    let mut j = i + 2;
    while line.get(j).is_some_and(|b| (0x30..=0x3f).contains(b)) {
        j += 1;
    }
    while line.get(j).is_some_and(|b| (0x20..=0x2f).contains(b)) {
        j += 1;
    }
    line.get(j)
        .filter(|b| (0x40..=0x7e).contains(*b))
        .map(|_| j + 1 - i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(s: &str) -> (String, View) {
        let mut v = View::default();
        v.decode(s.as_bytes(), &[true; 256]);
        (String::from_utf8(v.bytes().to_vec()).unwrap(), v)
    }

    #[test]
    fn partial_encodings_decode_to_the_value() {
        assert_eq!(view("a%2Fb%2fc%zz%4").0, "a/b/c%zz%4");
        assert_eq!(view(r#"x\u0041\u00e9\/\"\\\n"#).0, "xAé/\"\\\n");
        assert_eq!(view(r"\ud83d\ude00 \ud83d \u12").0, "😀 \\ud83d \\u12");
        assert_eq!(view("\x1b[01;31m\x1b[Ksec\x1b[mret\x1b[K").0, "secret");
        assert_eq!(view("%2541").0, "%41", "decoded once");
    }

    #[test]
    fn matches_map_back_to_the_printed_spelling() {
        let line = "k=s%65cr\\u0065t!";
        let (text, v) = view(line);
        let a = text.find("secret").unwrap();
        let (s, e) = v.source(a, a + "secret".len());
        assert_eq!(&line[s..e], "s%65cr\\u0065t");
    }

    #[test]
    fn plain_lines_are_not_decoded() {
        let mut v = View::default();
        let all = [true; 256];
        assert!(!v.decode(b"100% sure \\ not an escape", &all));
        assert!(v.decode(b"a%41", &all));
        assert!(!v.decode(b"%4 \\q \x1b]", &all));
        // Only escapes to bytes no registered form holds: nothing to do.
        let mut alnum = [false; 256];
        for b in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" {
            alnum[usize::from(*b)] = true;
        }
        assert!(!v.decode(br#"{"msg":"said \"hi\" at C:\\work"} 50%25"#, &alnum));
        assert!(v.decode(br#"said \u0041"#, &alnum));
        assert!(v.decode(b"colour \x1b[1m!", &alnum));
    }
}
