//! `log`: guest log lines, redacted, size-capped; a flood traps the guest.

use super::{HostState, elapsed_ms, lock};
use crate::bindings::log::{Host, Level};
use crate::limits::LimitKind;
use crate::outcome::truncate;
use crate::record::LogLine;

/// A single line longer than this is cut (the rest still counts against the budget).
const MAX_LINE: usize = 4096;

/// Raised when the guest's logs exceed their budget.
#[derive(Debug, thiserror::Error)]
#[error("the connector exceeded its log budget of {0} bytes")]
pub(crate) struct LogBudgetExceeded(pub u64);

impl Host for HostState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let mut j = lock(&self.cx.journal);
        j.log_bytes = j.log_bytes.saturating_add(message.len() as u64);
        if j.log_bytes > self.cx.limits.max_log_bytes {
            j.limit_hit.get_or_insert(LimitKind::LogBytes);
            return Err(wasmtime::Error::new(LogBudgetExceeded(self.cx.limits.max_log_bytes)));
        }
        let message = truncate(j.redactor.redact(&message), MAX_LINE);
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        j.logs.push(LogLine { level: level.to_string(), message, at_ms: elapsed_ms(self.cx.started) });
        Ok(())
    }
}
