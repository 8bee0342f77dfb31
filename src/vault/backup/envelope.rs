//! The backup file: a header, then the archive sealed chunk by chunk with
//! AES-256-GCM under a data key used for this one backup
//! (`spec/codex-backups.md` §2).
//!
//! Each chunk's associated data names the format, the shard, the backup
//! version, the chunk's index and whether it is the last one, so a chunk
//! moved to another place, another backup or another shard does not
//! authenticate, and a file cut after any chunk but the final one is caught
//! because its last chunk says it is not final. The nonce is the chunk index:
//! a data key seals exactly one backup, so no (key, nonce) pair repeats.
//!
//! The header is not in the associated data, on purpose: `rewrap` replaces
//! the wrapped data key in it without touching (or being able to read) the
//! chunks. Everything in the header that matters for the plaintext (shard,
//! version) is bound through the associated data, and the data key is bound
//! by the tags themselves.
//!
//! This module's plaintext buffers are zeroized (the tar crate's copy
//! buffers are not: best effort); the data key lives in `aws-lc-rs`'s key
//! object, which clears it when dropped.

use std::io::{self, Read, Write};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 8] = b"VRCXBAK1";
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 1 << 20;
/// The AES-GCM tag after each chunk's ciphertext.
pub const TAG: usize = 16;
/// A header longer than this is not one of ours.
pub const MAX_HEADER: usize = 64 * 1024;
/// The largest chunk a reader accepts (a hostile header cannot make it
/// allocate more).
pub const MAX_CHUNK: usize = 16 << 20;
/// Bit 31 of a frame's length word: this is the final chunk.
const FINAL: u32 = 1 << 31;
/// The cipher named in headers.
pub const CIPHER: &str = "AES-256-GCM";

/// A backup's header, stored as JSON after [`MAGIC`] and a 32-bit big-endian
/// length. Nothing in it is secret: the data key is wrapped by Transit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always 1.
    pub format: u32,
    /// The shard the volume belongs to.
    pub shard: String,
    /// The backup's version within the shard (1, 2, ...).
    pub version: u64,
    /// Unix milliseconds when the backup was made.
    pub created_ms: u64,
    /// [`CIPHER`].
    pub cipher: String,
    /// Plaintext bytes per chunk (every chunk but the final one is full).
    pub chunk_size: u32,
    /// The Transit mount that wrapped the data key.
    pub transit_mount: String,
    /// The Transit key that wrapped the data key.
    pub transit_key: String,
    /// The data key as Transit wrapped it (`vault:v<N>:...`).
    pub wrapped_key: String,
    /// The `N` of `wrapped_key`.
    pub key_version: u64,
}

/// Why a backup does not verify (becomes `codex_backup_corrupt`).
#[derive(Debug)]
pub struct Corrupt(pub String);

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Corrupt {}

/// An `io::Error` carrying [`Corrupt`], so that it travels through `Read`
/// and the archive reader and is told apart from a disk error afterwards.
pub fn corrupt(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Corrupt(msg.into()))
}

/// The [`Corrupt`] inside `e` (or inside the error it wraps), if any.
pub fn as_corrupt(e: &io::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(s) = source {
        if let Some(c) = s.downcast_ref::<Corrupt>() {
            return Some(c.0.clone());
        }
        source = s.source();
    }
    None
}

/// The version `N` in Transit's `vault:v<N>:` ciphertext prefix.
pub fn key_version(wrapped: &str) -> Option<u64> {
    let rest = wrapped.strip_prefix("vault:v")?;
    let (n, _) = rest.split_once(':')?;
    n.parse().ok().filter(|&n| n > 0)
}

/// The associated data of chunk `index` (§2.3).
fn aad(shard: &str, version: u64, index: u64, last: bool) -> Vec<u8> {
    let mut a = Vec::with_capacity(48 + shard.len());
    a.extend_from_slice(b"vaultref-codex-backup/1\0");
    a.extend_from_slice(shard.as_bytes());
    a.push(0);
    a.extend_from_slice(&version.to_be_bytes());
    a.extend_from_slice(&index.to_be_bytes());
    a.push(u8::from(last));
    a
}

