//! The StellaOps Integration Catalog service: the domain model and lifecycle, the stores, the
//! audit trail and event outbox, the HTTP API and the command line.
//!
//! Map of the crate:
//! - [`domain`]: the `Integration` entity and the validation of client input;
//! - [`lifecycle`]: the one state machine that moves an integration's status;
//! - [`store`]: the store trait, its SQLite and PostgreSQL implementations, audit chain and outbox;
//! - [`service`]: the catalog's operations (what each API call does), over store and sandbox;
//! - [`http`]: the axum routes, problem+json errors, middleware and the OpenAPI document;
//! - [`auth`]: bearer JWT verification, scopes and tenants, the local token key;
//! - [`metrics`]: the Prometheus counters;
//! - [`bulk`]: export and import of a tenant's integrations by name;
//! - [`scheduler`]: the health checks of every integration in service, leased per replica;
//! - [`server`]: wiring from configuration to a running service; [`relay`]: outbox → NATS;
//! - [`config`]: the service configuration (TOML file and environment);
//! - [`cli`]: the `stella-integrations` command line (including `serve`).

pub mod auth;
pub mod bulk;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod relay;
pub mod scheduler;
pub mod server;
pub mod service;
pub mod store;
