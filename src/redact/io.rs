//! Writer wrappers: redact everything written through them.
//!
//! Both wrappers accept a write only after the previous output has reached
//! the inner writer, so their own buffer stays at one write's worth, and an
//! error from the inner writer is reported without losing or repeating input:
//! a write that returns an error consumed nothing.
//!
//! `flush` flushes what has been decided; it does not force out bytes the
//! engine is holding (an incomplete line, or a line that may begin a
//! multi-line secret), because cutting there could split a secret. Call
//! `finish` (or `shutdown` for the async one) at the end of the stream.

use std::io::{self, Write};

use super::engine::{RedactStream, Redactor};

/// A [`std::io::Write`] that redacts what goes through it.
#[derive(Debug)]
pub struct RedactWriter<W: Write> {
    inner: Option<W>,
    stream: RedactStream,
    out: Vec<u8>,
}

impl<W: Write> RedactWriter<W> {
    /// Wraps `inner`.
    pub fn new(redactor: &Redactor, inner: W) -> Self {
        RedactWriter {
            inner: Some(inner),
            stream: redactor.stream(),
            out: Vec::new(),
        }
    }

    fn drain(&mut self) -> io::Result<()> {
        if let Some(w) = self.inner.as_mut() {
            while !self.out.is_empty() {
                match w.write(&self.out) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        self.out.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Ends the stream: writes everything held back, flushes, and returns
    /// the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.drain()?;
        self.stream.finish(&mut self.out);
        self.drain()?;
        let mut w = self.inner.take().expect("inner is present until finish");
        w.flush()?;
        Ok(w)
    }
}

impl<W: Write> Write for RedactWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.drain()?;
        self.stream.push(buf, &mut self.out);
        // The input is taken now; an error here resurfaces on the next call.
        let _ = self.drain();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> Drop for RedactWriter<W> {
    fn drop(&mut self) {
        // Best effort, like `BufWriter`: a writer dropped without `finish`
        // still gets its tail. Errors cannot be reported from `drop`.
        if self.inner.is_some() {
            let _ = self.drain();
            self.stream.finish(&mut self.out);
            let _ = self.drain();
            if let Some(w) = self.inner.as_mut() {
                let _ = w.flush();
            }
        }
    }
}