fn nonce(index: u64) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[NONCE_LEN - 8..].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// The AES-256-GCM key of one backup.
pub fn data_key(bytes: &[u8]) -> Result<LessSafeKey, Corrupt> {
    let key = UnboundKey::new(&AES_256_GCM, bytes)
        .map_err(|_| Corrupt(format!("the data key is not {} bytes", 32)))?;
    Ok(LessSafeKey::new(key))
}

/// Writes a header to `out`.
pub fn write_header(out: &mut impl Write, header: &Header) -> io::Result<()> {
    let json = serde_json::to_vec(header).map_err(io::Error::other)?;
    if json.len() > MAX_HEADER {
        return Err(io::Error::other("the header is too long"));
    }
    out.write_all(MAGIC)?;
    out.write_all(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_be_bytes())?;
    out.write_all(&json)
}

/// Reads and checks a header (magic, length, JSON, format, cipher, chunk
/// size); the caller checks shard and version against what it asked for.
pub fn read_header(input: &mut impl Read) -> io::Result<Header> {
    let mut magic = [0u8; 8];
    read_full(input, &mut magic, "the header")?;
    if &magic != MAGIC {
        return Err(corrupt("not a vaultref Codex backup (wrong magic bytes)"));
    }
    let mut len = [0u8; 4];
    read_full(input, &mut len, "the header")?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_HEADER {
        return Err(corrupt(format!(
            "a header of {len} bytes (at most {MAX_HEADER})"
        )));
    }
    let mut json = vec![0u8; len];
    read_full(input, &mut json, "the header")?;
    // serde's message may quote a field name from the file: not shown.
    let header: Header = serde_json::from_slice(&json)
        .map_err(|_| corrupt("the header is not a format-1 header"))?;
    if header.format != 1 || header.cipher != CIPHER {
        return Err(corrupt(format!(
            "format {} with cipher `{}` (this reader knows format 1 with {CIPHER})",
            header.format,
            header.cipher.escape_debug()
        )));
    }
    if header.chunk_size == 0 || header.chunk_size as usize > MAX_CHUNK {
        return Err(corrupt(format!("a chunk size of {}", header.chunk_size)));
    }
    // `rewrap` and its report go by this number: it must be the wrapped
    // key's own.
    if key_version(&header.wrapped_key) != Some(header.key_version) {
        return Err(corrupt("the header's key version is not the wrapped key's"));
    }
    Ok(header)
}

fn read_full(input: &mut impl Read, buf: &mut [u8], what: &str) -> io::Result<()> {
    input.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            corrupt(format!("the file ends inside {what}"))
        } else {
            e
        }
    })
}

/// Byte strings a backup must not contain (the worker's Vault token): the
/// plaintext is searched before it is sealed, across chunk boundaries.
pub struct LeakGuard {
    needles: Vec<Zeroizing<Vec<u8>>>,
    /// The last `longest - 1` bytes of the previous chunk.
    carry: Zeroizing<Vec<u8>>,
}

impl LeakGuard {
    /// A guard for `needles` (empty ones are ignored).
    pub fn new(needles: Vec<Zeroizing<Vec<u8>>>) -> LeakGuard {
        LeakGuard {
            needles: needles.into_iter().filter(|n| !n.is_empty()).collect(),
            carry: Zeroizing::new(Vec::new()),
        }
    }

