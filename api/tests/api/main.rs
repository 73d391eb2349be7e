//! The service's integration tests, in one binary (one link of the whole tree instead of one per
//! file) with a module per concern:
//!
//! - `cli`: the commands, run as a user runs them (the real binary);
//! - `e2e`: the real binary started as the README starts it, over loopback HTTP, with NATS, and
//!   the console in a real browser;
//! - `http`: the HTTP API in process (the real router over SQLite and the real sandbox);
//! - `layers`: the modules of `api/src` import only from modules below them;
//! - `service`: the catalog's operations over the real sandbox and a real SQLite store;
//! - `store`: the store conformance suite, on SQLite and PostgreSQL.
//!
//! `cargo test -p stella-integrations --test api -- http::` runs one module.

mod cli;
mod common;
mod e2e;
mod http;
mod layers;
mod service;
mod store;
