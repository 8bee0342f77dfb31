//! Where the rules' keywords start: one SIMD pass with exact byte tables.
//!
//! # Why not Teddy alone
//!
//! The rules are found keyword-first ([`super::rules`]): a search for every
//! keyword, then each rule's regex anchored where one of its keywords
//! starts. aho-corasick's SIMD search (Teddy) makes that search fast, but it
//! has no case-insensitive form, and its fingerprints are nibble tables
//! (a byte is a candidate when its low nibble and its high nibble each
//! occur in some keyword at that position, so `r` (0x72) passes for `b`
//! (0x62) and `s` (0x73)). So the keywords were searched in two passes, the
//! any-case ones over a lower-cased copy of the text (fat Teddy, 16 bytes
//! per step) and the 3-byte case-sensitive ones over the text as written:
//! together about 40% of the redactor's time on a short-line log with a
//! thousand registered secrets (benches/README, session 13).
//!
//! # The filter
//!
//! Keywords are put in 8 buckets. For each of the first four positions of
//! a keyword there is a table of 128 bytes, one per ASCII byte value, whose
//! bit `b` says that some keyword of bucket `b` may have that byte there:
//! the byte as written for a case-sensitive keyword, both cases of a letter
//! for an any-case one, every byte at the positions past a keyword shorter
//! than four. A position of the text is a candidate when its byte and the
//! next three pass the four tables for a common bucket.
//!
//! AVX-512 VBMI looks 64 bytes up in a 128-byte table with one instruction
//! (`vpermi2b`), so the fingerprint is exact per byte, case folding costs
//! nothing, and both kinds of keyword share one pass over the text as
//! written: four lookups per 64 bytes. The
//! instruction reads an index's low 7 bits, so a byte of 0x80 or above is
//! looked up as the ASCII byte it ends like: no keyword holds such a byte,
//! so that only adds candidates (masking those bytes out cost 20% of the
//! pass). Sixteen buckets (eight lookups) confirmed 4% fewer candidates on
//! the short-line log and took twice as long.
//!
//! A candidate is confirmed by comparing its buckets' keywords there. Each
//! keyword belongs to a *search* (case-sensitive or any-case), and the hits
//! of each search are reported as aho-corasick's leftmost-longest
//! non-overlapping search reports them: the caller's trigger tables were
//! built for those semantics. No keyword of a search starts another (the
//! caller removes them), so at most one keyword of a search starts at a
//! position, and the search resumes after it.
//!
//! A search may instead report *every* start of its keywords and give the
//! bytes that may follow them ([`Search::then`]): the rules with 2-byte
//! keywords (`s.`, `SK`), whose regex is then tried at each such start.
//! The two bytes after the keyword are then part of the fingerprint (but
//! not confirmed: the regex decides), and those keywords get a bucket of
//! their own, so that `s.` followed by a token's alphabet does not widen
//! the other buckets' tables.
//!
//! Processors without AVX-512 VBMI keep the aho-corasick passes
//! ([`KeywordFilter::new`] returns `None`); a test checks that both give the
//! same hits, and the plain-code twin of the kernel (the `hits` of a
//! filter made by [`KeywordFilter::build`]) checks the tables on any
//! processor.

/// One search of the filter: its keywords and how they are found.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Search<'a> {
    pub keywords: &'a [String],
    /// Keywords match in any ASCII case (they are given lower-cased).
    pub any_case: bool,
    /// `None`: aho-corasick's leftmost-longest hits, keywords of 3 bytes or
    /// more. `Some(bytes)`: every start of a keyword, whose next bytes up
    /// to the fourth are among `bytes` (a fingerprint only).
    pub then: Option<&'a [u8]>,
}

/// One keyword of the filter.
#[derive(Debug)]
struct Keyword {
    bytes: Vec<u8>,
    any_case: bool,
    /// Every start is a hit (its search has `then`).
    every: bool,
    /// Which search it belongs to, and its index there.
    search: usize,
    index: usize,
}

/// A keyword that starts at `start`: keyword `index` of search `search`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Hit {
    pub start: usize,
    pub search: usize,
    pub index: usize,
}

/// The fingerprint tables and the buckets' keywords.
#[derive(Debug)]
pub(crate) struct KeywordFilter {
    /// `tables[j][byte]`: the buckets (bits) whose keywords may have
    /// `byte` at position `j`.
    tables: [[u8; 128]; 4],
    /// The keywords of each bucket, as indices into `keywords`.
    buckets: Vec<Vec<usize>>,
    keywords: Vec<Keyword>,
    /// The processor has AVX-512 VBMI: [`KeywordFilter::hits`] runs the
    /// kernel (set by `new` only; `build` gives the plain code).
    simd: bool,
}

const BUCKETS: usize = 8;

/// The most searches one filter serves (the rules have three).
const SEARCHES: usize = 3;

