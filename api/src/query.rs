//! The one reading of a request's query, for every door: filters, paging and cursors are parsed
//! here into typed values, or refused with the parameter and why. The API answers the refusal as
//! a 400 problem, the console shows it on the page (with a 400), the command line prints it; all
//! three read the same names with the same code, so they refuse the same things.
//!
//! - [`read`]: a query string (the API's URL, the console's form) into a parameter struct;
//! - [`ListParams`] → [`IntegrationQuery`] (the integrations list), [`InvocationParams`] →
//!   [`InvocationQuery`] (the ledger), [`SeqParams`] (audit trails and event feeds);
//! - [`Page`]: a page of a list and the cursor of the next, built in one place ([`Page::of`]);
//! - [`Position`] and [`Cursor`]: the one cursor codec (a position's fields joined by `.`, free
//!   text in hex), for every keyset list: integrations, the ledger, health history.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stella_runtime::{FailureClass, IntegrationType};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::domain::{MAX_SHORT_LEN, unix_ms};
use crate::health::{HealthState, HistoryCursor};
use crate::ledger::{InvocationFilter, InvocationPosition, Level, Operation};
use crate::lifecycle::Status;

/// Default page size of lists.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of lists.
pub const MAX_LIMIT: u32 = 500;
/// Longest value of a ledger text filter.
const MAX_FILTER_LEN: usize = 2048;
/// Longest cursor read (the longest position: an integration's name in hex, and an id).
const MAX_CURSOR_LEN: usize = 4096;

/// Why a query is refused: the parameter, and what is wrong with it (a sentence naming it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// The parameter (`query` when the query as a whole cannot be read).
    pub parameter: String,
    /// What is wrong, naming the parameter.
    pub message: String,
}

impl QueryError {
    fn new(parameter: &str, message: impl Into<String>) -> Self {
        Self { parameter: parameter.to_string(), message: message.into() }
    }

    fn not_a_cursor(parameter: &str) -> Self {
        Self::new(parameter, format!("`{parameter}` is not a cursor this API returned"))
    }
}

/// Reads a query string (`a=1&b=x`, without the `?`) into `T`: an unknown parameter, a repeated
/// one or a value of the wrong kind (`limit=ten`, `paused=maybe`) is refused, naming it.
pub fn read<T: DeserializeOwned>(query: &str) -> Result<T, QueryError> {
    serde_urlencoded::from_str(query).map_err(|e| QueryError::new("query", format!("the query is not valid: {e}")))
}

/// A form's fields without the blank ones (a form sends every field; a blank one is no filter),
/// trimmed, in their order (a repeated one stays repeated, and [`read_pairs`] refuses it as the
/// API does).
pub fn filled(fields: &[(String, String)]) -> Vec<(String, String)> {
    fields.iter().map(|(k, v)| (k.clone(), v.trim().to_string())).filter(|(_, v)| !v.is_empty()).collect()
}

/// [`read`] of name-value pairs (a form's [`filled`] fields).
pub fn read_pairs<T: DeserializeOwned>(pairs: &[(String, String)]) -> Result<T, QueryError> {
    read(&serde_urlencoded::to_string(pairs).expect("text pairs encode"))
}

/// A page size from a query: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn page_limit(limit: Option<u32>) -> Result<u32, QueryError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(QueryError::new("limit", format!("`limit` must be between 1 and {MAX_LIMIT}")))
    }
}

/// Which page of a keyset list: after this position (none: the first page), this many rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest<P> {
    /// The position the previous page ended at.
    pub after: Option<P>,
    /// The page size.
    pub limit: u32,
}

impl<P> PageRequest<P> {
    /// The first page of `limit` rows.
    pub fn first(limit: u32) -> Self {
        Self { after: None, limit }
    }
}

