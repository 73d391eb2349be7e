//! The StellaOps Integration Catalog service: the domain model and lifecycle, the stores, the
//! audit trail and event outbox, health, the HTTP API and the command line.
//!
//! # Map: which module owns what
//!
//! Requests flow one way: [`http`] (and [`console`], [`cli`], [`relay`], the [`health`] scheduler) →
//! [`service`] → [`store`]. The service is the only door to the data: it alone holds the store,
//! and tenancy and the 404 rule are decided there, once.
//!
//! - [`domain`]: the `Integration` entity, the validation of client input, time helpers;
//! - [`lifecycle`]: the one state machine that moves an integration's status;
//! - [`ledger`]: the invocation ledger: every connector invocation's record, and the facts drawn
//!   from it (origins contacted, AuthRefs used, denials);
//! - [`audit`]: audit actions, entries and the hash chain; [`events`]: event types and their
//!   CloudEvents form;
//! - [`plugins`]: which connector code may run: stored versions, the admission policy (trusted
//!   keys, signatures, auto-approval), the permission set a reviewer approves and its diff;
//! - [`health`]: health policy (intervals, offline sites), one check and what it changes, the
//!   health report (uptime, latency, history), and the scheduler;
//! - [`service`]: the catalog's operations (what each API call does), over store and sandbox;
//! - [`store`]: the store traits, one per concern, and their SQL over SQLite and PostgreSQL;
//! - [`http`]: the axum routes, problem+json errors, extractors and the OpenAPI document;
//! - [`console`]: the web console (server-rendered HTML over the same service operations), its
//!   sessions and pages;
//! - [`auth`]: bearer JWT verification, scopes and tenants, the local token key;
//! - [`bulk`]: export and import of a tenant's integrations by name;
//! - [`metrics`]: the Prometheus counters; [`relay`]: outbox → NATS;
//! - [`config`]: the service configuration (TOML file and environment);
//! - [`server`]: wiring from configuration to a running service; [`cli`]: the command line.
//!
//! # Where a change goes
//!
//! - A new API operation: its handler in `http/` (parse, call one service operation, answer), the
//!   operation in `service/` (tenancy, lifecycle, the [`store::Change`] it writes), its queries in
//!   the store file of its concern (`store/integrations.rs`, `audit.rs`, `outbox.rs`,
//!   `health.rs`), and the route in `http/mod.rs` (which puts it in the OpenAPI document).
//! - A new lifecycle rule: [`lifecycle`] only. A new audit action or event type: the enums in
//!   [`audit`] and [`events`] (the README lists them; a test holds the list to the enums).
//! - A health rule: [`health`] (policy, check, summary); its store side in `store/health.rs`.
//! - A schema change: a new migration for each database in `migrations/`, listed in
//!   `store/sql.rs`, and the conformance suite (`api/tests/api/store.rs`) on both databases.
//! - A difference between SQLite and PostgreSQL: the [`store::Dialect`] trait.
//! - A setting: [`config`], and the README's configuration section.
//! - Connectors are not here: `connectors/` (guests), `runtime/` (the sandbox).

pub mod audit;
pub mod auth;
pub mod bulk;
pub mod cli;
pub mod config;
pub mod console;
pub mod domain;
pub mod events;
pub mod health;
pub mod http;
pub mod identity;
pub mod ledger;
pub mod lifecycle;
pub mod metrics;
pub mod plugins;
pub mod relay;
pub mod server;
pub mod service;
pub mod store;