    /// Whether a needle is in the stream so far, `chunk` being its next bytes.
    fn hit(&mut self, chunk: &[u8]) -> bool {
        let longest = self.needles.iter().map(|n| n.len()).max().unwrap_or(0);
        if longest == 0 {
            return false;
        }
        // Occurrences within the chunk, then the ones across the boundary.
        let mut seam = Zeroizing::new(Vec::with_capacity(2 * longest));
        seam.extend_from_slice(&self.carry);
        seam.extend_from_slice(&chunk[..chunk.len().min(longest - 1)]);
        let found = self.needles.iter().any(|n| {
            memchr::memmem::find(chunk, n).is_some() || memchr::memmem::find(&seam, n).is_some()
        });
        // The carry is the last `longest - 1` bytes of the stream.
        let keep = longest - 1;
        let mut next = Zeroizing::new(Vec::with_capacity(keep));
        if chunk.len() >= keep {
            next.extend_from_slice(&chunk[chunk.len() - keep..]);
        } else {
            let from_carry = keep - chunk.len();
            let c = &self.carry;
            next.extend_from_slice(&c[c.len().saturating_sub(from_carry)..]);
            next.extend_from_slice(chunk);
        }
        self.carry = next;
        found
    }
}

/// Seals what is written to it, chunk by chunk, into `out` (after the
/// header, which the caller wrote). [`SealingWriter::finish`] seals the final
/// chunk; a writer dropped without it leaves a file no reader accepts.
pub struct SealingWriter<W: Write> {
    key: LessSafeKey,
    shard: String,
    version: u64,
    out: W,
    buf: Zeroizing<Vec<u8>>,
    chunk: usize,
    index: u64,
    hasher: Sha256,
    size: u64,
    guard: LeakGuard,
}

/// What [`SealingWriter::finish`] reports: the frames' size and SHA-256.
pub struct Sealed<W> {
    /// The output, flushed.
    pub out: W,
    /// Bytes after the header.
    pub size: u64,
    /// SHA-256 of those bytes, lower-case hex.
    pub sha256: String,
}

impl<W: Write> SealingWriter<W> {
    /// A writer sealing with `key` for backup `version` of `shard`.
    pub fn new(key: LessSafeKey, shard: &str, version: u64, out: W, guard: LeakGuard) -> Self {
        Self::with_chunk(key, shard, version, out, guard, CHUNK)
    }

    /// As [`new`](Self::new) with another chunk size (tests).
    pub fn with_chunk(
        key: LessSafeKey,
        shard: &str,
        version: u64,
        out: W,
        guard: LeakGuard,
        chunk: usize,
    ) -> Self {
        SealingWriter {
            key,
            shard: shard.to_owned(),
            version,
            out,
            buf: Zeroizing::new(Vec::with_capacity(chunk + TAG)),
            chunk,
            index: 0,
            hasher: Sha256::new(),
            size: 0,
            guard,
        }
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        if self.guard.hit(&self.buf) {
            return Err(io::Error::other(LeakFound));
        }
        let aad = aad(&self.shard, self.version, self.index, last);
        self.key
            .seal_in_place_append_tag(nonce(self.index), Aad::from(aad), &mut *self.buf)
            .map_err(|_| io::Error::other("AES-GCM sealing failed"))?;
        let len = u32::try_from(self.buf.len()).map_err(io::Error::other)?;
        let word = (len | if last { FINAL } else { 0 }).to_be_bytes();
        self.out.write_all(&word)?;
        self.out.write_all(&self.buf)?;
        self.hasher.update(word);
        self.hasher.update(&*self.buf);
        self.size += 4 + self.buf.len() as u64;
        self.index += 1;
        self.buf.clear();
        Ok(())
    }

    /// Seals the final chunk (possibly empty) and flushes.
    pub fn finish(mut self) -> io::Result<Sealed<W>> {
        self.seal(true)?;
        self.out.flush()?;
        Ok(Sealed {
            sha256: hex::encode(self.hasher.finalize()),
            size: self.size,
            out: self.out,
        })
    }
}

impl<W: Write> Write for SealingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() == self.chunk {
            self.seal(false)?;
        }
        let n = data.len().min(self.chunk - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The plaintext holds a [`LeakGuard`] needle.
#[derive(Debug)]
pub struct LeakFound;

impl std::fmt::Display for LeakFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the volume holds the worker's Vault token")
    }
}