impl KeywordFilter {
    /// The filter of `searches`. `None` when this processor lacks AVX-512
    /// VBMI, or a keyword does not suit the filter (not ASCII, shorter than
    /// 3 bytes without `then`, longer than 3 with it): the caller then
    /// searches with aho-corasick.
    pub(crate) fn new(searches: &[Search]) -> Option<KeywordFilter> {
        if !simd_available() {
            return None;
        }
        let mut f = KeywordFilter::build(searches)?;
        f.simd = true;
        Some(f)
    }

    /// As [`KeywordFilter::new`], whatever the processor: its
    /// [`KeywordFilter::hits`] is the plain code.
    pub(crate) fn build(searches: &[Search]) -> Option<KeywordFilter> {
        if searches.len() > SEARCHES {
            return None;
        }
        let mut keywords = Vec::new();
        let mut then = [false; 128];
        for (s, search) in searches.iter().enumerate() {
            for (i, k) in search.keywords.iter().enumerate() {
                let fits = match search.then {
                    None => k.len() >= 3,
                    Some(_) => (1..4).contains(&k.len()),
                };
                if !fits || !k.is_ascii() {
                    return None;
                }
                keywords.push(Keyword {
                    bytes: k.as_bytes().to_vec(),
                    any_case: search.any_case,
                    every: search.then.is_some(),
                    search: s,
                    index: i,
                });
            }
            for &b in search.then.unwrap_or_default() {
                if b >= 0x80 {
                    return None;
                }
                then[usize::from(b)] = true;
            }
        }
        // Keywords with similar beginnings share a bucket, so a bucket's
        // tables accept few bytes beyond its keywords'; 3-byte keywords
        // (any byte at position 3) are kept apart from the rest, as far
        // as the sort does it.
        let mut order: Vec<usize> = (0..keywords.len()).collect();
        let key = |k: &Keyword| {
            let head: Vec<u8> = k.bytes[..k.bytes.len().min(4)]
                .iter()
                .map(u8::to_ascii_lowercase)
                .collect();
            (k.bytes.len() >= 4, head)
        };
        order.sort_by_key(|&i| key(&keywords[i]));
        // The keywords with `then` in the last bucket, the others spread
        // over the rest.
        let every = keywords.iter().filter(|k| k.every).count();
        let shared = if every > 0 { BUCKETS - 1 } else { BUCKETS };
        let per = (keywords.len() - every).div_ceil(shared).max(1);
        let mut buckets = vec![Vec::new(); BUCKETS];
        let mut tables = [[0u8; 128]; 4];
        let mut n = 0;
        for &i in &order {
            let b = if keywords[i].every {
                BUCKETS - 1
            } else {
                n += 1;
                (n - 1) / per
            };
            buckets[b].push(i);
            let bit = 1u8 << b;
            let k = &keywords[i];
            for (j, table) in tables.iter_mut().enumerate() {
                match k.bytes.get(j) {
                    Some(&c) => {
                        table[c as usize] |= bit;
                        if k.any_case {
                            table[c.to_ascii_uppercase() as usize] |= bit;
                            table[c.to_ascii_lowercase() as usize] |= bit;
                        }
                    }
                    None if k.every => {
                        for (t, _) in table.iter_mut().zip(then).filter(|(_, ok)| *ok) {
                            *t |= bit;
                        }
                    }
                    None => table.iter_mut().for_each(|t| *t |= bit),
                }
            }
        }
        Some(KeywordFilter {
            tables,
            buckets,
            keywords,
            simd: false,
        })
    }

    /// Every hit starting before `limit` in `hay`, in order of start (then
    /// of search): each search without `then` leftmost-longest and
    /// non-overlapping, each with it every start of a keyword. Keywords
    /// may run past `limit` (to the end of `hay`).
    pub(crate) fn hits(&self, hay: &[u8], limit: usize, out: &mut Vec<Hit>) {
        #[cfg(target_arch = "x86_64")]
        if self.simd {
            let mut confirm = self.confirmer(hay, out);
            // SAFETY: `simd` is set only by `new`, where the processor has
            // AVX-512 F, BW and VBMI (`simd_available`).
            unsafe { self.candidates_avx512(hay, limit.min(hay.len()), &mut confirm) };
            return;
        }
        self.hits_with(hay, limit, out);
    }

    /// [`KeywordFilter::hits`] by plain code: the same tables, one byte at a
    /// time.
    fn hits_with(&self, hay: &[u8], limit: usize, out: &mut Vec<Hit>) {
        let mut confirm = self.confirmer(hay, out);
        // As the kernel: a byte by its low 7 bits, past the end a zero.
        let look = |j: usize, at: usize| -> u8 {
            let c = hay.get(at + j).copied().unwrap_or(0);
            self.tables[j][usize::from(c & 0x7f)]
        };
        for at in 0..limit.min(hay.len()) {
            let bits = look(0, at) & look(1, at) & look(2, at) & look(3, at);
            if bits != 0 {
                confirm(at, bits);
            }
        }
    }

