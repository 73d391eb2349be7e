//! The guest's stdout and stderr, captured into the invocation's journal under the log budget.
//! A write past the budget stops the guest with the `log-bytes` limit named.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use super::{Journal, Output, lock};

/// What a guest may write in one go before it must wait (it never has to: writes are kept at
/// once); the budget, not this, bounds what it writes in all.
const WRITE_PERMIT: usize = 4096;

/// A captured output stream of one invocation.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    journal: Arc<Mutex<Journal>>,
    stream: Output,
}

impl GuestOutput {
    pub fn new(journal: Arc<Mutex<Journal>>, stream: Output) -> Self {
        Self { journal, stream }
    }

    fn keep(&self, bytes: &[u8]) -> Result<(), super::LimitExceeded> {
        lock(&self.journal).write_output(self.stream, bytes)
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.keep(&bytes).map_err(|e| StreamError::Trap(wasmtime::Error::new(e)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        lock(&self.journal).check().map_err(|e| StreamError::Trap(wasmtime::Error::new(e)))?;
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.keep(buf).map(|()| buf.len()).map_err(std::io::Error::other))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
