//! Base64 wrapped across lines (`spec/redaction.md` §2.5): the joining view.
//!
//! `base64 FILE` (76 columns), MIME bodies (76), PEM and `openssl base64`
//! (64) print long base64 text as lines of a fixed width. A registered
//! secret's base64 forms (forms.rs) then appear with line ends inside them,
//! at places that depend on what was encoded before the secret, so they
//! cannot be listed as forms. Instead, consecutive lines that can be the
//! lines of one wrapped text are *joined*: their contents without the line
//! ends between them make a view, the view is searched for the single-line
//! forms, and each occurrence is mapped back to the bytes that print it
//! (line ends inside included).
//!
//! # Which lines join
//!
//! A line *continues* into the next one when it is 16 to 1024 bytes of the
//! base64 alphabets (standard and URL-safe, `=` included) and the next line,
//! after exactly one line end (`\n`, `\r\n` or `\r`), is 1 to 1024 bytes of
//! the same. A line is a whole line: the rest of a line longer than a
//! segment, after the stream cut it (`start_mid_line`), is none. No width is
//! required to repeat: joining more than a wrapper
//! would costs only the search (an occurrence must still be a registered
//! form, byte for byte), and it covers every wrap width at once.
//!
//! # Streaming
//!
//! An occurrence that starts before a line end reaches at most the longest
//! form's length of content past it. So the stream holds back the trailing
//! lines that continue ([`holdback`]), until they hold that much content
//! (at most one line more), until the next line arrives;
//! and a round searches the joined lines as far as the complete lines it
//! has (look-ahead), keeping the occurrences that start in the part it
//! decides. An occurrence that runs into held lines becomes a region that
//! the next round goes on masking, as for a forced cut.

use zeroize::Zeroizing;

use super::literal::LiteralSet;

/// The shortest line that continues into the next.
pub const MIN_WIDTH: usize = 16;
/// The longest line that continues into the next (wrapped base64 is short
/// lines; a long one is searched as itself).
pub const MAX_WIDTH: usize = 1024;

/// Bytes of the standard and URL-safe base64 alphabets, `=` included.
const B64: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'-' | b'_');
        b += 1;
    }
    t
};

fn all_b64(line: &[u8]) -> bool {
    line.iter().all(|&b| B64[usize::from(b)])
}

/// Whether the 16 bytes before a line end are base64: a space among them
/// (nearly every log line) is found with two word tests, no table.
#[inline]
fn tail_is_b64(tail: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has_space = |w: u64| {
        let x = w ^ (LO * u64::from(b' '));
        (x.wrapping_sub(LO) & !x & HI) != 0
    };
    let (a, b) = tail.split_at(8);
    let w1 = u64::from_le_bytes(a.try_into().unwrap_or([b' '; 8]));
    let w2 = u64::from_le_bytes(b[..8].try_into().unwrap_or([b' '; 8]));
    !has_space(w1) && !has_space(w2) && all_b64(tail)
}

/// Whether `line` (without its line end) continues into the next line.
fn continues(line: &[u8]) -> bool {
    (MIN_WIDTH..=MAX_WIDTH).contains(&line.len()) && all_b64(line)
}

/// The line ending just before `end` (a line start, `end > 0`): its start
/// and the length of its line end (1, or 2 for `\r\n`).
fn line_before(p: &[u8], end: usize) -> (usize, usize) {
    let term = if end >= 2 && p[end - 2] == b'\r' && p[end - 1] == b'\n' {
        2
    } else {
        1
    };
    let body_end = end - term;
    let start = memchr::memrchr2(b'\n', b'\r', &p[..body_end]).map_or(0, |i| i + 1);
    (start, term)
}

/// Moves `r` (a line start in `p`) back over the trailing lines that
/// continue into the next, until the held lines hold `reach` bytes of
/// content (an occurrence starting before the new `r` then ends inside
/// them): those lines wait for the lines after them. `start_mid_line`: `p`
/// starts inside a line (after a forced cut), so its first line is no line.
pub fn holdback(p: &[u8], mut r: usize, reach: usize, start_mid_line: bool) -> usize {
    let mut held = 0;
    while r > 0 && held < reach {
        let (start, term) = line_before(p, r);
        if (start == 0 && start_mid_line) || !continues(&p[start..r - term]) {
            break;
        }
        held += r - term - start;
        r = start;
    }
    r
}