/// A page of a keyset list and where the next one starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The rows, in the list's order.
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The page of `rows`, read with one row more than `limit` asked (see [`PageRequest`]): when
    /// that row is there another page follows, and it starts after the page's last row.
    pub fn of<P: Position>(rows: Vec<T>, limit: u32, position: impl Fn(&T) -> P) -> Self {
        Self::cut(rows, limit, |row| Cursor::encode(&position(row)))
    }

    /// [`Page::of`] for a sequence, whose cursor is the last row's sequence number.
    pub fn of_seq(rows: Vec<T>, limit: u32, seq: impl Fn(&T) -> i64) -> Self {
        Self::cut(rows, limit, |row| seq(row).to_string())
    }

    fn cut(mut rows: Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Self {
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(cursor)
        } else {
            None
        };
        Self { items: rows, next_cursor }
    }

    /// The next page's position, for a reader that follows the pages itself.
    pub fn next<P: Position>(&self) -> Option<P> {
        self.next_cursor.as_deref().and_then(|c| Cursor::decode(c, "cursor").ok())
    }
}

/// A place in a keyset list, written into a cursor as its fields joined by dots: numbers in
/// decimal, ids as UUIDs, free text in hex, so that every string of a cursor's documented pattern
/// is a position (a forged cursor only starts the caller's own list at another place).
pub trait Position: Sized {
    /// Its fields as text.
    fn to_text(&self) -> String;
    /// The position a text names; `None` when it is not one [`Position::to_text`] writes.
    fn from_text(text: &str) -> Option<Self>;
}

/// The one cursor codec: a [`Position`]'s text. Clients treat a cursor as opaque.
#[derive(Debug)]
pub struct Cursor;

impl Cursor {
    /// The cursor of `position`.
    pub fn encode(position: &impl Position) -> String {
        position.to_text()
    }

    /// The position a cursor names; refused, naming `parameter`, when it is not a cursor.
    pub fn decode<P: Position>(cursor: &str, parameter: &str) -> Result<P, QueryError> {
        let bad = || QueryError::not_a_cursor(parameter);
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(bad());
        }
        P::from_text(cursor).ok_or_else(bad)
    }
}

/// A UUID in its hyphenated form, and nothing else.
fn exact_uuid(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text).ok().filter(|u| u.hyphenated().to_string() == text)
}

/// A non-negative decimal of at most 18 digits (a Unix time in ms, a sequence number).
fn exact_count(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().filter(|n| *n >= 0 && text.len() <= 18 && !text.starts_with('+'))
}

impl Position for ListPosition {
    /// `<the name in hex>.<the id, 32 hex digits>`.
    fn to_text(&self) -> String {
        format!("{}.{}", hex::encode(self.name.as_bytes()), self.id.simple())
    }

    fn from_text(text: &str) -> Option<Self> {
        let (name, id) = text.split_once('.')?;
        let name = hex::decode(name).ok()?;
        // Any byte string is a position, but PostgreSQL refuses NUL (and invalid UTF-8) in a text
        // parameter. Names never hold control characters, so dropping them moves no real cursor.
        let name = String::from_utf8_lossy(&name).chars().filter(|c| !c.is_control()).collect();
        let id = Uuid::try_parse(id).ok().filter(|_| id.len() == 32)?;
        Some(Self { name, id })
    }
}

impl Position for InvocationPosition {
    /// `<start, Unix ms>.<id>`.
    fn to_text(&self) -> String {
        format!("{}.{}", self.at_ms, self.id)
    }

    fn from_text(text: &str) -> Option<Self> {
        let (at, id) = text.split_once('.')?;
        Some(Self { at_ms: exact_count(at)?, id: exact_uuid(id)? })
    }
}

impl Position for HistoryCursor {
    /// `<checked, Unix ms>.<check id>`.
    fn to_text(&self) -> String {
        format!("{}.{}", self.checked_ms, self.check_id)
    }

    fn from_text(text: &str) -> Option<Self> {
        let (ms, id) = text.split_once('.')?;
        Some(Self { checked_ms: exact_count(ms)?, check_id: exact_uuid(id)? })
    }
}

