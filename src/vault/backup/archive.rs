//! The volume as a tar stream, and back (`spec/codex-backups.md` §3).
//!
//! Writing walks the volume without following a symbolic link: a link is
//! stored as a link, so a link in the volume pointing at the worker's token
//! file or at `/etc` cannot pull that file into a backup. A file is opened
//! with `O_NOFOLLOW` and checked to be the file the walk saw, so swapping it
//! for a link mid-walk does not help either. Directories, regular files and
//! symbolic links are all a volume may hold; anything else is refused.
//!
//! Extracting trusts nothing in the archive: every entry's path is made of
//! plain names only (no `..`, no absolute path), its directory must be one
//! this extraction created (so never a link), files are created new with
//! `O_NOFOLLOW`, a link must point inside the target when resolved from its
//! own directory, and only directories, regular files and links are
//! accepted. Modes keep their permission bits (set-id and sticky bits are
//! dropped); directory modes are set last, deepest first, so a read-only
//! directory does not stop its own extraction. Ownership is the restorer's.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use tar::{Builder, EntryType, Header};

use super::super::inspect::server_text;
use super::envelope::corrupt;

/// What a walk or an extraction counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Regular files.
    pub files: u64,
    /// Directories (the root not included).
    pub dirs: u64,
    /// Symbolic links.
    pub links: u64,
    /// Bytes of regular files.
    pub bytes: u64,
}

/// A path as shown in messages (from an archive anyone with the data key
/// may have written: control characters as `?`, length capped).
fn shown(p: &Path) -> String {
    server_text(&p.to_string_lossy())
}

/// Writes the volume at `root` as a tar stream into `out`, entries in name
/// order, paths relative to `root`. Errors other than I/O ones (a special
/// file, a file that changed while it was read) are `InvalidInput`.
///
/// The walk goes by directory file descriptors (`openat` with
/// `O_NOFOLLOW`, each checked against the `lstat` the listing saw), never
/// by path: a directory swapped for a link to `/etc` while its subtree is
/// walked is noticed, not followed.
pub fn write_volume<W: Write>(root: &Path, out: W) -> io::Result<(W, Counts)> {
    let dir = rustix::fs::open(root, DIR_FLAGS, Mode::empty()).map_err(|e| {
        if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is not a directory (a link is not followed)",
                    root.display()
                ),
            )
        } else {
            io::Error::from(e)
        }
    })?;
    let mut builder = Builder::new(out);
    let mut counts = Counts::default();
    walk(&mut builder, &dir, Path::new(""), &mut counts)?;
    let out = builder.into_inner()?;
    Ok((out, counts))
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Whether `fd` is the file `seen` described (same device and inode).
fn same(fd: &OwnedFd, seen: &rustix::fs::Stat) -> io::Result<bool> {
    let now = rustix::fs::fstat(fd)?;
    Ok(now.st_dev == seen.st_dev && now.st_ino == seen.st_ino)
}

fn walk<W: Write>(
    b: &mut Builder<W>,
    dir: &OwnedFd,
    rel: &Path,
    counts: &mut Counts,
) -> io::Result<()> {
    let mut names: Vec<OsString> = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(OsString::from_vec(name));
        }
    }
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let st = rustix::fs::statat(dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)?;
        let ft = FileType::from_raw_mode(st.st_mode);
        let mut h = Header::new_gnu();
        h.set_mode(st.st_mode & 0o777);
        h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        match ft {
            FileType::Directory => {
                let sub = rustix::fs::openat(dir, name.as_os_str(), DIR_FLAGS, Mode::empty())
                    .map_err(|_| changed(&rel))?;
                if !same(&sub, &st)? {
                    return Err(changed(&rel));
                }
                h.set_entry_type(EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, &rel, io::empty())?;
                counts.dirs += 1;
                walk(b, &sub, &rel, counts)?;
            }
            FileType::Symlink => {
                h.set_entry_type(EntryType::Symlink);
                h.set_size(0);
                let target = rustix::fs::readlinkat(dir, name.as_os_str(), Vec::new())?;
                let target = PathBuf::from(OsString::from_vec(target.into_bytes()));
                b.append_link(&mut h, &rel, &target)?;
                counts.links += 1;
            }
            FileType::RegularFile => {
                let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(dir, name.as_os_str(), flags, Mode::empty())
                    .map_err(|_| changed(&rel))?;
                if !same(&fd, &st)?
                    || !FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode).is_file()
                {
                    return Err(changed(&rel));
                }
                let len = u64::try_from(st.st_size).unwrap_or(0);
                h.set_entry_type(EntryType::Regular);
                h.set_size(len);
                // Large reads: `io::copy` inside the builder takes 8 KiB at a time
                // from an unbuffered reader.
                let data =
                    io::BufReader::with_capacity(1 << 18, Exactly::new(File::from(fd), len, &rel));
                b.append_data(&mut h, &rel, data)?;
                counts.files += 1;
                counts.bytes += len;
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is a socket, pipe or device: a volume backup holds directories, regular files and symbolic links only",
                        shown(&rel)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn changed(rel: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} changed while it was backed up (stop the worker using the volume first)",
            shown(rel)
        ),
    )
}

