//! Switches that turn one feature of the request path off, so that the catalog benchmark can
//! print what each feature costs (`api/benches/catalog.rs`).
//!
//! They exist only in a build with the cargo feature `bench-switches`, which `make bench` turns on
//! for the benchmark's own build of the binary; one of them turns authentication off, so no
//! release is ever built with it. Without the feature, [`is_off`] is a constant `false` and the
//! environment variable is not read.
//!
//! `STELLA_BENCH_OFF` names the features to turn off, comma-separated: `auth` (every request acts
//! as the tenant of `STELLA_BENCH_TENANT` with every scope, its token unread), `metrics` (no
//! request counters or latency histogram), `tracing` (no request span, no `answered` event),
//! `problems` (no panic catcher, no problem+json rewriting of error answers, no request id).

/// A feature of the request path that a bench build can turn off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// Token verification and the scope check.
    Auth,
    /// The request counters and latency histogram.
    Metrics,
    /// The request span and the per-request event.
    Tracing,
    /// The panic catcher, error answers rewritten as problem+json, and the request id.
    Problems,
}

impl Feature {
    const ALL: [Feature; 4] = [Feature::Auth, Feature::Metrics, Feature::Tracing, Feature::Problems];

    fn name(self) -> &'static str {
        match self {
            Feature::Auth => "auth",
            Feature::Metrics => "metrics",
            Feature::Tracing => "tracing",
            Feature::Problems => "problems",
        }
    }
}

/// The environment variable naming the features a bench build turns off.
pub const OFF_ENV: &str = "STELLA_BENCH_OFF";
/// The tenant every request acts as when `auth` is off.
pub const TENANT_ENV: &str = "STELLA_BENCH_TENANT";

/// The features named by `value` (comma-separated), or the name that is not one.
pub fn parse(value: &str) -> Result<Vec<Feature>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|name| {
            Feature::ALL.into_iter().find(|f| f.name() == name).ok_or_else(|| {
                let known: Vec<&str> = Feature::ALL.iter().map(|f| f.name()).collect();
                format!("{OFF_ENV}: `{name}` is not a feature (known: {})", known.join(", "))
            })
        })
        .collect()
}

#[cfg(feature = "bench-switches")]
fn switched_off() -> &'static [Feature] {
    static OFF: std::sync::LazyLock<Vec<Feature>> = std::sync::LazyLock::new(|| {
        let value = std::env::var(OFF_ENV).unwrap_or_default();
        parse(&value).unwrap_or_else(|e| panic!("{e}"))
    });
    &OFF
}

/// Whether this (bench) build was told to turn `feature` off. Always `false` in a normal build.
#[cfg(feature = "bench-switches")]
pub fn is_off(feature: Feature) -> bool {
    switched_off().contains(&feature)
}

/// Whether this (bench) build was told to turn `feature` off. Always `false` in a normal build.
#[cfg(not(feature = "bench-switches"))]
#[inline(always)]
pub const fn is_off(_feature: Feature) -> bool {
    false
}

/// Checks `STELLA_BENCH_OFF` when the service starts, so that a misspelt feature fails the start
/// rather than the first request, and says loudly what is off.
pub fn announce() -> Result<(), String> {
    if !cfg!(feature = "bench-switches") {
        return Ok(());
    }
    let off = parse(&std::env::var(OFF_ENV).unwrap_or_default())?;
    if off.contains(&Feature::Auth) && std::env::var(TENANT_ENV).is_err() {
        return Err(format!("{OFF_ENV} turns auth off: set {TENANT_ENV} to the tenant requests act as"));
    }
    if !off.is_empty() {
        let names: Vec<&str> = off.iter().map(|f| f.name()).collect();
        tracing::warn!(off = names.join(","), "a benchmark build with request-path features turned off");
    }
    Ok(())
}

/// The principal every request acts as when `auth` is off: the bench tenant, every scope. Read
/// from the environment once, so that the switch costs no more than the feature it replaces.
pub fn bench_principal() -> crate::identity::Principal {
    static PRINCIPAL: std::sync::LazyLock<crate::identity::Principal> =
        std::sync::LazyLock::new(|| crate::identity::Principal {
            caller: crate::identity::Caller {
                tenant: std::env::var(TENANT_ENV).unwrap_or_default(),
                subject: "bench".into(),
            },
            scopes: crate::identity::SCOPES.iter().map(|s| s.to_string()).collect(),
        });
    PRINCIPAL.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_names_are_parsed_and_a_misspelt_one_is_refused() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("auth, tracing").unwrap(), vec![Feature::Auth, Feature::Tracing]);
        let e = parse("auth,metric").unwrap_err();
        assert!(e.contains("`metric` is not a feature") && e.contains("metrics"), "{e}");
    }
}