impl std::error::Error for LeakFound {}

/// Opens the chunks read from `input` (positioned after the header); every
/// byte it returns has been authenticated. After the final chunk it
/// requires the end of the input.
pub struct OpeningReader<R: Read> {
    key: LessSafeKey,
    shard: String,
    version: u64,
    input: R,
    buf: Zeroizing<Vec<u8>>,
    /// Plaintext bytes of `buf` not returned yet: `buf[pos..plain]`.
    pos: usize,
    plain: usize,
    max_frame: usize,
    index: u64,
    done: bool,
    poisoned: bool,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> OpeningReader<R> {
    /// A reader of backup `header.version` of `header.shard`.
    pub fn new(key: LessSafeKey, header: &Header, input: R) -> Self {
        OpeningReader {
            key,
            shard: header.shard.clone(),
            version: header.version,
            input,
            buf: Zeroizing::new(Vec::new()),
            pos: 0,
            plain: 0,
            max_frame: header.chunk_size as usize + TAG,
            index: 0,
            done: false,
            poisoned: false,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Reads and opens the next chunk into `buf`.
    fn next_chunk(&mut self) -> io::Result<()> {
        // Poisoned until this chunk is opened: after any error the reader
        // hands out nothing more.
        self.pos = 0;
        self.plain = 0;
        self.buf.fill(0);
        if self.poisoned {
            return Err(corrupt("read after an error"));
        }
        self.poisoned = true;
        let mut word = [0u8; 4];
        read_full(
            &mut self.input,
            &mut word,
            &format!("chunk {} (no final chunk: truncated)", self.index),
        )?;
        let word_n = u32::from_be_bytes(word);
        let last = word_n & FINAL != 0;
        let len = (word_n & !FINAL) as usize;
        if !(TAG..=self.max_frame).contains(&len) {
            return Err(corrupt(format!("chunk {} claims {len} bytes", self.index)));
        }
        self.buf.resize(len, 0);
        read_full(
            &mut self.input,
            &mut self.buf,
            &format!("chunk {} (truncated)", self.index),
        )?;
        self.hasher.update(word);
        self.hasher.update(&*self.buf);
        self.size += 4 + len as u64;
        let aad = aad(&self.shard, self.version, self.index, last);
        let plain = self
            .key
            .open_in_place(nonce(self.index), Aad::from(aad), &mut self.buf)
            .map_err(|_| {
                corrupt(format!(
                    "chunk {} does not authenticate (altered, moved, or from another backup, shard or data key)",
                    self.index
                ))
            })?
            .len();
        self.pos = 0;
        self.plain = plain;
        self.index += 1;
        if last {
            self.done = true;
            let mut probe = [0u8; 1];
            loop {
                match self.input.read(&mut probe) {
                    Ok(0) => break,
                    Ok(_) => return Err(corrupt("bytes after the final chunk")),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        self.poisoned = false;
        Ok(())
    }

    /// Reads what is left, so that the final chunk and the end of the
    /// input are checked even when the consumer stopped early.
    pub fn finish(mut self) -> io::Result<(u64, String)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.size, hex::encode(self.hasher.finalize())))
    }
}

impl<R: Read> Read for OpeningReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.plain - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    /// `fixtures/codex-backup/`: frames computed from the spec by another
    /// AES-GCM implementation. A `seal` vector's frames are what this writer
    /// makes, byte for byte; `seal` and `open` vectors open to their
    /// plaintext; `corrupt` ones fail as corrupt.
    #[cfg(feature = "testing")]
    #[test]
    fn the_frame_vectors_hold() {
        use crate::testing::vectors::{fixtures_dir, load_dir};
        let files = load_dir(&fixtures_dir().join("codex-backup")).unwrap();
        let mut seen = 0;
        for v in files.iter().flat_map(|f| f.vectors()) {
            let id = v["id"].as_str().unwrap();
            let hex_of = |k: &str| hex::decode(v[k].as_str().unwrap()).unwrap();
            let key = hex_of("data_key_hex");
            let (plain, frames) = (hex_of("plaintext_hex"), hex_of("frames_hex"));
            let shard = v["shard"].as_str().unwrap();
            let version = v["version"].as_u64().unwrap();
            let chunk = v["chunk_size"].as_u64().unwrap() as usize;
            let expect = v["expect"].as_str().unwrap();
            if expect == "seal" {
                let mut w = SealingWriter::with_chunk(
                    data_key(&key).unwrap(),
                    shard,
                    version,
                    Vec::new(),
                    LeakGuard::new(Vec::new()),
                    chunk,
                );
                w.write_all(&plain).unwrap();
                assert_eq!(
                    hex::encode(w.finish().unwrap().out),
                    v["frames_hex"],
                    "{id}"
                );
            }
            let h = header(
                v["open_shard"].as_str().unwrap_or(shard),
                v["open_version"].as_u64().unwrap_or(version),
                chunk,
            );
            let mut r = OpeningReader::new(data_key(&key).unwrap(), &h, &frames[..]);
            let mut got = Vec::new();
            let opened = r.read_to_end(&mut got).and_then(|_| r.finish());
            match expect {
                "seal" | "open" => {
                    let (size, _) = opened.unwrap_or_else(|e| panic!("{id}: {e}"));
                    assert_eq!(got, plain, "{id}");
                    assert_eq!(size, frames.len() as u64, "{id}");
                }
                _ => {
                    let e = opened.expect_err(id);
                    assert!(as_corrupt(&e).is_some(), "{id}: not corrupt: {e}");
                }
            }
            seen += 1;
        }
        assert_eq!(seen, 22, "every vector ran");
    }

    fn header(shard: &str, version: u64, chunk: usize) -> Header {
        Header {
            format: 1,
            shard: shard.into(),
            version,
            created_ms: 0,
            cipher: CIPHER.into(),
            chunk_size: chunk as u32,
            transit_mount: "transit".into(),
            transit_key: "codex".into(),
            wrapped_key: "vault:v1:AAAA".into(),
            key_version: 1,
        }
    }

    /// Header and frames of `plain` sealed in chunks of `chunk` bytes.
    fn seal(h: &Header, plain: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write_header(&mut out, h).unwrap();
        let mut w = SealingWriter::with_chunk(
            data_key(&KEY).unwrap(),
            &h.shard,
            h.version,
            out,
            LeakGuard::new(Vec::new()),
            chunk,
        );
        w.write_all(plain).unwrap();
        w.finish().unwrap().out
    }

    fn open(file: &[u8], shard: &str, version: u64) -> io::Result<Vec<u8>> {
        let mut input = file;
        let mut h = read_header(&mut input)?;
        // As a restore would: the caller's shard and version, not the file's.
        h.shard = shard.into();
        h.version = version;
        let mut r = OpeningReader::new(data_key(&KEY).unwrap(), &h, input);
        let mut plain = Vec::new();
        r.read_to_end(&mut plain)?;
        Ok(plain)
    }

    fn frames(file: &[u8]) -> (usize, Vec<(usize, usize)>) {
        let hlen = u32::from_be_bytes(file[8..12].try_into().unwrap()) as usize;
        let start = 12 + hlen;
        let mut at = start;
        let mut out = Vec::new();
        while at < file.len() {
            let len = (u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) & !FINAL) as usize;
            out.push((at, 4 + len));
            at += 4 + len;
        }
        (start, out)
    }

    fn err(r: io::Result<Vec<u8>>) -> String {
        as_corrupt(&r.expect_err("must not open")).expect("a Corrupt error")
    }

    #[test]
    fn round_trips_at_every_chunk_boundary() {
        for len in [0, 1, 99, 100, 101, 250, 300] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let file = seal(&header("s1", 3, 100), &plain, 100);
            assert_eq!(open(&file, "s1", 3).unwrap(), plain, "{len}");
        }
    }

