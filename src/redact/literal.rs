//! Finding every occurrence of many long literals fast: a sampled window filter
//! with exact confirmation.
//!
//! # Why not an automaton
//!
//! A thousand registered secrets with their derived forms are some twenty
//! thousand literals. A plain Aho-Corasick automaton over that many patterns
//! runs at 0.15-0.4 GB/s on this project's machines (field notes §4), and its
//! SIMD prefilter switches off above 64 patterns. But these literals are not
//! arbitrary: each is at least `L` bytes long (the minimum secret length) and
//! high-entropy. That allows a filter that looks at only a fraction of the
//! input.
//!
//! # The filter
//!
//! Let `K = min(8, L)` and `S = L - K + 1`. Any occurrence of a literal of
//! length `m >= L` covers the `m - K + 1 >= S` consecutive `K`-byte windows
//! that start inside it and end inside it, so exactly one of any `S`
//! consecutive windows of it starts at a multiple of `S`. So the scan reads
//! only the `K`-byte window at every `S`-th position, hashes it (one
//! multiply), and tests a filter holding `S` consecutive windows of every
//! literal (the others are never needed: indexing them cost start-up time
//! and filter space). Only when the filter says yes does it look the window
//! up in a hash table of `(literal, offset)` candidates and compare the
//! literal byte for byte at the implied start.
//!
//! The windows indexed are each literal's *last* `S`. Forms share
//! beginnings far more than ends: every `base64("x-access-token:" +
//! secret)` starts with the same 20 characters (25 when the secrets share
//! their first four bytes, as the bench's `FAKE...` do), so with the first
//! windows a thousand secrets put a thousand equal windows in the table, and each
//! Basic header in a log had its thousand candidates compared byte for byte
//! (1.6 million comparisons, each reading a pattern from memory, per
//! 512 MiB of the bench's short-line log).
//!
//! The filter is a blocked Bloom filter: each window sets three bits in one
//! 64-bit word, so a test is one memory access, like a plain bitmap's. It
//! has 4 to 8 bits per window (the size is a power of two), which keeps it
//! in the processor's second-level cache beside the text being searched
//! (with a 2 MiB one: twice that size ran 2% slower, four times 13%, half
//! 4%; three bits rather than two, 2% faster; benches/README, session 10).
//!
//! With 40-byte tokens `S` is 33: the scan touches one window per 33 bytes.
//! The worst case is a minimum length of 8 (`S = 1`): one window per byte,
//! still no automaton state to chase.
//!
//! Occurrences are reported all of them, overlapping included, so the result
//! depends only on the text, not on where a scan started: this is what lets
//! the streaming redactor cut its input anywhere.

use zeroize::Zeroizing;

/// Odd multiplier (golden ratio): a bijection on `u64`, so distinct windows
/// never share a table key.
const MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// One window of one pattern in the confirmation table.
#[derive(Clone, Copy, Default)]
struct Entry {
    /// The window's hash.
    hash: u64,
    /// The pattern's index.
    pattern: u32,
    /// Where the window starts in the pattern.
    offset: u32,
}

// All-zero is the default, so the table is wiped like plain integers.
impl zeroize::DefaultIsZeroes for Entry {}

/// A set of literals, none holding a line terminator, searched together.
pub struct LiteralSet {
    patterns: Vec<Zeroizing<Vec<u8>>>,
    /// Window width in bytes (1 to 8).
    k: usize,
    /// Sampling step.
    step: usize,
    /// Mask keeping the low `k` bytes of a little-endian load.
    mask: u64,
    /// The filter: `2^words_log2` words of 64 bits.
    words_log2: u32,
    /// (Wiped on drop, as the table: both are derived from the patterns.)
    filter: Zeroizing<Vec<u64>>,
    /// The candidates of each hashed window, grouped by the top
    /// `table_log2` bits of the hash: group `g` is
    /// `table[starts[g]..starts[g + 1]]`. Built in two linear passes
    /// (count, then place), which is what keeps start-up short with
    /// thousands of secrets; a hash map of vectors took most of it. Wiped
    /// on drop: a window's hash is one multiplication by an odd number, so
    /// it gives the window back, and the windows of a form spell it.
    table: Zeroizing<Vec<Entry>>,
    starts: Vec<u32>,
    table_log2: u32,
    max_len: usize,
}

