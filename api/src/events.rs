//! Lifecycle events: what they are called, what they carry, and their CloudEvents 1.0 form. The
//! store writes them to the outbox in the transaction of the change they describe
//! ([`crate::store::IntegrationStore::apply`]; an `invocation.denied` with the ledger entry of the
//! invocation that was refused something; the platform's `plugin.*` events with
//! [`crate::store::PluginStore::apply_plugin`], under the tenant id [`crate::audit::PLATFORM`]).
//! `GET /api/v1/events` pages through them, and the relay ([`crate::relay`]) publishes them to
//! NATS.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Integration, rfc3339};
use crate::ledger::LedgerEntry;

/// How many of an invocation's refusals its `invocation.denied` event lists (the count says how
/// many there were).
pub const MAX_DENIALS_IN_EVENT: usize = 10;

/// The `source` attribute of every event this service emits.
pub const EVENT_SOURCE: &str = "/stellaops/integrations";

/// The `type` of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// An integration was created.
    #[serde(rename = "integration.created")]
    Created,
    /// What a client sets was replaced.
    #[serde(rename = "integration.updated")]
    Updated,
    /// It was deleted.
    #[serde(rename = "integration.deleted")]
    Deleted,
    /// A test or check passed after a failure (or for the first time).
    #[serde(rename = "integration.healthy")]
    Healthy,
    /// A test or check failed after a pass (or for the first time).
    #[serde(rename = "integration.unhealthy")]
    Unhealthy,
    /// An operator paused it.
    #[serde(rename = "integration.paused")]
    Paused,
    /// An operator resumed it.
    #[serde(rename = "integration.resumed")]
    Resumed,
    /// Connector code was submitted and stored (platform event).
    #[serde(rename = "plugin.submitted")]
    PluginSubmitted,
    /// A connector version was approved (platform event).
    #[serde(rename = "plugin.approved")]
    PluginApproved,
    /// A connector version was rejected (platform event).
    #[serde(rename = "plugin.rejected")]
    PluginRejected,
    /// A connector version became the one its provider's integrations run (platform event).
    #[serde(rename = "plugin.activated")]
    PluginActivated,
    /// The sandbox refused a connector something during a test or a health check (the security
    /// team's alert): one event per such invocation.
    #[serde(rename = "invocation.denied")]
    InvocationDenied,
}

impl EventType {
    /// Every type.
    pub const ALL: [EventType; 12] = [
        Self::Created,
        Self::Updated,
        Self::Deleted,
        Self::Healthy,
        Self::Unhealthy,
        Self::Paused,
        Self::Resumed,
        Self::PluginSubmitted,
        Self::PluginApproved,
        Self::PluginRejected,
        Self::PluginActivated,
        Self::InvocationDenied,
    ];

    /// The CloudEvents `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "integration.created",
            Self::Updated => "integration.updated",
            Self::Deleted => "integration.deleted",
            Self::Healthy => "integration.healthy",
            Self::Unhealthy => "integration.unhealthy",
            Self::Paused => "integration.paused",
            Self::Resumed => "integration.resumed",
            Self::PluginSubmitted => "plugin.submitted",
            Self::PluginApproved => "plugin.approved",
            Self::PluginRejected => "plugin.rejected",
            Self::PluginActivated => "plugin.activated",
            Self::InvocationDenied => "invocation.denied",
        }
    }

    /// `healthy` or `unhealthy`, after a test or check that `passed`.
    pub fn health(passed: bool) -> Self {
        if passed { Self::Healthy } else { Self::Unhealthy }
    }
}

/// An event before the store numbers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventDraft {
    /// What happened.
    pub event_type: EventType,
    /// The event's payload (the `data` of the CloudEvent).
    pub data: serde_json::Value,
}

impl EventDraft {
    /// The event of an integration: its identity and state, never its configuration.
    pub fn of(event_type: EventType, i: &Integration) -> Self {
        Self {
            event_type,
            data: serde_json::json!({
                "integrationId": i.integration_id,
                "name": i.name,
                "type": i.integration_type,
                "provider": i.provider,
                "status": i.status,
                "version": i.version,
            }),
        }
    }

    /// The alert of an invocation the sandbox refused something: which connector, of which
    /// integration, was refused what (the kinds, and the first [`MAX_DENIALS_IN_EVENT`] refusals
    /// with their targets, as the record has them: redacted, never a secret's value). The whole
    /// record is at `GET /api/v1/invocations/{invocationId}`.
    pub fn invocation_denied(entry: &LedgerEntry) -> Self {
        let (denials, total) = match &entry.record {
            Some(record) => (
                record
                    .denials
                    .iter()
                    .take(MAX_DENIALS_IN_EVENT)
                    .map(|d| serde_json::json!({ "kind": d.kind, "target": d.target }))
                    .collect(),
                record.denials.len() as u64 + record.dropped.denials,
            ),
            None => (Vec::new(), 0),
        };
        Self {
            event_type: EventType::InvocationDenied,
            data: serde_json::json!({
                "invocationId": entry.invocation_id,
                "integrationId": entry.integration_id,
                "provider": entry.provider,
                "sha256": entry.sha256,
                "operation": entry.operation,
                "outcome": entry.outcome,
                "startedAt": rfc3339(entry.at),
                "denialKinds": entry.denial_kinds,
                "denials": denials,
                "deniedCount": total,
            }),
        }
    }

    /// The CloudEvents 1.0 JSON of a platform event about a connector version: its subject is
    /// `plugins/<provider>/<version>`, and it carries no tenant.
    pub fn platform_cloud_event(
        &self,
        provider: &str,
        version: &str,
        event_id: Uuid,
        at: OffsetDateTime,
    ) -> serde_json::Value {
        self.document(&format!("plugins/{provider}/{version}"), event_id, at)
    }

    /// The CloudEvents 1.0 JSON of this event, as written to the outbox.
    pub fn cloud_event(
        &self,
        tenant_id: &str,
        integration_id: Uuid,
        event_id: Uuid,
        at: OffsetDateTime,
    ) -> serde_json::Value {
        let mut document = self.document(&integration_id.to_string(), event_id, at);
        document["tenantid"] = tenant_id.into();
        document["integrationid"] = integration_id.to_string().into();
        document
    }

    /// The attributes every event has.
    fn document(&self, subject: &str, event_id: Uuid, at: OffsetDateTime) -> serde_json::Value {
        serde_json::json!({
            "specversion": "1.0",
            "id": event_id.to_string(),
            "source": EVENT_SOURCE,
            "type": self.event_type.as_str(),
            "subject": subject,
            "time": rfc3339(at),
            "datacontenttype": "application/json",
            "data": self.data,
        })
    }
}

/// An event of the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    /// The tenant.
    pub tenant_id: String,
    /// Position in the tenant's event stream, from 1 (the cursor of `GET /events`).
    pub seq: i64,
    /// The CloudEvents 1.0 JSON document.
    pub cloud_event: serde_json::Value,
}
