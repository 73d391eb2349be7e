//! Allocates until something stops it.
use stella_connector_sdk::prelude::*;

struct Hog;

impl Connector for Hog {
    fn test_connection(_: &ConnectionConfig) -> TestResult {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }
}

register_connector!(Hog);
