//! One scrub for everything the CLI prints.
//!
//! A token pasted where a ref, a flag value or a file belongs must not land
//! in a CI log because the CLI echoed it back (a caret view, a JSON `ref`
//! member, a "not allowed" message, clap's "invalid value" error). So every
//! line the CLI writes on its own behalf goes through [`stdout`] / [`stderr`]
//! (the `outln!` / `errln!` macros): the library's streaming redactor with the
//! token rules only, the same table the payload lint uses. Lines come out as
//! soon as they are complete; [`finish`] writes any last partial line at exit.
//!
//! Two streams are deliberately not scrubbed here: `vaultref redact`'s own
//! output (it *is* a redactor, with the user's settings, `--no-builtin-rules`
//! included) and `vaultref git-credential`'s stdout (the credential protocol
//! git reads, which must carry the token to git).

use std::io::{self, Write};
use std::sync::{LazyLock, Mutex, MutexGuard};

use vaultref::redact::{RedactWriter, Redactor};

static RULES: LazyLock<Redactor> = LazyLock::new(Redactor::builtin);

type Scrubbed<W> = Mutex<Option<RedactWriter<W>>>;

static STDOUT: LazyLock<Scrubbed<io::Stdout>> =
    LazyLock::new(|| Mutex::new(Some(RedactWriter::new(&RULES, io::stdout()))));
static STDERR: LazyLock<Scrubbed<io::Stderr>> =
    LazyLock::new(|| Mutex::new(Some(RedactWriter::new(&RULES, io::stderr()))));

/// A locked, scrubbing writer; falls back to discarding after [`finish`].
pub struct Out<W: Write + 'static>(MutexGuard<'static, Option<RedactWriter<W>>>);

impl<W: Write> Write for Out<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.as_mut() {
            Some(w) => w.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.0.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

/// Standard output, scrubbed.
pub fn stdout() -> Out<io::Stdout> {
    Out(STDOUT.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Standard error, scrubbed.
pub fn stderr() -> Out<io::Stderr> {
    Out(STDERR.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Writes what is still held back (a last line without a newline).
pub fn finish() {
    if let Some(w) = STDOUT.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = w.finish();
    }
    if let Some(w) = STDERR.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = w.finish();
    }
}

/// `println!` through the scrub.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!($crate::output::stdout(), $($arg)*);
    }};
}

/// `eprintln!` through the scrub.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!($crate::output::stderr(), $($arg)*);
    }};
}