/// The offsets of the last `step` windows of `k` bytes of `pattern`
/// (which is at least `k + step - 1` bytes long).
fn last_windows(pattern: &[u8], k: usize, step: usize) -> std::ops::Range<usize> {
    let first = pattern.len() + 1 - k - step;
    first..first + step
}

impl std::fmt::Debug for LiteralSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the patterns: they are secrets.
        f.debug_struct("LiteralSet")
            .field("patterns", &self.patterns.len())
            .field("k", &self.k)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl LiteralSet {
    /// Builds the set. Empty patterns are ignored.
    pub fn new(patterns: Vec<Zeroizing<Vec<u8>>>) -> LiteralSet {
        let patterns: Vec<_> = patterns.into_iter().filter(|p| !p.is_empty()).collect();
        let min_len = patterns.iter().map(|p| p.len()).min().unwrap_or(8);
        let max_len = patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        let k = min_len.min(8);
        let step = min_len - k + 1;
        let mask = if k == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * k)) - 1
        };
        // Each literal's last `step` windows (it has at least that many).
        let windows = patterns.len() * step;
        // 4 to 8 bits per window, between 2^6 and 2^21 words (16 MiB).
        let words_log2 = (windows.max(1) * 4 / 64)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(6, 21);
        // About four windows per group: a group's entries are about one
        // cache line, and `starts` a quarter of what one group per window
        // made it (4 MiB for a thousand secrets, missed in cache by nearly
        // every confirmation; start-up 40 -> 31 ms, benches/README
        // session 10).
        let table_log2 = (windows / 4)
            .max(1)
            .next_power_of_two()
            .trailing_zeros()
            .max(1);
        let mut set = LiteralSet {
            patterns: Vec::new(),
            k,
            step,
            mask,
            words_log2,
            filter: Zeroizing::new(vec![0; 1usize << words_log2]),
            table: Zeroizing::new(Vec::new()),
            starts: vec![0; (1usize << table_log2) + 1],
            table_log2,
            max_len,
        };
        // Pass 1: the filter, and how many windows each group holds.
        for p in &patterns {
            for off in last_windows(p, k, step) {
                let h = set.hash(p, off);
                let (word, bits) = set.filter_slot(h);
                set.filter[word] |= bits;
                let g = set.group(h);
                set.starts[g + 1] += 1;
            }
        }
        for g in 1..set.starts.len() {
            set.starts[g] += set.starts[g - 1];
        }
        // Pass 2: each window into its group.
        let mut next: Vec<u32> = set.starts[..set.starts.len() - 1].to_vec();
        set.table = Zeroizing::new(vec![Entry::default(); windows]);
        for (pi, p) in patterns.iter().enumerate() {
            for off in last_windows(p, k, step) {
                let h = set.hash(p, off);
                let slot = &mut next[set.group(h)];
                set.table[*slot as usize] = Entry {
                    hash: h,
                    pattern: pi as u32,
                    offset: off as u32,
                };
                *slot += 1;
            }
        }
        set.patterns = patterns;
        set
    }

    /// The filter word of hash `h` and the three bits it sets there: the
    /// word from the top bits of the hash, the bits from the next eighteen
    /// (a multiplicative hash mixes into its top bits, not its low ones).
    #[inline(always)]
    fn filter_slot(&self, h: u64) -> (usize, u64) {
        let word = (h >> (64 - self.words_log2)) as usize;
        let rest = h << self.words_log2;
        let bits =
            (1u64 << (rest >> 58)) | (1u64 << ((rest >> 52) & 63)) | (1u64 << ((rest >> 46) & 63));
        (word, bits)
    }

    #[inline(always)]
    fn group(&self, h: u64) -> usize {
        (h >> (64 - self.table_log2)) as usize
    }

    /// Whether the set holds no literal.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Length of the longest literal.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The sampling step (for reports and benches).
    pub fn step(&self) -> usize {
        self.step
    }

    #[inline(always)]
    fn hash(&self, hay: &[u8], at: usize) -> u64 {
        let w = if at + 8 <= hay.len() {
            u64::from_le_bytes(hay[at..at + 8].try_into().expect("8 bytes"))
        } else {
            let mut buf = [0u8; 8];
            let n = (hay.len() - at).min(8);
            buf[..n].copy_from_slice(&hay[at..at + n]);
            u64::from_le_bytes(buf)
        };
        (w & self.mask).wrapping_mul(MUL)
    }

    /// Pushes `(start, end)` of every occurrence lying wholly in `hay` and
    /// starting before `start_limit`. Occurrences may be reported more than
    /// once; callers sort and deduplicate.
    pub fn find(&self, hay: &[u8], start_limit: usize, out: &mut Vec<(usize, usize)>) {
        if self.patterns.is_empty() || hay.len() < self.k {
            return;
        }
        let last = hay.len() - self.k;
        let mut j = 0;
        while j <= last {
            let h = self.hash(hay, j);
            let (word, bits) = self.filter_slot(h);
            // The word index is in range by construction (words_log2 bits).
            if self.filter[word] & bits == bits {
                self.confirm(hay, j, h, start_limit, out);
            }
            j += self.step;
        }
    }

    #[cold]
    fn confirm(
        &self,
        hay: &[u8],
        j: usize,
        h: u64,
        start_limit: usize,
        out: &mut Vec<(usize, usize)>,
    ) {
        let g = self.group(h);
        let cands = &self.table[self.starts[g] as usize..self.starts[g + 1] as usize];
        for e in cands {
            let off = e.offset as usize;
            if e.hash != h || off > j {
                continue;
            }
            let a = j - off;
            let p = &self.patterns[e.pattern as usize];
            if a < start_limit && a + p.len() <= hay.len() && hay[a..a + p.len()] == p[..] {
                out.push((a, a + p.len()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ps: &[&str]) -> LiteralSet {
        LiteralSet::new(
            ps.iter()
                .map(|p| Zeroizing::new(p.as_bytes().to_vec()))
                .collect(),
        )
    }

    fn naive(ps: &[&str], hay: &str) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        for p in ps {
            for a in 0..hay.len() {
                if hay.as_bytes()[a..].starts_with(p.as_bytes()) {
                    v.push((a, a + p.len()));
                }
            }
        }
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn finds_every_occurrence_like_a_naive_scan() {
        let ps = [
            "FAKEsecret-01234",
            "0123456789abcdefFAKE",
            "aaaaaaaaa",
            "abcabcabcab",
        ];
        let hay =
            "xxFAKEsecret-01234 aaaaaaaaaaaa 0123456789abcdefFAKEsecret-01234 abcabcabcabcabcab";
        let s = set(&ps);
        let mut got = Vec::new();
        s.find(hay.as_bytes(), usize::MAX, &mut got);
        got.sort();
        got.dedup();
        assert_eq!(got, naive(&ps, hay));
        assert_eq!(s.step(), 2);
    }

    #[test]
    fn patterns_sharing_a_beginning_are_all_found_at_every_alignment() {
        // Like base64 of one user name and many secrets: a long common
        // beginning, different ends and lengths.
        let ps: Vec<String> = (0..40)
            .map(|i| format!("eC1hY2Nlc3MtdG9rZW46RkFLR{i:03}{}", "q".repeat(i % 7)))
            .collect();
        let ps: Vec<&str> = ps.iter().map(String::as_str).collect();
        let s = set(&ps);
        for pad in 0..s.step() + 2 {
            let hay = format!("{}{} {}x{}", " ".repeat(pad), ps[7], ps[39], ps[0]);
            let mut got = Vec::new();
            s.find(hay.as_bytes(), usize::MAX, &mut got);
            got.sort();
            got.dedup();
            assert_eq!(got, naive(&ps, &hay), "pad {pad}");
        }
    }

    #[test]
    fn short_patterns_and_start_limit() {
        let s = set(&["abcd", "bcdefg"]);
        assert_eq!(s.step(), 1);
        let mut got = Vec::new();
        s.find(b"abcdefg abcd", 5, &mut got);
        got.sort();
        got.dedup();
        assert_eq!(got, vec![(0, 4), (1, 7)]);
    }

    #[test]
    fn debug_hides_patterns() {
        let s = set(&["FAKEsecret-01234"]);
        assert!(!format!("{s:?}").contains("FAKE"));
    }
}
