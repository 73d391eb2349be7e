//! `log`: guest log lines, redacted and kept within the log budget; a flood stops the guest.

use super::{HostState, elapsed_ms, lock};
use crate::bindings::log::{Host, Level};

impl Host for HostState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        let at_ms = elapsed_ms(self.cx.started);
        lock(&self.cx.journal).log(level, &message, at_ms).map_err(wasmtime::Error::new)
    }
}
