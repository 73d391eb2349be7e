//! The built-in connectors, embedded in the service binary as component bytes.

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));