/// Reads exactly `len` bytes of a file whose size was announced in its tar
/// header: a file that shrinks or grows while it is read is an error.
struct Exactly {
    file: File,
    left: u64,
    rel: PathBuf,
}

impl Exactly {
    fn new(file: File, len: u64, rel: &Path) -> Exactly {
        Exactly {
            file,
            left: len,
            rel: rel.to_owned(),
        }
    }
}

impl Read for Exactly {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // The announced size is reached: the file must end here.
            let mut probe = [0u8; 1];
            return match self.file.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(changed(&self.rel)),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(changed(&self.rel));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The longest GNU long-name record accepted (Linux's `PATH_MAX`).
const MAX_NAME: usize = 4096;

/// What an entry may be.
enum Kind {
    Dir,
    File,
    Link,
}

/// Extracts the tar stream `input` into `root`, an empty directory this
/// process just created. Every refusal is a [`Corrupt`](super::envelope::Corrupt)
/// error; other errors are the disk's.
pub fn extract<R: Read>(input: R, root: &Path) -> io::Result<(R, Counts)> {
    let mut archive = tar::Archive::new(input);
    let mut counts = Counts::default();
    // Directories this extraction made (never links), with their modes.
    let mut dirs: HashSet<PathBuf> = HashSet::new();
    let mut modes: Vec<(PathBuf, u32)> = Vec::new();
    let mut buf = zeroize::Zeroizing::new(vec![0u8; 1 << 18]);
    // Raw entries: GNU long-name records are read here, with a cap (the tar
    // crate would read one of any size into memory).
    let (mut long_name, mut long_link): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
    for entry in archive.entries()?.raw(true) {
        let mut entry = entry?;
        let ty = entry.header().entry_type();
        if ty.is_gnu_longname() || ty.is_gnu_longlink() {
            let size = entry.header().entry_size()?;
            if size > MAX_NAME as u64 {
                return Err(corrupt(format!("a long-name record of {size} bytes")));
            }
            let mut name = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut name)?;
            while name.last() == Some(&0) {
                name.pop();
            }
            let slot = if ty.is_gnu_longname() {
                &mut long_name
            } else {
                &mut long_link
            };
            if slot.replace(name).is_some() {
                return Err(corrupt("two long-name records for one entry"));
            }
            continue;
        }
        if ty.is_pax_local_extensions() || ty.is_pax_global_extensions() {
            return Err(corrupt("a pax extension record: a volume backup has none"));
        }
        let raw = PathBuf::from(OsString::from_vec(
            long_name
                .take()
                .unwrap_or_else(|| entry.path_bytes().into_owned()),
        ));
        let link = long_link
            .take()
            .or_else(|| entry.link_name_bytes().map(|b| b.into_owned()))
            .map(|b| PathBuf::from(OsString::from_vec(b)));
        let rel = plain_path(&raw)?;
        let kind = match ty {
            EntryType::Directory => Kind::Dir,
            EntryType::Regular | EntryType::Continuous => Kind::File,
            EntryType::Symlink => Kind::Link,
            other => {
                return Err(corrupt(format!(
                    "archive entry {} is of type {other:?}: a volume backup holds directories, regular files and symbolic links only",
                    shown(&raw)
                )));
            }
        };
        let Some(rel) = rel else {
            // `.` itself: the root, made by the caller.
            continue;
        };
        let parent = rel.parent().unwrap_or(Path::new(""));
        if !parent.as_os_str().is_empty() && !dirs.contains(parent) {
            return Err(corrupt(format!(
                "archive entry {} is not inside a directory the archive made before it",
                shown(&raw)
            )));
        }
        let mode = entry.header().mode()? & 0o777;
        let path = root.join(&rel);
        let made = match kind {
            Kind::Dir => DirBuilder::new().mode(0o700).create(&path).map(|()| {
                modes.push((rel.clone(), mode));
                dirs.insert(rel.clone());
                counts.dirs += 1;
            }),
            Kind::File => OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .and_then(|mut f| {
                    counts.bytes += copy_large(&mut entry, &mut f, &mut buf)?;
                    f.set_permissions(fs::Permissions::from_mode(mode))?;
                    counts.files += 1;
                    Ok(())
                }),
            Kind::Link => {
                let target =
                    link.ok_or_else(|| corrupt(format!("link {} has no target", shown(&raw))))?;
                if !inside(parent, &target) {
                    return Err(corrupt(format!(
                        "link {} points outside the volume",
                        shown(&raw)
                    )));
                }
                std::os::unix::fs::symlink(&target, &path).map(|()| counts.links += 1)
            }
        };
        made.map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                corrupt(format!("archive entry {} appears twice", shown(&raw)))
            } else {
                e
            }
        })?;
    }
    // Deepest first, so a read-only directory is closed after its contents.
    modes.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (rel, mode) in modes {
        fs::set_permissions(root.join(rel), fs::Permissions::from_mode(mode))?;
    }
    Ok((archive.into_inner(), counts))
}

