//! The StellaOps Integration Catalog service: the domain model and lifecycle, the stores, the
//! audit trail and event outbox, the HTTP API and the command line.
//!
//! Map of the crate:
//! - [`domain`]: the `Integration` entity and the validation of client input;
//! - [`lifecycle`]: the one state machine that moves an integration's status;
//! - [`store`]: the store trait, its SQLite and PostgreSQL implementations, audit chain and outbox;
//! - [`service`]: the catalog's operations (what each API call does), over store and sandbox;
//! - [`cli`]: the `stella-integrations` command line.

pub mod cli;
pub mod domain;
pub mod lifecycle;
pub mod service;
pub mod store;
