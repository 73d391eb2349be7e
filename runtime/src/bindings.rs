//! Host bindings of the world `integration-connector`, generated from `wit/`.
//!
//! Generated names stay in this module; the rest of the crate converts to and from the
//! crate's own types at the boundary (see `outcome.rs`).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "integration-connector",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "stellaops:integrations/secrets.secret": crate::host::SecretHandle,
    },
});

pub use stellaops::integrations::{crypto, http, log, secrets, types};
