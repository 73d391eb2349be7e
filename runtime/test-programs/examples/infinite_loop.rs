//! Never returns.
use stella_connector_sdk::prelude::*;

struct Spin;

impl Connector for Spin {
    fn test_connection(_: &ConnectionConfig) -> TestResult {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

register_connector!(Spin);