/// What a list of integrations may be narrowed by; every filter that is set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// `type`.
    pub integration_type: Option<IntegrationType>,
    /// `provider`.
    pub provider: Option<String>,
    /// `status`.
    pub status: Option<Status>,
    /// `environment`.
    pub environment: Option<String>,
    /// One of the tags.
    pub tag: Option<String>,
    /// `paused`.
    pub paused: Option<bool>,
    /// `ownerId`.
    pub owner: Option<String>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    /// The health: the last test or check passed, failed, or never ran.
    pub health: Option<HealthState>,
}

/// Where a page of integrations starts: after this (name, id), in the list's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPosition {
    /// The last name of the previous page.
    pub name: String,
    /// The last id of the previous page.
    pub id: Uuid,
}

impl ListPosition {
    /// The position of a listed integration.
    pub fn of(integration: &crate::domain::Integration) -> Self {
        Self { name: integration.name.clone(), id: integration.integration_id }
    }
}

/// A list of integrations, as a caller asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntegrationQuery {
    /// The filters.
    pub filter: ListFilter,
    /// The page.
    pub page: PageRequest<ListPosition>,
}

/// Filters and paging of `GET /api/v1/integrations` (and the console's list).
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this integration type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<IntegrationType>)]
    pub integration_type: Option<String>,
    /// Only this provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub provider: Option<String>,
    /// Only this status.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<Status>)]
    pub status: Option<String>,
    /// Only this environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub environment: Option<String>,
    /// Only integrations carrying this tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub tag: Option<String>,
    /// Only paused (`true`) or unpaused (`false`) integrations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Only integrations whose last test or check passed (`healthy`), failed (`unhealthy`), or
    /// that were never tested (`unknown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<HealthState>)]
    pub health: Option<String>,
    /// Only this owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub owner: Option<String>,
    /// Only names containing this text (case-insensitive).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub q: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(pattern = r"^([0-9a-f]{2}){0,1024}\.[0-9a-f]{32}$")]
    pub cursor: Option<String>,
}

fn short_filter(name: &str, value: Option<String>) -> Result<Option<String>, QueryError> {
    match value {
        Some(v) if v.chars().count() > MAX_SHORT_LEN || v.chars().any(char::is_control) => Err(QueryError::new(
            name,
            format!("`{name}` is longer than {MAX_SHORT_LEN} characters or has control characters"),
        )),
        other => Ok(other),
    }
}

impl ListParams {
    /// The typed query, or the first parameter that is not valid.
    pub fn parse(self) -> Result<IntegrationQuery, QueryError> {
        let integration_type = self
            .integration_type
            .map(|t| {
                t.parse::<IntegrationType>().map_err(|_| {
                    QueryError::new(
                        "type",
                        format!("`type` must be one of registry, scm, ci, host, feed, artifact (got `{t}`)"),
                    )
                })
            })
            .transpose()?;
        let status = self
            .status
            .map(|s| {
                Status::parse(&s).ok_or_else(|| {
                    let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
                    QueryError::new("status", format!("`status` must be one of {} (got `{s}`)", names.join(", ")))
                })
            })
            .transpose()?;
        let health = self
            .health
            .map(|h| {
                HealthState::parse(&h).ok_or_else(|| {
                    QueryError::new(
                        "health",
                        format!("`health` must be one of healthy, unhealthy, unknown (got `{h}`)"),
                    )
                })
            })
            .transpose()?;
        let limit = page_limit(self.limit)?;
        let after = self.cursor.as_deref().map(|c| Cursor::decode(c, "cursor")).transpose()?;
        let filter = ListFilter {
            integration_type,
            provider: short_filter("provider", self.provider)?,
            status,
            environment: short_filter("environment", self.environment)?,
            tag: short_filter("tag", self.tag)?,
            paused: self.paused,
            owner: short_filter("owner", self.owner)?,
            name_contains: short_filter("q", self.q)?,
            health,
        };
        Ok(IntegrationQuery { filter, page: PageRequest { after, limit } })
    }
}