/// `io::copy` with a large buffer (it would take 8 KiB per write), which is
/// zeroized afterwards (it held volume content).
fn copy_large(from: &mut impl Read, to: &mut File, buf: &mut [u8]) -> io::Result<u64> {
    let mut n = 0u64;
    loop {
        let got = match from.read(buf) {
            Ok(0) => return Ok(n),
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..got])?;
        n += got as u64;
    }
}

/// The entry's path as plain names (`None` for `.`), or why it is refused.
fn plain_path(raw: &Path) -> io::Result<Option<PathBuf>> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => {
                return Err(corrupt(format!(
                    "archive entry {} is not a relative path of plain names",
                    shown(raw)
                )));
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Whether a link in directory `dir` (relative to the root) with `target`
/// stays inside the root. The target must be `(../)*name(/name)*`: leading
/// `..`s (at most as many as `dir` is deep) go up through `dir`'s own
/// ancestors, which the extraction made (real directories), and then only
/// names. A `..` after a name is refused, because the name may be a link:
/// with `l -> .`, `l/l/l/../../..` counts as inside by names but resolves
/// three levels above the root. By induction every link then resolves
/// inside the root.
fn inside(dir: &Path, target: &Path) -> bool {
    let mut up = 0usize;
    let mut named = false;
    for c in target.components() {
        match c {
            Component::ParentDir if !named => up += 1,
            Component::Normal(_) => named = true,
            Component::CurDir => {}
            _ => return false,
        }
    }
    up <= dir.components().count()
}

#[cfg(test)]
mod tests {
    use super::super::envelope::as_corrupt;
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A raw entry: name bytes, type, link target, data.
    type Raw<'a> = (&'a [u8], EntryType, &'a [u8], &'a [u8]);

    /// A tar stream of raw entries, written without the builder's checks.
    fn raw_tar(entries: &[Raw]) -> Vec<u8> {
        let mut b = Builder::new(Vec::new());
        for (name, ty, link, data) in entries {
            let mut h = Header::new_gnu();
            {
                let g = h.as_gnu_mut().unwrap();
                g.name[..name.len()].copy_from_slice(name);
                g.linkname[..link.len()].copy_from_slice(link);
            }
            h.set_entry_type(*ty);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn refused(entries: &[Raw]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("r");
        fs::create_dir(&root).unwrap();
        let e = extract(&raw_tar(entries)[..], &root).expect_err("must be refused");
        let msg = as_corrupt(&e).unwrap_or_else(|| panic!("not a Corrupt error: {e}"));
        // Nothing escaped next to the root.
        let mut beside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        beside.sort();
        assert_eq!(beside, ["r"], "{msg}");
        msg
    }

    use EntryType::{Block, Char, Directory, Fifo, Link, Regular, Symlink};

    #[test]
    fn escaping_entries_are_refused() {
        assert!(refused(&[(b"../evil", Regular, b"", b"x")]).contains("plain names"));
        assert!(refused(&[(b"a/../../evil", Regular, b"", b"x")]).contains("plain names"));
        assert!(refused(&[(b"/etc/evil", Regular, b"", b"x")]).contains("plain names"));
        assert!(refused(&[(b"up", Symlink, b"..", b"")]).contains("outside"));
        assert!(refused(&[(b"abs", Symlink, b"/etc/passwd", b"")]).contains("outside"));
        assert!(
            refused(&[
                (b"d", Directory, b"", b""),
                (b"d/up", Symlink, b"../../x", b"")
            ])
            .contains("outside")
        );
        // A link made first, then a file written through it.
        assert!(
            refused(&[
                (b"d", Directory, b"", b""),
                (b"l", Symlink, b"d", b""),
                (b"l/f", Regular, b"", b"x")
            ])
            .contains("not inside a directory")
        );
        // A link, then a file of the same name (which would be written
        // through the link).
        assert!(
            refused(&[(b"f", Symlink, b"g", b""), (b"f", Regular, b"", b"x")]).contains("twice")
        );
        for ty in [Link, Char, Block, Fifo] {
            assert!(refused(&[(b"x", ty, b"y", b"")]).contains("regular files"));
        }
        // A chain of links that escapes only when the kernel follows them.
        assert!(
            refused(&[
                (b"l", Symlink, b".", b""),
                (b"e", Symlink, b"l/l/l/../../..", b"")
            ])
            .contains("outside")
        );
    }

    #[test]
    fn long_name_records_are_capped() {
        // A GNU long-name record of 64 KiB: refused before it is read.
        let mut b = Builder::new(Vec::new());
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::GNULongName);
        h.set_size(64 * 1024);
        h.set_cksum();
        b.append(&h, &vec![b'a'; 64 * 1024][..]).unwrap();
        let tar = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let e = extract(&tar[..], dir.path()).unwrap_err();
        assert!(as_corrupt(&e).unwrap().contains("long-name record"), "{e}");
    }

    #[test]
    fn long_names_round_trip() {
        let src = tempfile::tempdir().unwrap();
        let deep = "d".repeat(90);
        let long = src.path().join(&deep).join("f".repeat(150));
        fs::create_dir_all(long.parent().unwrap()).unwrap();
        fs::write(&long, b"x").unwrap();
        std::os::unix::fs::symlink("l".repeat(120), src.path().join("ln")).unwrap();
        let (tar, _) = write_volume(src.path(), Vec::new()).unwrap();
        let dst = tempfile::tempdir().unwrap();
        extract(&tar[..], dst.path()).unwrap();
        assert_eq!(
            fs::read(dst.path().join(&deep).join("f".repeat(150))).unwrap(),
            b"x"
        );
        assert_eq!(
            fs::read_link(dst.path().join("ln")).unwrap(),
            Path::new(&"l".repeat(120))
        );
    }

    #[test]
    fn links_inside_the_volume_are_kept() {
        assert!(inside(Path::new("a/b"), Path::new("../c")));
        assert!(inside(Path::new("a/b"), Path::new("../../c/d")));
        assert!(inside(Path::new(""), Path::new(".")));
        assert!(!inside(Path::new("a"), Path::new("../../c")));
        assert!(!inside(Path::new(""), Path::new("/c")));
        // `..` after a name: the name may be a link (`l -> .`).
        assert!(!inside(Path::new("a"), Path::new("./b/../../c")));
        assert!(!inside(Path::new(""), Path::new("l/l/l/../../..")));
    }

    #[test]
    fn a_volume_round_trips_with_modes_and_links() {
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        fs::create_dir(s.join("sub")).unwrap();
        fs::write(s.join("sub/auth.json"), b"{\"fake\": true}").unwrap();
        fs::set_permissions(s.join("sub/auth.json"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(s.join("run.sh"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(s.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(s.join("empty"), b"").unwrap();
        std::os::unix::fs::symlink("sub/auth.json", s.join("current")).unwrap();
        fs::set_permissions(s.join("sub"), fs::Permissions::from_mode(0o500)).unwrap();
        let (tar, counts) = write_volume(s, Vec::new()).unwrap();
        assert_eq!(
            counts,
            Counts {
                files: 3,
                dirs: 1,
                links: 1,
                bytes: 24
            }
        );
        let dst = tempfile::tempdir().unwrap();
        let (_, back) = extract(&tar[..], dst.path()).unwrap();
        assert_eq!(back, counts);
        let d = dst.path();
        assert_eq!(
            fs::read(d.join("sub/auth.json")).unwrap(),
            b"{\"fake\": true}"
        );
        let mode = |p: &str| fs::symlink_metadata(d.join(p)).unwrap().mode() & 0o777;
        assert_eq!(mode("sub/auth.json"), 0o600);
        assert_eq!(mode("run.sh"), 0o755);
        assert_eq!(mode("sub"), 0o500);
        assert_eq!(
            fs::read_link(d.join("current")).unwrap(),
            Path::new("sub/auth.json")
        );
        // So that the temp dirs can be removed.
        fs::set_permissions(s.join("sub"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(d.join("sub"), fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn a_link_to_the_token_file_is_stored_as_a_link() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("token"), b"hvs.FAKEFAKEFAKE").unwrap();
        let vol = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("token"), vol.path().join("t")).unwrap();
        let (tar, counts) = write_volume(vol.path(), Vec::new()).unwrap();
        assert_eq!(counts.links, 1);
        assert!(memchr::memmem::find(&tar, b"hvs.FAKEFAKEFAKE").is_none());
    }

    #[test]
    fn a_volume_that_is_a_link_is_not_followed() {
        let real = tempfile::tempdir().unwrap();
        fs::write(real.path().join("f"), b"x").unwrap();
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(real.path(), d.path().join("vol")).unwrap();
        let e = write_volume(&d.path().join("vol"), Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    }

    #[test]
    fn special_files_are_refused_at_backup() {
        let vol = tempfile::tempdir().unwrap();
        let fifo = std::ffi::CString::new(vol.path().join("p").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let e = write_volume(vol.path(), Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("socket, pipe or device"));
    }
}
