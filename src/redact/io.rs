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
        let Some(w) = self.inner.as_mut() else {
            return Ok(());
        };
        // Written bytes are dropped once, at the end: dropping them after
        // each partial write moved the rest every time, quadratic for one
        // large write into a pipe that takes 64 KiB at a time.
        let mut done = 0;
        let result = loop {
            if done == self.out.len() {
                break Ok(());
            }
            match w.write(&self.out[done..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.out.drain(..done);
        result
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;
    use crate::redact::RedactorBuilder;
    use secrecy::SecretString;

    /// Takes at most 7 bytes per write; while `flaky`, every third call is
    /// interrupted and every fifth fails, as a slow, busy pipe would.
    struct Trickle {
        got: Vec<u8>,
        calls: usize,
        flaky: Rc<Cell<bool>>,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.flaky.get() && self.calls.is_multiple_of(3) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            if self.flaky.get() && self.calls.is_multiple_of(5) {
                return Err(io::Error::other("pipe busy"));
            }
            let n = buf.len().min(7);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_and_errors_lose_and_repeat_nothing() {
        let mut b = RedactorBuilder::new();
        b.add_secret(&SecretString::from("FAKE-secret-value-42"))
            .expect("long enough");
        let r = b.build().expect("builds");
        let text: String = (0..200)
            .map(|i| format!("line {i} FAKE-secret-value-42 done\n"))
            .collect();
        let flaky = Rc::new(Cell::new(true));
        let mut w = RedactWriter::new(
            &r,
            Trickle {
                got: Vec::new(),
                calls: 0,
                flaky: Rc::clone(&flaky),
            },
        );
        let mut errors = 0;
        for chunk in text.as_bytes().chunks(333) {
            // An error is from draining earlier output, before the input is
            // taken: the same chunk is written again.
            loop {
                match w.write(chunk) {
                    Ok(n) => {
                        assert_eq!(n, chunk.len());
                        break;
                    }
                    Err(_) => errors += 1,
                }
            }
        }
        assert!(errors > 0, "the pipe never failed: the test tests nothing");
        flaky.set(false);
        let got = w.finish().expect("a clean pipe takes the rest").got;
        assert_eq!(
            String::from_utf8(got).expect("UTF-8"),
            r.redact(&text),
            "output lost or repeated"
        );
    }
}