/// A read of the ledger, as a caller asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvocationQuery {
    /// The filters.
    pub filter: InvocationFilter,
    /// The page.
    pub page: PageRequest<InvocationPosition>,
}

/// Filters and paging of `GET /api/v1/invocations` (and its export, the console's ledger page,
/// `stella-integrations invocations`); each filter given narrows the list.
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct InvocationParams {
    /// Of this connector provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Of the component with this sha256 (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Of this integration.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(format = Uuid)]
    pub integration_id: Option<String>,
    /// `test-connection` or `check-health`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<Operation>)]
    pub operation: Option<String>,
    /// `success`, a failure class (`auth`, `network`, …) or a health outcome (`healthy`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// With this failure class (`auth`, `network`, `tls`, …): a failed test's or a check's.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<FailureClass>)]
    pub failure_class: Option<String>,
    /// Denied something (`true`) or nothing (`false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied: Option<bool>,
    /// Contacted an origin other than its integration's base URL's (`true`) or not (`false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outside_base_url: Option<bool>,
    /// Read a secret's value (`true`) or not (`false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revealed_secret: Option<bool>,
    /// Sent a secret's value outside the credential the host wrote, in a URL, a header or a body
    /// (`true`) or not (`false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_in_request: Option<bool>,
    /// Denied something of this kind (`origin`, `address`, `secret-ref`, `reveal`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denial_kind: Option<String>,
    /// Contacted this origin (`https://host[:port]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Used this AuthRef (`ref://…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_ref: Option<String>,
    /// Started at or after this time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Started before this time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Entries kept at this level: `full` (the whole record) or `summary` (healthy checks that
    /// repeated the previous one, folded per integration and hour).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(pattern = "^(full|summary)$")]
    pub level: Option<String>,
    /// The `nextCursor` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(pattern = r"^[0-9]{1,18}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

fn text(name: &str, value: Option<String>) -> Result<Option<String>, QueryError> {
    match value {
        Some(v) if v.is_empty() || v.len() > MAX_FILTER_LEN || v.chars().any(char::is_control) => Err(QueryError::new(
            name,
            format!("`{name}` must be 1 to {MAX_FILTER_LEN} bytes without control characters"),
        )),
        other => Ok(other),
    }
}

fn time_ms(name: &str, value: Option<String>) -> Result<Option<i64>, QueryError> {
    value
        .map(|v| {
            time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
                .map(unix_ms)
                .map_err(|_| QueryError::new(name, format!("`{name}` is not an RFC 3339 time")))
        })
        .transpose()
}

impl InvocationParams {
    /// The typed query, or the first parameter that is not valid.
    pub fn parse(self) -> Result<InvocationQuery, QueryError> {
        let limit = page_limit(self.limit)?;
        let after = self.after.as_deref().map(|c| Cursor::decode(c, "after")).transpose()?;
        let operation = match self.operation.as_deref() {
            None => None,
            Some(op) => Some(Operation::parse(op).ok_or_else(|| {
                QueryError::new("operation", "`operation` must be `test-connection` or `check-health`")
            })?),
        };
        let integration_id = match self.integration_id.as_deref() {
            None => None,
            Some(id) => Some(
                Uuid::parse_str(id).map_err(|_| QueryError::new("integrationId", "`integrationId` is not a UUID"))?,
            ),
        };
        let failure_class = match self.failure_class.as_deref() {
            None => None,
            Some(class) => Some(FailureClass::parse(class).map(|c| c.as_str().to_string()).ok_or_else(|| {
                let classes: Vec<&str> = FailureClass::ALL.iter().map(|c| c.as_str()).collect();
                QueryError::new("failureClass", format!("`failureClass` must be one of: {}", classes.join(", ")))
            })?),
        };
        let filter = InvocationFilter {
            provider: text("provider", self.provider)?,
            sha256: text("sha256", self.sha256)?,
            integration_id,
            operation,
            outcome: text("outcome", self.outcome)?,
            failure_class,
            denied: self.denied,
            outside_base_url: self.outside_base_url,
            revealed_secret: self.revealed_secret,
            secret_in_request: self.secret_in_request,
            denial_kind: text("denialKind", self.denial_kind)?,
            origin: text("origin", self.origin)?,
            auth_ref: text("authRef", self.auth_ref)?,
            since_ms: time_ms("since", self.since)?,
            until_ms: time_ms("until", self.until)?,
            level: match self.level.as_deref() {
                None => None,
                Some(level) => Some(
                    Level::parse(level)
                        .ok_or_else(|| QueryError::new("level", "`level` must be `full` or `summary`"))?,
                ),
            },
        };
        Ok(InvocationQuery { filter, page: PageRequest { after, limit } })
    }
}

/// The window of an egress report.
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EgressParams {
    /// From when (RFC 3339); default: seven days ago.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub since: Option<String>,
}

impl EgressParams {
    /// The report's provider (checked like a filter) and its start (Unix ms).
    pub fn parse(self, provider: String) -> Result<(String, i64), QueryError> {
        let since = match time_ms("since", self.since)? {
            Some(ms) => ms,
            None => unix_ms(crate::domain::now()) - 7 * 86_400_000,
        };
        Ok((text("provider", Some(provider))?.unwrap_or_default(), since))
    }
}

/// Paging of a sequence: an audit trail, the events, the platform's audit trail (`after` a
/// sequence number; none: from the first).
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeqParams {
    /// The `nextCursor` of the previous page; absent: from the first entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(pattern = r"^[0-9]{1,18}$")]
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

impl SeqParams {
    /// After which sequence number (0: from the first), and how many.
    pub fn parse(self) -> Result<(i64, u32), QueryError> {
        let (after, limit) = self.parse_optional()?;
        Ok((after.unwrap_or(0), limit))
    }

    /// After which sequence number (`None`: none was given), and how many.
    pub fn parse_optional(self) -> Result<(Option<i64>, u32), QueryError> {
        let after = match self.after.as_deref() {
            None => None,
            Some(c) => Some(exact_count(c).ok_or_else(|| QueryError::not_a_cursor("after"))?),
        };
        Ok((after, page_limit(self.limit)?))
    }
}

/// Paging of an integration's health history, newest first.
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// The `nextCursor` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(pattern = r"^[0-9]{1,18}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub before: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

impl HistoryParams {
    /// Before which check, and how many.
    pub fn parse(self) -> Result<PageRequest<HistoryCursor>, QueryError> {
        let before = self.before.as_deref().map(|c| Cursor::decode(c, "before")).transpose()?;
        Ok(PageRequest { after: before, limit: page_limit(self.limit)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_names_its_position_and_nothing_else_is_one() {
        let position = ListPosition { name: "registry ü.%".into(), id: Uuid::new_v4() };
        let cursor = Cursor::encode(&position);
        assert_eq!(cursor, format!("{}.{}", hex::encode("registry ü.%"), position.id.simple()));
        assert_eq!(Cursor::decode::<ListPosition>(&cursor, "cursor"), Ok(position.clone()));
        let invocation = InvocationPosition { at_ms: 1_800_000_000_123, id: Uuid::new_v4() };
        assert_eq!(Cursor::decode(&Cursor::encode(&invocation), "after"), Ok(invocation.clone()));
        let check = HistoryCursor { checked_ms: 1_800_000_000_123, check_id: Uuid::new_v4() };
        assert_eq!(Cursor::decode(&Cursor::encode(&check), "before"), Ok(check));
        let id = position.id.simple().to_string();
        for bad in ["", "nodot", "zz.00", &format!("00.{}", &id[..31]), &format!("00.{id}-"), &position.id.to_string()]
        {
            assert!(Cursor::decode::<ListPosition>(bad, "cursor").is_err(), "{bad}");
        }
        assert!(Cursor::decode::<ListPosition>(&format!("{}.{id}", "00".repeat(2048)), "cursor").is_err(), "too long");
        let uuid = invocation.id.to_string();
        for bad in [format!("-1.{uuid}"), format!("+1.{uuid}"), "1.x".into(), format!("1.{}", invocation.id.simple())] {
            let refused = Cursor::decode::<InvocationPosition>(&bad, "after").unwrap_err();
            assert_eq!(refused.message, "`after` is not a cursor this API returned");
        }
        for bad in ["1", "-1.x", "1.not-a-uuid", &format!("1.{}", check.check_id.simple()), "1234567890123456789.x"] {
            assert!(Cursor::decode::<HistoryCursor>(bad, "before").is_err(), "{bad}");
        }
        // A forged cursor is only a position: a name with a control character (never stored) or
        // bytes that are no UTF-8 move to a place without them.
        let nul = Cursor::decode::<ListPosition>(&format!("{}.{id}", hex::encode("a\u{0}b")), "cursor").unwrap();
        assert_eq!(nul.name, "ab");
        assert!(Cursor::decode::<ListPosition>(&format!("ff.{id}"), "cursor").is_ok());
    }

    #[test]
    fn a_page_is_cut_at_its_limit_and_says_where_the_next_begins() {
        let position = |n: &u32| InvocationPosition { at_ms: i64::from(*n), id: Uuid::nil() };
        let page = Page::of(vec![1, 2, 3], 2, position);
        assert_eq!(page.items, [1, 2]);
        assert_eq!(page.next::<InvocationPosition>(), Some(position(&2)));
        let last = Page::of(vec![1, 2], 2, position);
        assert_eq!((last.items, last.next_cursor), (vec![1, 2], None));
    }

    #[test]
    fn the_parameters_are_read_by_name_and_refused_by_name() {
        let q: IntegrationQuery = read::<ListParams>("status=draft&paused=true&limit=5").unwrap().parse().unwrap();
        assert_eq!((q.filter.status, q.filter.paused, q.page.limit), (Some(Status::Draft), Some(true), 5));
        for (query, parameter) in [
            ("status=typo", "status"),
            ("health=sick", "health"),
            ("type=nope", "type"),
            ("limit=0", "limit"),
            ("cursor=zz", "cursor"),
            ("cursor=0", "cursor"),
            ("paused=maybe", "query"),
            ("unknown=1", "query"),
        ] {
            let refused = read::<ListParams>(query).and_then(ListParams::parse).unwrap_err();
            assert_eq!(refused.parameter, parameter, "{query}: {refused}");
        }
        // What the command line writes is what the API reads.
        let params = InvocationParams { denied: Some(true), failure_class: Some("auth".into()), ..Default::default() };
        let text = serde_urlencoded::to_string(&params).unwrap();
        assert_eq!(text, "failureClass=auth&denied=true");
        let q = read::<InvocationParams>(&text).unwrap().parse().unwrap();
        assert_eq!((q.filter.denied, q.filter.failure_class.as_deref()), (Some(true), Some("auth")));
        // A form's blank fields are no filters.
        let form = [("status".to_string(), " ".to_string()), ("tag".to_string(), "a b".to_string())];
        assert_eq!(filled(&form), [("tag".to_string(), "a b".to_string())]);
        let params: ListParams = read_pairs(&filled(&form)).unwrap();
        assert_eq!((params.tag.as_deref(), params.status), (Some("a b"), None));
        // A repeated field is refused, as in the API's query string.
        let twice = [("tag".to_string(), "a".to_string()), ("tag".to_string(), "b".to_string())];
        assert!(read_pairs::<ListParams>(&filled(&twice)).is_err());
    }
}
