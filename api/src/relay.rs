//! The outbox relay: publishes the events the store wrote beside each change to NATS JetStream,
//! then marks them delivered.
//!
//! At least once: an event is marked only after JetStream acknowledged it, so a crash between the
//! two publishes it again. The CloudEvents `id` goes out as `Nats-Msg-Id`, so JetStream drops such
//! a repeat within the stream's duplicate window, and consumers can deduplicate by the same id.
//! Subjects are `<prefix>.<tenant>.<type>` (`stellaops.integrations.acme.integration.created`).
//! A tenant id keeps its ASCII letters, digits and `-`; every other byte of it (`.`, `*`, `>`,
//! spaces, `_` itself, non-ASCII) becomes `_` and two hex digits, so two tenants never share a
//! subject (`acme.prod` → `acme_2eprod`, `acme_prod` → `acme_5fprod`). The platform's events
//! (`plugin.*`, which belong to no tenant) go to `<prefix>._platform.<type>`: no tenant's subject
//! can be `_platform`, since a tenant's `_` is always escaped.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};

use crate::config::EventsConfig;
use crate::events::StoredEvent;
use crate::service::Catalog;

/// Events taken from the outbox at a time.
const BATCH: u32 = 100;
/// Pause when the outbox is empty.
const IDLE: Duration = Duration::from_millis(250);
/// Longest pause after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The subject of an event.
pub fn subject(prefix: &str, event: &StoredEvent) -> String {
    let event_type = event.cloud_event["type"].as_str().unwrap_or("unknown");
    if event.tenant_id == crate::audit::PLATFORM {
        return format!("{prefix}._platform.{event_type}");
    }
    let mut tenant = String::with_capacity(event.tenant_id.len());
    for b in event.tenant_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            tenant.push(b as char);
        } else {
            tenant.push_str(&format!("_{b:02x}"));
        }
    }
    format!("{prefix}.{tenant}.{event_type}")
}

/// Runs until the task is aborted: connects (again after any failure, with backoff) and relays.
pub async fn run(config: EventsConfig, catalog: Catalog) {
    let Some(url) = config.nats_url.clone() else { return };
    let mut backoff = Duration::from_millis(500);
    loop {
        match relay(&url, &config, &catalog, &mut backoff).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "event relay interrupted");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn relay(url: &str, config: &EventsConfig, catalog: &Catalog, backoff: &mut Duration) -> Result<(), String> {
    let client = async_nats::connect(url).await.map_err(|e| format!("cannot connect to NATS: {e}"))?;
    let js = jetstream::new(client);
    js.get_or_create_stream(jetstream::stream::Config {
        name: config.stream.clone(),
        subjects: vec![format!("{}.>", config.subject_prefix)],
        ..Default::default()
    })
    .await
    .map_err(|e| format!("cannot create the stream {}: {e}", config.stream))?;
    tracing::info!(stream = %config.stream, "event relay connected");
    // Connected: the next interruption starts its backoff afresh.
    *backoff = Duration::from_millis(500);
    loop {
        let delivered = relay_batch(&js, config, catalog).await?;
        if delivered == 0 {
            tokio::time::sleep(IDLE).await;
        }
    }
}

/// Publishes one batch of undelivered events; returns how many were delivered.
pub async fn relay_batch(js: &jetstream::Context, config: &EventsConfig, catalog: &Catalog) -> Result<usize, String> {
    let events = catalog.undelivered_events(BATCH).await.map_err(|e| e.to_string())?;
    let mut acks = Vec::with_capacity(events.len());
    for event in &events {
        let id = event.cloud_event["id"].as_str().unwrap_or_default().to_string();
        let payload = serde_json::to_vec(&event.cloud_event).map_err(|e| e.to_string())?;
        let publish = PublishMessage::build()
            .payload(payload.into())
            .message_id(id)
            .header("Content-Type", "application/cloudevents+json");
        let ack = js
            .send_publish(subject(&config.subject_prefix, event), publish)
            .await
            .map_err(|e| format!("cannot publish: {e}"))?;
        acks.push(ack);
    }
    for ack in acks {
        ack.await.map_err(|e| format!("JetStream did not acknowledge an event: {e}"))?;
    }
    let keys: Vec<(String, i64)> = events.iter().map(|e| (e.tenant_id.clone(), e.seq)).collect();
    catalog.mark_delivered(&keys).await.map_err(|e| e.to_string())?;
    Ok(events.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(tenant: &str) -> StoredEvent {
        StoredEvent {
            tenant_id: tenant.into(),
            seq: 1,
            cloud_event: serde_json::json!({"type": "integration.created"}),
        }
    }

    #[test]
    fn subjects_keep_tenants_apart() {
        let subjects: Vec<String> =
            ["acme", "acme.prod", "acme_prod", "acme prod", "acme*", "äcme", "acme-prod", "_platform", ""]
                .iter()
                .map(|t| subject("p", &event(t)))
                .collect();
        assert_eq!(subjects[0], "p.acme.integration.created");
        assert_eq!(subjects[1], "p.acme_2eprod.integration.created");
        assert_eq!(subjects[2], "p.acme_5fprod.integration.created");
        assert_eq!(subjects[6], "p.acme-prod.integration.created");
        // The platform's events (tenant id empty) have a subject no tenant can have.
        assert_eq!(subjects[7], "p._5fplatform.integration.created");
        assert_eq!(subjects[8], "p._platform.integration.created");
        let unique: std::collections::BTreeSet<&String> = subjects.iter().collect();
        assert_eq!(unique.len(), subjects.len(), "{subjects:?}");
        assert!(subjects.iter().all(|s| !s.contains([' ', '*', '>'])), "{subjects:?}");
    }
}
