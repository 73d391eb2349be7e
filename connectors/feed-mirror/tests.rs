//! The `feed-mirror` connector's tests: its component, as the service runs it, against stand-ins that
//! answer as the provider documents (the harness is `connectors/builtin/tests/connectors.rs`).

use super::*;

fn http_date(days: i64) -> String {
    let date = date_in(days);
    let (year, month, day) = (&date[0..4], date[5..7].parse::<usize>().unwrap(), &date[8..10]);
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    // The weekday is not checked by anyone; IMF-fixdate needs one.
    format!("Mon, {day} {} {year} 00:00:00 GMT", months[month - 1])
}

fn index(generated: &str) -> Canned {
    Canned::json(
        200,
        json!({"generated": generated, "feeds": [{"name": "nvd", "path": "/nvd/"}, {"name": "osv", "path": "/osv/"}]}),
    )
}

#[tokio::test]
async fn a_fresh_index_passes_and_a_stale_one_degrades() {
    let (h, stub) = Harness::with_stub("feed-mirror").await;
    let config =
        h.integration(IntegrationType::Feed, &stub.base_url, json!({"mirrorHosts": ["127.0.0.1"], "maxAgeHours": 48}));
    stub.on("GET", "/index.json", index(&format!("{}T00:00:00Z", date_in(0))));
    let outcome = h.test(&config).await;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(step_names(&outcome), ["configuration", "reachable", "index", "fresh"]);
    assert_eq!(stub.seen()[0].header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    assert_eq!(h.health(&config).await.status, HealthStatus::Healthy);

    stub.on("GET", "/index.json", index(&format!("{}T00:00:00Z", date_in(-5))));
    h.assert_fails(&config, FailureClass::ProviderDown, "fresh", "not syncing").await;
    let health = h.health(&config).await;
    assert_eq!((health.status, health.failure), (HealthStatus::Degraded, Some(FailureClass::ProviderDown)));

    // An index dated days ahead says a clock is wrong: its age is not trusted.
    stub.on("GET", "/index.json", index(&format!("{}T00:00:00Z", date_in(3))));
    h.assert_fails(&config, FailureClass::ProviderMismatch, "fresh", "future").await;
    // A number where the timestamp belongs is an error, not a fall back on Last-Modified.
    stub.on(
        "GET",
        "/index.json",
        Canned::json(200, json!({"generated": 1795000000})).header("Last-Modified", &http_date(0)),
    );
    assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "fresh");

    // Without a timestamp in the index, Last-Modified tells the age.
    stub.on("GET", "/index.json", Canned::json(200, json!([{"name": "nvd"}])).header("Last-Modified", &http_date(0)));
    assert!(h.test(&config).await.success);
    stub.on("GET", "/index.json", Canned::json(200, json!([{"name": "nvd"}])).header("Last-Modified", &http_date(-10)));
    assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "fresh");
    stub.on("GET", "/index.json", Canned::json(200, json!([{"name": "nvd"}])));
    assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "fresh");
}

#[tokio::test]
async fn only_allowed_mirrors_are_contacted_and_failures_are_classed() {
    let (h, stub) = Harness::with_stub("feed-mirror").await;
    // An air-gapped site that lists its mirrors: any other host is refused before any request.
    let elsewhere = h.integration(IntegrationType::Feed, &stub.base_url, json!({"mirrorHosts": ["mirror.internal"]}));
    h.assert_fails(&elsewhere, FailureClass::Misconfigured, "configuration", "mirror.internal").await;
    assert!(stub.seen().is_empty());

    let config = h.integration(
        IntegrationType::Feed,
        &stub.base_url,
        json!({"indexPath": "/feeds/index.json", "username": "mirror"}),
    );
    // A generic web server.
    assert_failed(&h.test(&config).await, FailureClass::NotFound, "index");
    stub.on(
        "GET",
        "/feeds/index.json",
        Canned::new(200).header("Content-Type", "text/html").body("<html>it works</html>"),
    );
    assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "index");
    stub.on("GET", "/feeds/index.json", Canned::new(401).header("WWW-Authenticate", r#"Basic realm="mirror""#));
    assert_failed(&h.test(&config).await, FailureClass::Auth, "index");
    let basic = format!("Basic {}", super::http_probe::base64_encode(format!("mirror:{SECRET}").as_bytes()));
    assert!(stub.seen().iter().all(|s| s.header("authorization") == Some(basic.as_str())));
    stub.on("GET", "/feeds/index.json", Canned::new(503));
    assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "index");
    assert_eq!(h.health(&config).await.status, HealthStatus::Unhealthy);
    stub.on("GET", "/feeds/index.json", index("yesterday"));
    assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "fresh");

    for bad in [
        json!({"maxAgeHours": 0}),
        json!({"indexPath": "index.json"}),
        json!({"mirrorHosts": []}),
        json!({"mirrors": ["a"]}),
    ] {
        assert_failed(
            &h.test(&h.integration(IntegrationType::Feed, &stub.base_url, bad)).await,
            FailureClass::Misconfigured,
            "configuration",
        );
    }
}
