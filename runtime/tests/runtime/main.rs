//! The sandbox's integration tests, in one binary (one link of the whole tree instead of one per
//! file) with a module per concern:
//!
//! - `sandbox`: the boundary tests, real components against the real sandbox and a local stub;
//! - `host_memory`: the host's own memory under every hostile program (it measures its process's
//!   peak, so it runs alone in a child process of this binary);
//! - `signature`: signatures made by the tools third parties sign with.
//!
//! `cargo test -p stella-runtime --test runtime -- sandbox::` runs one module.

mod common;
mod host_memory;
mod sandbox;
mod signature;
mod stub;