    #[test]
    fn any_altered_byte_of_the_frames_is_caught() {
        let plain = vec![42u8; 250];
        let file = seal(&header("s1", 1, 100), &plain, 100);
        let (start, _) = frames(&file);
        for at in start..file.len() {
            let mut bad = file.clone();
            bad[at] ^= 0x01;
            assert!(
                open(&bad, "s1", 1).is_err(),
                "byte {at} altered went unnoticed"
            );
        }
    }

    #[test]
    fn truncation_reordering_and_trailing_bytes_are_caught() {
        let plain: Vec<u8> = (0..250u32).map(|i| i as u8).collect();
        let file = seal(&header("s1", 1, 100), &plain, 100);
        let (start, f) = frames(&file);
        assert_eq!(f.len(), 3);
        // Cut after each non-final chunk, and inside the last.
        for &(at, len) in &f {
            assert!(err(open(&file[..at], "s1", 1)).contains("truncated"));
            assert!(err(open(&file[..at + len - 1], "s1", 1)).contains("truncated"));
        }
        // Chunks 0 and 1 swapped.
        let mut swapped = file[..start].to_vec();
        swapped.extend_from_slice(&file[f[1].0..f[1].0 + f[1].1]);
        swapped.extend_from_slice(&file[f[0].0..f[0].0 + f[0].1]);
        swapped.extend_from_slice(&file[f[2].0..]);
        assert!(err(open(&swapped, "s1", 1)).contains("chunk 0 does not authenticate"));
        // The final flag set on a non-final chunk, then the rest dropped.
        let mut cut = file[..f[1].0].to_vec();
        cut[f[0].0] |= 0x80;
        assert!(err(open(&cut, "s1", 1)).contains("chunk 0 does not authenticate"));
        // Anything after the final chunk.
        let mut extra = file.clone();
        extra.push(0);
        assert!(err(open(&extra, "s1", 1)).contains("after the final chunk"));
    }

