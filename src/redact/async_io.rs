//! [`AsyncRedactWriter`]: the tokio counterpart of [`super::RedactWriter`]
//! (feature `tokio`), with the same guarantees (see `io.rs`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::AsyncWrite;

use super::engine::{RedactStream, Redactor};

/// A tokio [`AsyncWrite`] that redacts what goes through it.
/// `poll_shutdown` ends the stream (writes what is held back).
#[derive(Debug)]
pub struct AsyncRedactWriter<W> {
    inner: W,
    stream: RedactStream,
    out: Vec<u8>,
    pos: usize,
    finished: bool,
}

impl<W: AsyncWrite + Unpin> AsyncRedactWriter<W> {
    /// Wraps `inner`.
    pub fn new(redactor: &Redactor, inner: W) -> Self {
        AsyncRedactWriter {
            inner,
            stream: redactor.stream(),
            out: Vec::new(),
            pos: 0,
            finished: false,
        }
    }

    /// The inner writer (call after `shutdown`).
    pub fn into_inner(self) -> W {
        self.inner
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pos < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pos += n;
        }
        self.out.clear();
        self.pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for AsyncRedactWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if this.finished {
            return Poll::Ready(Err(io::Error::other("write after shutdown")));
        }
        this.stream.push(buf, &mut this.out);
        // Output is written on the next poll (write, flush or shutdown).
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if !this.finished {
            this.finished = true;
            this.stream.finish(&mut this.out);
            ready!(this.poll_drain(cx))?;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