/// The joined view of one run of lines, and where each line's bytes came
/// from, for mapping occurrences back.
#[derive(Default)]
pub struct Joined {
    /// The lines' contents, concatenated. Holds text: zeroized.
    bytes: Zeroizing<Vec<u8>>,
    /// Per line: (offset in `bytes`, offset in the source).
    lines: Vec<(usize, usize)>,
}

impl Joined {
    /// Appends `bytes`; a buffer outgrown is wiped, not left in freed
    /// memory (it holds text).
    fn push(&mut self, bytes: &[u8]) {
        let need = self.bytes.len() + bytes.len();
        if need > self.bytes.capacity() {
            let mut grown = Zeroizing::new(Vec::with_capacity(need.max(2 * self.bytes.capacity())));
            grown.extend_from_slice(&self.bytes);
            // The old buffer is wiped as it is dropped (Zeroizing).
            self.bytes = grown;
        }
        self.bytes.extend_from_slice(bytes);
    }

    /// The source offset of view byte `v`.
    fn source(&self, v: usize) -> usize {
        let i = self.lines.partition_point(|&(at, _)| at <= v) - 1;
        let (at, src) = self.lines[i];
        src + (v - at)
    }
}

/// Every occurrence of a form of `literals` that crosses a line end inside
/// a run of joined lines of `p[..avail]` (`avail`: where the complete lines
/// end) and starts before `r`, as source ranges (line ends inside included).
/// `start_mid_line` as for [`holdback`]. `scratch` is reused between calls.
pub fn find(
    p: &[u8],
    avail: usize,
    r: usize,
    start_mid_line: bool,
    literals: &LiteralSet,
    scratch: &mut Joined,
    out: &mut Vec<(usize, usize)>,
) {
    // One pass over the line ends; a line is looked at only when the 16
    // bytes before its end are base64 (most log lines fail there).
    // Text without `\r` (most logs) is walked by `\n` alone, the faster
    // search.
    let hay = &p[..avail];
    let ends: Box<dyn Iterator<Item = usize>> = if memchr::memchr(b'\r', hay).is_some() {
        Box::new(memchr::memchr2_iter(b'\n', b'\r', hay))
    } else {
        Box::new(memchr::memchr_iter(b'\n', hay))
    };
    let mut line_start = 0;
    let mut skip_to = 0;
    for le in ends {
        let at = line_start;
        line_start = le + 1;
        if at >= r {
            break;
        }
        if at < skip_to
            || (at == 0 && start_mid_line)
            || le - at < MIN_WIDTH
            || !tail_is_b64(&p[le - MIN_WIDTH..le])
        {
            continue;
        }
        if !continues(&p[at..le]) {
            continue;
        }
        // A run: this line, and every line joined after it.
        scratch.bytes.clear();
        scratch.lines.clear();
        let mut line = (at, le);
        let mut next = next_line(p, le, avail);
        loop {
            scratch.lines.push((scratch.bytes.len(), line.0));
            scratch.push(&p[line.0..line.1]);
            if next >= avail || !continues(&p[line.0..line.1]) {
                break;
            }
            let e = memchr::memchr2(b'\n', b'\r', &p[next..avail]).map_or(avail, |i| next + i);
            if !(1..=MAX_WIDTH).contains(&(e - next)) || !all_b64(&p[next..e]) {
                break;
            }
            line = (next, e);
            next = next_line(p, e, avail);
        }
        if scratch.lines.len() > 1 {
            let mut found = Vec::new();
            literals.find(&scratch.bytes, scratch.bytes.len(), &mut found);
            for (a, b) in found {
                let (s, e) = (scratch.source(a), scratch.source(b - 1) + 1);
                // Only what crosses a line end: the rest is the plain search's.
                if s < r && p[s..e].iter().any(|&c| c == b'\n' || c == b'\r') {
                    out.push((s, e));
                }
            }
        }
        skip_to = next;
    }
    // The view held text: wiped, not just emptied.
    zeroize::Zeroize::zeroize(&mut *scratch.bytes);
}

