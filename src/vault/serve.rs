//! An optional metrics listener: answers every HTTP request on a socket with
//! the resolver's metrics (`text/plain; version=0.0.4`).
//!
//! Deliberately minimal (read the request head, write one response, close):
//! a scrape endpoint needs no routing, keep-alive or TLS, and this avoids an
//! HTTP server dependency. Bind it to loopback or a private interface.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::Resolver;

/// Serves metrics on `listener` until the task is dropped or aborted.
/// Each connection gets one response; slow clients are cut off after 5 s.
pub async fn serve_metrics(listener: TcpListener, resolver: Arc<Resolver>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: do not spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let resolver = resolver.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), async move {
                // Read until the end of the request head (or 8 KiB).
                let mut buf = vec![0u8; 8192];
                let mut n = 0;
                while n < buf.len() {
                    match stream.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let body = resolver.metrics();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
                let _ = stream.shutdown().await;
            })
            .await;
        });
    }
}
