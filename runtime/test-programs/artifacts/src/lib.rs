//! Paths of the compiled test programs; see `build.rs`.

include!(concat!(env!("OUT_DIR"), "/gen.rs"));

include!("../../src/cases.rs");