    #[test]
    fn a_backup_of_another_shard_or_version_does_not_open() {
        let file = seal(&header("s1", 4, 100), b"volume", 100);
        assert!(err(open(&file, "s2", 4)).contains("does not authenticate"));
        assert!(err(open(&file, "s1", 5)).contains("does not authenticate"));
        assert_eq!(open(&file, "s1", 4).unwrap(), b"volume");
    }

    #[test]
    fn hostile_headers_are_refused_before_any_allocation() {
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(err(open(&file, "s", 1)).contains("a header of"));
        let mut h = header("s", 1, 100);
        h.chunk_size = u32::MAX;
        let file = seal(&h, b"", 100);
        assert!(err(open(&file, "s", 1)).contains("chunk size"));
        assert!(err(open(b"PK\x03\x04 not a backup", "s", 1)).contains("magic"));
    }

    #[test]
    fn the_guard_finds_a_needle_across_chunk_boundaries() {
        let token = b"hvs.CAESIFAKEFAKEFAKE".to_vec();
        for at in [0usize, 80, 90, 95, 99, 100, 180, 229] {
            let mut plain = vec![b'.'; 250];
            plain[at..at + token.len()].copy_from_slice(&token);
            let mut w = SealingWriter::with_chunk(
                data_key(&KEY).unwrap(),
                "s",
                1,
                Vec::new(),
                LeakGuard::new(vec![Zeroizing::new(token.clone())]),
                100,
            );
            let r = w.write_all(&plain).and_then(|()| w.finish().map(|_| ()));
            let e = r.expect_err("the token must be found");
            assert!(e.get_ref().unwrap().is::<LeakFound>(), "{at}");
        }
    }

    #[test]
    fn transit_key_versions() {
        assert_eq!(key_version("vault:v1:abc"), Some(1));
        assert_eq!(key_version("vault:v12:abc"), Some(12));
        assert_eq!(key_version("vault:v0:abc"), None);
        assert_eq!(key_version("vault:1:abc"), None);
    }
}
