//! The line prefixes of registered multi-line forms, indexed for the stream's
//! multi-line holdback.
//!
//! Before a stream lets complete lines go, it asks whether their tail could
//! be the beginning of a multi-line form still being printed: whether the
//! text up to the cut ends with a *line prefix* of some form, a prefix
//! ending at one of the form's line terminators (not its last byte). Asking
//! every prefix of every form in turn costs the total size of the forms per
//! cut: with 200 multi-line secrets of 2 KB, a stream of short lines ran
//! 1,200 times slower than with the same secrets on one line (review,
//! session 12).
//!
//! Here each line prefix is filed under a keyed hash of its last 8 bytes
//! (its terminator included), so a question costs one hash and a comparison
//! per prefix sharing those bytes. Prefixes shorter than 8 bytes (forms
//! whose first line is short) are few and asked in turn. The keys are
//! SipHash values under a per-process random key, not the bytes: the index
//! holds no secret material besides the positions.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use zeroize::Zeroizing;

/// Bytes of a prefix's end the index is keyed on.
const TAIL: usize = 8;

/// The line prefixes of a list of multi-line forms.
pub(crate) struct LinePrefixes {
    hasher: RandomState,
    /// Keyed hash of a prefix's last `TAIL` bytes → (form, prefix length).
    by_tail: HashMap<u64, Vec<(u32, u32)>>,
    /// Prefixes shorter than `TAIL` bytes: (form, prefix length).
    short: Vec<(u32, u32)>,
}

fn is_term(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

impl LinePrefixes {
    /// Indexes every prefix of each form that ends at a line terminator
    /// other than the form's last byte.
    pub(crate) fn new(forms: &[Zeroizing<Vec<u8>>]) -> LinePrefixes {
        let hasher = RandomState::new();
        let mut by_tail: HashMap<u64, Vec<(u32, u32)>> = HashMap::new();
        let mut short = Vec::new();
        for (i, m) in forms.iter().enumerate() {
            for (t, &b) in m.iter().enumerate() {
                if !is_term(b) || t + 1 >= m.len() {
                    continue;
                }
                let len = t + 1;
                let entry = (i as u32, len as u32);
                if len < TAIL {
                    short.push(entry);
                } else {
                    by_tail
                        .entry(hasher.hash_one(&m[len - TAIL..len]))
                        .or_default()
                        .push(entry);
                }
            }
        }
        LinePrefixes {
            hasher,
            by_tail,
            short,
        }
    }

    /// Calls `found(len)` for each line prefix that `text` ends with (the
    /// same length may come more than once).
    pub(crate) fn ending(
        &self,
        forms: &[Zeroizing<Vec<u8>>],
        text: &[u8],
        mut found: impl FnMut(usize),
    ) {
        let mut ask = |&(i, len): &(u32, u32)| {
            let len = len as usize;
            if text.len() >= len && text[text.len() - len..] == forms[i as usize][..len] {
                found(len);
            }
        };
        self.short.iter().for_each(&mut ask);
        if text.len() >= TAIL
            && let Some(cands) = self
                .by_tail
                .get(&self.hasher.hash_one(&text[text.len() - TAIL..]))
        {
            cands.iter().for_each(ask);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms(fs: &[&str]) -> Vec<Zeroizing<Vec<u8>>> {
        fs.iter()
            .map(|f| Zeroizing::new(f.as_bytes().to_vec()))
            .collect()
    }

    /// Every line prefix of every form, asked one by one.
    fn naive(fs: &[Zeroizing<Vec<u8>>], text: &[u8]) -> Vec<usize> {
        let mut v = Vec::new();
        for m in fs {
            for (t, &b) in m.iter().enumerate() {
                if is_term(b) && t + 1 < m.len() && text.ends_with(&m[..=t]) {
                    v.push(t + 1);
                }
            }
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    #[test]
    fn finds_the_prefixes_a_naive_walk_finds() {
        let fs = forms(&[
            "ab\ncd-FAKE-line-two\nlast",
            "FAKE-first-line\r\nFAKE-second-line\r\nend",
            "x\ry",
            "one-FAKE-line\n\nafter-an-empty-line",
            "cd-FAKE-line-two\nother",
        ]);
        let idx = LinePrefixes::new(&fs);
        let texts = [
            "log: ab\n",
            "log: ab\ncd-FAKE-line-two\n",
            "zzcd-FAKE-line-two\n",
            "FAKE-first-line\r",
            "FAKE-first-line\r\n",
            "FAKE-first-line\r\nFAKE-second-line\r\n",
            "x\r",
            "one-FAKE-line\n\n",
            "one-FAKE-line\n",
            "unrelated line\n",
            "\n",
            "",
        ];
        for t in texts {
            let mut got = Vec::new();
            idx.ending(&fs, t.as_bytes(), |n| got.push(n));
            got.sort_unstable();
            got.dedup();
            assert_eq!(got, naive(&fs, t.as_bytes()), "{t:?}");
        }
    }
}
