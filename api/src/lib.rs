//! The StellaOps Integration Catalog service: the domain model and lifecycle, the stores, the
//! audit trail and event outbox, health, the HTTP API and the command line.
//!
//! # Map: which module owns what
//!
//! Requests flow one way: the doors ([`http`], [`console`], [`cli`], [`relay`], the [`health`]
//! scheduler, [`maintenance`]) → [`service`] → [`store`]. The service is the only door to the data: it alone holds
//! the store, and tenancy and the 404 rule are decided there, once; who may do what is decided in
//! [`identity`], once, and every service operation takes the grant it needs.
//!
//! The modules in layers, lowest first: a module uses only the modules listed before it (the test
//! `layers` in `api/tests/api/` reads every source file and holds them to this order).
//!
//! - [`identity`]: who is calling and what they may do: the caller, the principal, the scopes,
//!   the grants (`Reader`, `Admin`, `PluginsAdmin`, `Auditor`, `ConnectorsReader`) that only the
//!   scope check makes, the ledger scope, the console session; it imports nothing of the crate;
//! - [`lifecycle`]: the one state machine that moves an integration's status;
//! - [`domain`]: the `Integration` entity, the validation of client input, a test's run, time
//!   helpers;
//! - [`config`]: every setting (TOML file and environment), read and validated;
//! - [`metrics`]: the Prometheus counters;
//! - [`ledger`]: the invocation ledger: every connector invocation's record, and the facts drawn
//!   from it (origins contacted, AuthRefs used, denials); [`events`]: event types and their
//!   CloudEvents form; [`audit`]: audit actions, entries and the hash chain;
//! - [`plugins`]: which connector code may run: stored versions, the admission policy (trusted
//!   keys, signatures, auto-approval), the permission set a reviewer approves and its diff;
//! - [`health`]: health policy (intervals, offline sites), one check, the health report (uptime,
//!   latency, history); its `scheduler` is a door, above the service;
//! - [`query`]: the one reading of a request's query for every door: filters, paging, the page
//!   of a list and the one cursor codec;
//! - [`store`]: the store traits, one per concern, and their SQL over SQLite and PostgreSQL;
//! - [`service`]: the catalog's operations (what each API call does), over store and sandbox;
//! - [`bulk`]: export and import of a tenant's integrations by name, over the service;
//! - [`auth`]: verifying who is calling (bearer JWTs, sign-in links, ID tokens) into a principal;
//! - [`http`]: the axum routes, problem+json errors, extractors and the OpenAPI document;
//! - [`console`]: the web console (server-rendered HTML over the same service operations), its
//!   pages and sign-in, served by the API's router with the API's state;
//! - [`relay`]: outbox → NATS; then the health scheduler; then [`maintenance`], the one task that
//!   prunes every table that grows with time, leased across replicas;
//! - [`server`]: wiring from configuration to a running service; [`cli`]: the command line
//!   (and `main.rs`, which runs it).
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
//! - A filter or page parameter: its field and parsing in [`query`], which every door reads.
//! - Who may call an operation: the grant its service function takes ([`identity`]); a new kind of
//!   access is a new grant there, with its row in the `identity` test's table.
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
pub mod maintenance;
pub mod metrics;
pub mod plugins;
pub mod query;
pub mod relay;
pub mod server;
pub mod service;
pub mod store;
