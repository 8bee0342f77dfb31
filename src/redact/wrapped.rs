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
    fn push(&mut self, bytes: &[u8]) {
        super::engine::extend_wiping(&mut self.bytes, bytes);
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
    // Only line ends with 16 bytes above the space before them are looked
    // at (`Candidates`: nearly every log line has a space or a tab there),
    // and only those lines are walked back to their start.
    let mut skip_to = 0;
    for le in Candidates::new(&p[..avail]) {
        let at = memchr::memrchr2(b'\n', b'\r', &p[..le]).map_or(0, |i| i + 1);
        if at >= r {
            break;
        }
        // A candidate's last 16 bytes are above the space; `continues`
        // decides the rest (length, alphabet) on these few lines.
        if at < skip_to || (at == 0 && start_mid_line) || !continues(&p[at..le]) {
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

/// The line ends (`\n`, `\r`) of a text with none of the bytes up to the
/// space (`0x00..=0x20`: spaces, tabs, line ends) among the 16 bytes before
/// them, in increasing order: the only line ends that can end a line that
/// continues ([`MIN_WIDTH`] base64 bytes at least), so the walk never visits
/// the others. The text is read 64 bytes at a time into two bit masks (line
/// ends, and bytes up to the space), and a line end qualifies when the
/// second mask is clear over the 16 bits before it: a few instructions per
/// 64 bytes where a search for each line end cost about 12 ns per log line
/// (benches/README, sessions 9 and 10).
struct Candidates<'a> {
    hay: &'a [u8],
    /// Offset of the block whose candidates are in `bits`.
    block: usize,
    bits: u64,
    /// The previous block's mask of bytes up to the space (all set before
    /// the text: a line end in its first 16 bytes has no 16 bytes of line).
    low_before: u64,
}

impl<'a> Candidates<'a> {
    fn new(hay: &'a [u8]) -> Self {
        let mut c = Candidates {
            hay,
            block: 0,
            bits: 0,
            low_before: u64::MAX,
        };
        c.load(0);
        c
    }

    /// Fills `bits` with the candidates of the block at `block`.
    fn load(&mut self, block: usize) {
        self.block = block;
        let rest = &self.hay[block.min(self.hay.len())..];
        let (ends, low) = if let Some(b) = rest.first_chunk::<64>() {
            masks(b)
        } else {
            // The last, short block: padded with bytes that are neither.
            let mut b = Zeroizing::new([b'A'; 64]);
            b[..rest.len()].copy_from_slice(rest);
            let (ends, low) = masks(&b);
            let keep = if rest.is_empty() {
                0
            } else {
                u64::MAX >> (64 - rest.len())
            };
            (ends & keep, low)
        };
        // Bit i of `near`: a byte up to the space among the 16 before i.
        // In this block: the shifts. In the previous one: the last such
        // byte among its last 16, bit j of `prev`, is 16 - j bytes before
        // this block, so within 16 of bits 0 to j (none when `prev` is 0:
        // 64 leading zeros shift everything out).
        let mut near = low << 1;
        near |= near << 1;
        near |= near << 2;
        near |= near << 4;
        near |= near << 8;
        let prev = self.low_before >> 48;
        near |= (u64::MAX >> 1) >> (prev.leading_zeros() - 1);
        self.bits = ends & !near;
        self.low_before = low;
    }
}

impl Iterator for Candidates<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.bits == 0 {
            if self.block + 64 >= self.hay.len() {
                return None;
            }
            self.load(self.block + 64);
        }
        let i = self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        Some(self.block + i)
    }
}

/// For 64 bytes: the mask of line ends (`\n`, `\r`) and the mask of bytes
/// up to the space, bit i for byte i. AVX-512 BW where the processor has it
/// (three compares into mask registers), else SSE2, which every x86-64
/// processor has; elsewhere the same in plain code.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn masks(b: &[u8; 64]) -> (u64, u64) {
    if std::arch::is_x86_feature_detected!("avx512bw") {
        // SAFETY: the processor has AVX-512 BW (checked just above).
        unsafe { masks_avx512(b) }
    } else {
        masks_sse2(b)
    }
}

