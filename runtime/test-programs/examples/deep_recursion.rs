//! Recurses without end.
use stella_connector_sdk::prelude::*;

struct Deep;

// Only wasm locals, so it is the wasm stack (not the shadow stack in linear memory) that
// runs out.
fn down(n: u64) -> u64 {
    if std::hint::black_box(n) == u64::MAX { 0 } else { down(n + 1) + 1 }
}

impl Connector for Deep {
    fn test_connection(_: &ConnectionConfig) -> TestResult {
        let _ = std::hint::black_box(down(0));
        unreachable!()
    }
}

register_connector!(Deep);
