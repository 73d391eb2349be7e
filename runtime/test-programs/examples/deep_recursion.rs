//! Recurses without end.
use std::sync::atomic::{AtomicU64, Ordering};

use stella_connector_sdk::prelude::*;

struct Deep;

static DEPTH: AtomicU64 = AtomicU64::new(0);

// Only wasm locals (no address-taken values), so it is the wasm stack, not the shadow stack in
// linear memory, that runs out; the atomic store is a side effect the optimizer must keep, and
// the multiply keeps the recursion from becoming a loop.
#[inline(never)]
fn down(n: u64) -> u64 {
    DEPTH.fetch_add(1, Ordering::Relaxed);
    if n == u64::MAX { 0 } else { down(n + 1).wrapping_mul(3).wrapping_add(n) }
}

impl Connector for Deep {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        let start = config.name.len() as u64;
        let total = down(start);
        Report::new().success(format!("returned {total}"))
    }
}

register_connector!(Deep);