/// [`masks`] with AVX-512 BW.
///
/// # Safety
///
/// The processor must have AVX-512 BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn masks_avx512(b: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::*;
    // SAFETY: one unaligned load of the 64 bytes of `b`.
    let v = unsafe { _mm512_loadu_si512(b.as_ptr().cast()) };
    let ends = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\n' as i8))
        | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\r' as i8));
    let low = _mm512_cmple_epu8_mask(v, _mm512_set1_epi8(b' ' as i8));
    (ends, low)
}

/// [`masks`] with SSE2.
#[cfg(target_arch = "x86_64")]
fn masks_sse2(b: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::*;
    let mut ends = 0u64;
    let mut low = 0u64;
    // SAFETY: SSE2 is part of the x86-64 baseline, so these instructions
    // exist on every processor this code can run on; each load reads 16
    // bytes inside `b` (offsets 0, 16, 32, 48 of 64), unaligned loads.
    unsafe {
        let nl = _mm_set1_epi8(b'\n' as i8);
        let cr = _mm_set1_epi8(b'\r' as i8);
        let space = _mm_set1_epi8(b' ' as i8);
        for k in 0..4 {
            let v = _mm_loadu_si128(b.as_ptr().add(16 * k).cast());
            let e = _mm_or_si128(_mm_cmpeq_epi8(v, nl), _mm_cmpeq_epi8(v, cr));
            // v <= 0x20 (unsigned) exactly when max(v, 0x20) == 0x20.
            let l = _mm_cmpeq_epi8(_mm_max_epu8(v, space), space);
            ends |= u64::from(_mm_movemask_epi8(e) as u16) << (16 * k);
            low |= u64::from(_mm_movemask_epi8(l) as u16) << (16 * k);
        }
    }
    (ends, low)
}

#[cfg(not(target_arch = "x86_64"))]
fn masks(b: &[u8; 64]) -> (u64, u64) {
    let mut ends = 0u64;
    let mut low = 0u64;
    for (i, &c) in b.iter().enumerate() {
        ends |= u64::from(c == b'\n' || c == b'\r') << i;
        low |= u64::from(c <= b' ') << i;
    }
    (ends, low)
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

    proptest::proptest! {
        /// Each of the kernels, the one in use and SSE2, against the
        /// definition.
        #[test]
        fn masks_are_line_ends_and_bytes_up_to_the_space(
            bytes in proptest::collection::vec(
                proptest::sample::select(vec![b'\n', b'\r', b' ', b'!', b'\t', 0, b'A', 0x7f, 0x80, 0xa0, 0xff]),
                64,
            ),
        ) {
            let b: [u8; 64] = bytes.try_into().expect("64 bytes");
            let mut want = (0u64, 0u64);
            for (i, &c) in b.iter().enumerate() {
                want.0 |= u64::from(c == b'\n' || c == b'\r') << i;
                want.1 |= u64::from(c <= b' ') << i;
            }
            proptest::prop_assert_eq!(masks(&b), want);
            #[cfg(target_arch = "x86_64")]
            proptest::prop_assert_eq!(masks_sse2(&b), want);
        }

        /// The masks find exactly the line ends with 16 bytes above the
        /// space before them, at every length and alignment (texts drawn
        /// from the bytes that matter, and one of the others).
        #[test]
        fn candidates_are_the_line_ends_after_16_bytes_above_the_space(
            text in proptest::collection::vec(
                proptest::sample::select(vec![b'\n', b'\r', b' ', b'\t', 0, b'A', b'/', 0xff]),
                0..300,
            ),
            runs in 0usize..4,
        ) {
            // Long runs without a low byte, so candidates occur.
            let mut text = text;
            for k in 0..runs {
                let at = (k * 97) % (text.len() + 1);
                text.splice(at..at, std::iter::repeat_n(b'Q', 20));
            }
            let want: Vec<usize> = (0..text.len())
                .filter(|&i| {
                    matches!(text[i], b'\n' | b'\r') && i >= 16 && text[i - 16..i].iter().all(|&c| c > b' ')
                })
                .collect();
            let got: Vec<usize> = Candidates::new(&text).collect();
            proptest::prop_assert_eq!(got, want);
        }
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
