// The cases of the hostile programs that take one from their configuration. This file is
// included by the programs' crate and by the artifacts crate, so the host-side tests and the
// benchmarks run exactly the cases the programs know.

/// The floods of `flood` (`configuration.flood`).
pub const FLOODS: &[&str] = &[
    "send-allowed",
    "send-refused",
    "send-for-token",
    "resolve-keep",
    "resolve-drop",
    "resolve-foreign",
    "reveal",
    "sign-jwt",
    "sign-jwt-keep",
    "log-empty",
    "log-long",
    "stdout",
    "stderr",
    "wasi-socket",
    "wasi-pollables",
    "secret-method",
];

/// The cases of `oversized` (`configuration.oversized`).
pub const OVERSIZED_CASES: &[&str] = &[
    "result-message",
    "result-steps",
    "result-facts",
    "result-huge",
    "request-headers",
    "request-url",
    "request-body",
    "token-pointers",
    "aliased-headers",
    "random-bytes",
];