    /// The confirmation of candidates, which pushes the hits: `(position,
    /// buckets)`, positions increasing.
    fn confirmer<'a>(&'a self, hay: &'a [u8], out: &'a mut Vec<Hit>) -> impl FnMut(usize, u8) + 'a {
        // Per search, where it resumes (after its last hit).
        let mut resume = [0usize; SEARCHES];
        move |at: usize, mut bits: u8| {
            // At most one keyword per search starts here (no keyword of a
            // search starts another); reported in order of search.
            let mut found: [Option<usize>; SEARCHES] = [None; SEARCHES];
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                for &i in &self.buckets[b] {
                    let k = &self.keywords[i];
                    if at < resume[k.search] && !k.every {
                        continue;
                    }
                    let Some(text) = hay.get(at..at + k.bytes.len()) else {
                        continue;
                    };
                    let matched = if k.any_case {
                        text.eq_ignore_ascii_case(&k.bytes)
                    } else {
                        text == &k.bytes[..]
                    };
                    if matched {
                        found[k.search] = Some(i);
                    }
                }
            }
            for i in found.into_iter().flatten() {
                let k = &self.keywords[i];
                resume[k.search] = at + k.bytes.len();
                out.push(Hit {
                    start: at,
                    search: k.search,
                    index: k.index,
                });
            }
        }
    }

    /// The candidates of `hay[..limit]` (`limit <= hay.len()`), 64
    /// positions at a time.
    ///
    /// # Safety
    ///
    /// The processor must have AVX-512 F, BW and VBMI.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    unsafe fn candidates_avx512(&self, hay: &[u8], limit: usize, f: &mut impl FnMut(usize, u8)) {
        use std::arch::x86_64::*;
        use zeroize::Zeroize;
        // SAFETY (all loads): table loads read 64 bytes at offsets 0 and 64
        // of a 128-byte table; text loads read `ptr[j..j + 64]` for j < 4,
        // inside `hay` (the loop's condition) or inside `buf`.
        let t = |j: usize, part: usize| unsafe {
            _mm512_loadu_si512(self.tables[j][64 * part..].as_ptr().cast())
        };
        let tables: [(__m512i, __m512i); 4] = std::array::from_fn(|j| (t(j, 0), t(j, 1)));
        // The text is read in place while a block's 67 bytes are there;
        // the last positions from a copy padded with zeros (a zero passes
        // only where a bucket takes any byte, 3-byte keywords, and
        // confirmation checks the bounds). Wiped: it holds text.
        let mut buf = [0u8; 64 + 67];
        let mut copied_at = None;
        let mut i = 0;
        while i < limit {
            let ptr = if i + 67 <= hay.len() {
                unsafe { hay.as_ptr().add(i) }
            } else {
                let from = *copied_at.get_or_insert_with(|| {
                    buf[..hay.len() - i].copy_from_slice(&hay[i..]);
                    i
                });
                unsafe { buf.as_ptr().add(i - from) }
            };
            // The buckets of the 64 positions from `ptr`. `vpermi2b` reads
            // an index's low 7 bits: a byte of 0x80 or more is looked up as
            // the ASCII byte it ends like, which can only add candidates (no
            // keyword holds such a byte), and confirmation compares the
            // bytes themselves.
            let mut c = _mm512_set1_epi8(-1);
            for (j, (lo, hi)) in tables.iter().enumerate() {
                let v = unsafe { _mm512_loadu_si512(ptr.add(j).cast()) };
                c = _mm512_and_si512(c, _mm512_permutex2var_epi8(*lo, v, *hi));
            }
            let keep = if limit - i >= 64 {
                u64::MAX
            } else {
                (1u64 << (limit - i)) - 1
            };
            let m = _mm512_test_epi8_mask(c, c) & keep;
            if m != 0 {
                let mut a = [0u8; 64];
                unsafe { _mm512_storeu_si512(a.as_mut_ptr().cast(), c) };
                report(i, m, &a, f);
            }
            i += 64;
        }
        buf.zeroize();
    }
}

/// Hands each candidate of a block to `f`: `m` its positions (bits), `a`
/// their buckets. Out of line: candidates are rare, and the scan keeps its
/// tables in registers.
#[cold]
#[inline(never)]
fn report(base: usize, mut m: u64, a: &[u8; 64], f: &mut impl FnMut(usize, u8)) {
    while m != 0 {
        let k = m.trailing_zeros() as usize;
        m &= m - 1;
        f(base + k, a[k]);
    }
}

/// Whether this processor runs [`KeywordFilter::hits`]' kernel.
fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vbmi")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