/// The start of the line after the one ending at `le` (one line end, `\r\n`
/// counted as one).
fn next_line(p: &[u8], le: usize, avail: usize) -> usize {
    if le >= avail {
        return avail;
    }
    if p[le] == b'\r' && le + 1 < avail && p[le + 1] == b'\n' {
        le + 2
    } else {
        le + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(forms: &[&str]) -> LiteralSet {
        LiteralSet::new(
            forms
                .iter()
                .map(|f| Zeroizing::new(f.as_bytes().to_vec()))
                .collect(),
        )
    }

    fn wrap(text: &str, width: usize, end: &str) -> String {
        text.as_bytes()
            .chunks(width)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(end)
    }

    /// [`find`] over the whole of `text`, complete, for `forms`.
    fn find_in(text: &str, forms: &[&str], start_mid_line: bool) -> Vec<(usize, usize)> {
        let p = text.as_bytes();
        let mut out = Vec::new();
        find(
            p,
            p.len(),
            p.len(),
            start_mid_line,
            &set(forms),
            &mut Joined::default(),
            &mut out,
        );
        out
    }

    #[test]
    fn an_occurrence_across_wrapped_lines_maps_to_the_printed_bytes() {
        let form = "RkFLRS13cmFwcGVkLXNlY3JldC12YWx1ZS0wMDAx";
        let body = format!("QUJDREVGR0hJSktMTU5PUFFSU1RVVldY{form}WVphYmNkZWZnaGlq");
        for end in ["\n", "\r\n", "\r"] {
            for width in [16, 60, 64, 76] {
                let text = format!("{}{end}", wrap(&body, width, end));
                let out = find_in(&text, &[form], false);
                let start = body.find(form).unwrap();
                let crosses = start / width != (start + form.len() - 1) / width;
                assert_eq!(out.len(), usize::from(crosses), "{width} {end:?}");
                for (s, e) in out {
                    let printed: String = text[s..e]
                        .chars()
                        .filter(|c| !"\r\n".contains(*c))
                        .collect();
                    assert_eq!(printed, form);
                }
            }
        }
    }

    #[test]
    fn lines_that_are_not_base64_or_too_short_do_not_join() {
        let form = "RkFLRS13cmFwcGVkLXNlY3JldA";
        // The two lines below join.
        assert_eq!(
            find_in("RkFLRS13cmFwcGVk\nLXNlY3JldA\n", &[form], false).len(),
            1
        );
        // A space in the first line: not wrapped base64.
        assert!(find_in("xx RkFLRS13cmFwcGVk\nLXNlY3JldA\n", &[form], false).is_empty());
        // A first line under 16 bytes.
        assert!(find_in("RkFLRS13cmF\nwcGVkLXNlY3JldA\n", &[form], false).is_empty());
        // The rest of a long line cut by the stream is no line.
        assert!(find_in("RkFLRS13cmFwcGVk\nLXNlY3JldA\n", &[form], true).is_empty());
        // A next line over 1024 bytes does not join.
        let long = format!("RkFLRS13cmFwcGVk\nLXNlY3JldA{}\n", "A".repeat(1024));
        assert!(find_in(&long, &[form], false).is_empty());
    }

    #[test]
    fn holdback_keeps_the_lines_that_could_continue() {
        let text = b"log line one\nQUJDREVGR0hJSktMTU5PUFFS\nU1RVVldYWVphYmNkZWZn\n";
        // Both base64 lines could continue: held.
        assert_eq!(holdback(text, text.len(), 100, false), 13);
        // Until they hold `reach` bytes: the last line (20) is enough for 20.
        assert_eq!(holdback(text, text.len(), 20, false), 13 + 25);
        // A line with a space ends it.
        let text = b"QUJDREVGR0hJSktMTU5PUFFS\nnot base64 at all\n";
        assert_eq!(holdback(text, text.len(), 100, false), text.len());
        // CRLF counts as one line end.
        let text = b"x\r\nQUJDREVGR0hJSktMTU5PUFFS\r\n";
        assert_eq!(holdback(text, text.len(), 100, false), 3);
        // The rest of a cut line is not held.
        let text = b"QUJDREVGR0hJSktMTU5PUFFS\n";
        assert_eq!(holdback(text, text.len(), 100, true), text.len());
    }

    #[test]
    fn an_endless_base64_block_is_held_a_bounded_amount() {
        let line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\n";
        let text = line.repeat(10_000);
        let p = text.as_bytes();
        let r = holdback(p, p.len(), 120, false);
        assert!(p.len() - r <= 120 + line.len(), "held {}", p.len() - r);
    }
}
