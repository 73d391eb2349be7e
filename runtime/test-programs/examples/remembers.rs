//! Tries to carry state from one invocation to the next: a static in the data segment (its
//! initial value comes from the component's memory image) and a zero-initialized one past the
//! image, both changed before it answers. A fresh instance per call shows neither change: every
//! call reports the first call's values.
use std::sync::atomic::{AtomicU64, Ordering};

use stella_connector_sdk::prelude::*;

/// In the data segment: its initial value is part of the component's memory image.
static IN_IMAGE: AtomicU64 = AtomicU64::new(41);
/// Zero-initialized (`.bss`): memory the image does not cover.
static ZEROED: AtomicU64 = AtomicU64::new(0);

struct Remembers;

impl Connector for Remembers {
    fn test_connection(_: &ConnectionConfig) -> TestResult {
        let in_image = IN_IMAGE.fetch_add(1, Ordering::Relaxed);
        let zeroed = ZEROED.fetch_add(1, Ordering::Relaxed);
        let mut report = Report::new();
        report.pass("state", format!("in-image {in_image}, zeroed {zeroed}"));
        report.success(format!("in-image={in_image} zeroed={zeroed}"))
    }
}

register_connector!(Remembers);
