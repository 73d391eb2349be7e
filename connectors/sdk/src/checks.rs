//! Judging a provider's answers the same way in every connector: what an HTTP status means, how
//! much of a rate limit is left, when a credential expires, and when a health is degraded.

use crate::http::{Response, ResponseExt};
use crate::{FailureClass, HealthResult, HealthStatus, TestResult};

/// A credential that expires within this many days makes the health `degraded`.
pub const EXPIRY_WARNING_DAYS: i64 = 7;

/// The failure class of a status that is not the one expected: 401 `auth`, 403 `permission`,
/// 404 `not-found`, 429 `rate-limited`, 5xx `provider-down`; anything else (a redirect to a login
/// page, a 400 from some other product) is `provider-mismatch`.
pub fn status_failure(status: u16) -> FailureClass {
    match status {
        401 => FailureClass::Auth,
        403 => FailureClass::Permission,
        404 => FailureClass::NotFound,
        408 => FailureClass::Timeout,
        429 => FailureClass::RateLimited,
        500..=599 => FailureClass::ProviderDown,
        _ => FailureClass::ProviderMismatch,
    }
}

/// A short description of a status for messages, with the retry delay of a 429 or 503 and the
/// target of a redirect.
pub fn describe_status(response: &Response) -> String {
    let mut text = format!("status {}", response.status);
    if let Some(after) = response.header("retry-after") {
        text.push_str(&format!(" (retry after {after})"));
    }
    if (300..400).contains(&response.status)
        && let Some(location) = response.header("location")
    {
        text.push_str(&format!(" (redirect to {location})"));
    }
    text
}

/// The requests the rate limit still allows, from the headers providers send:
/// `x-ratelimit-remaining` (GitHub, GitLab, Gitea, Docker Hub), `ratelimit-remaining` (the IETF
/// draft, GitLab). Docker Hub's form `76;w=21600` counts too.
pub fn rate_limit_remaining(response: &Response) -> Option<u64> {
    ["x-ratelimit-remaining", "ratelimit-remaining"]
        .iter()
        .filter_map(|name| response.header(name))
        .find_map(|v| v.split(';').next().and_then(|n| n.trim().parse().ok()))
}

/// Days from the Unix epoch to a civil date (proleptic Gregorian; Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the Unix epoch of an RFC 3339 time (`2026-12-31T23:59:59Z`, with an offset or
/// fractional seconds) or of a plain date (`2026-12-31`, the start of that day in UTC).
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    let number = |s: &str| -> Option<i64> { s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse().ok())? };
    let date = text.get(0..10)?;
    let (year, month, day) = (number(date.get(0..4)?)?, number(date.get(5..7)?)?, number(date.get(8..10)?)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if date.as_bytes()[4] != b'-'
        || date.as_bytes()[7] != b'-'
        || !(1..=12).contains(&month)
        || !(1..=month_days).contains(&day)
    {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    let rest = &text[10..];
    if rest.is_empty() {
        return Some(seconds);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (h, m, s) = (number(rest.get(0..2)?)?, number(rest.get(3..5)?)?, number(rest.get(6..8)?)?);
    if h > 23 || m > 59 || s > 60 || rest.as_bytes()[2] != b':' || rest.as_bytes()[5] != b':' {
        return None;
    }
    seconds += h * 3600 + m * 60 + s;
    let mut zone = &rest[8..];
    if let Some(fraction) = zone.strip_prefix('.') {
        zone = fraction.trim_start_matches(|c: char| c.is_ascii_digit());
        if zone.len() == fraction.len() {
            return None;
        }
    }
    match zone {
        "Z" | "z" => Some(seconds),
        _ => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = (number(zone.get(1..3)?)?, number(zone.get(4..6)?)?);
            (zone.len() == 6 && zone.as_bytes()[3] == b':' && oh <= 23 && om <= 59)
                .then_some(seconds - sign * (oh * 3600 + om * 60))
        }
    }
}

/// Seconds since the Unix epoch of an HTTP date (`Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT`,
/// RFC 9110's IMF-fixdate).
pub fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, clock, "GMT"] = parts.as_slice() else { return None };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    let (day, year): (u32, u32) = (day.parse().ok()?, year.parse().ok()?);
    parse_time(&format!("{year:04}-{month:02}-{day:02}T{clock}Z"))
}

/// Seconds since the Unix epoch, now (from the host's wall clock).
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The health a test result amounts to, for connectors whose health check is their test (one
/// or two requests): a failed test is `unhealthy`, except a rate limit, which is `degraded`; a
/// passed test is `degraded` when the rate limit is exhausted or the credential expires within
/// [`EXPIRY_WARNING_DAYS`], otherwise `healthy`. A credential already expired is `unhealthy`
/// (`auth`) even if the provider still answered.
pub fn health_from_test(mut test: TestResult) -> HealthResult {
    let expires = test.facts.credential_expires_at.as_deref().and_then(parse_time);
    if test.failure.is_none() && expires.is_some_and(|e| e <= now()) {
        test.failure = Some(FailureClass::Auth);
        test.message = format!(
            "{}; but the credential expired at {}",
            test.message,
            test.facts.credential_expires_at.as_deref().unwrap_or_default()
        );
    }
    let (status, message) = match test.failure {
        Some(FailureClass::RateLimited) => (HealthStatus::Degraded, test.message),
        Some(_) => (HealthStatus::Unhealthy, test.message),
        None if test.facts.rate_limit_remaining == Some(0) => {
            (HealthStatus::Degraded, format!("{}; the rate limit is exhausted", test.message))
        }
        None => match test.facts.credential_expires_at.as_deref().and_then(parse_time) {
            Some(expires) if expires - now() < EXPIRY_WARNING_DAYS * 86_400 => (
                HealthStatus::Degraded,
                format!(
                    "{}; the credential expires at {}",
                    test.message,
                    test.facts.credential_expires_at.as_deref().unwrap_or_default()
                ),
            ),
            _ => (HealthStatus::Healthy, test.message),
        },
    };
    let failure = match status {
        HealthStatus::Healthy => None,
        _ => test.failure,
    };
    HealthResult { status, message, failure, steps: test.steps, facts: test.facts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc_3339_or_plain_dates() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("2026-12-31"), Some(1_798_675_200));
        assert_eq!(parse_time("2026-12-31T00:00:00Z"), Some(1_798_675_200));
        assert_eq!(parse_time("2026-12-31T01:30:00.123+01:30"), Some(1_798_675_200));
        assert_eq!(parse_time("2000-02-29T12:00:00-00:00"), Some(951_825_600));
        assert_eq!(parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"), Some(951_825_600));
        assert_eq!(parse_time("2024-02-29"), Some(1_709_164_800));
        assert_eq!(parse_http_date("Tuesday, 29-Feb-00 12:00:00 GMT"), None);
        for bad in [
            "",
            "2026-13-01",
            "2026-02-29",
            "2026-02-31",
            "2026-04-31",
            "2026-12-31T25:00:00Z",
            "2026-12-31T00:00:00",
            "2026-12-31T00-00-00Z",
            "2026-12-31T00:00:00.Z",
            "2026-12-31T00:00:00+99:99",
            "yesterday",
            "2026/12/31",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn statuses_map_to_failure_classes() {
        assert_eq!(status_failure(401), FailureClass::Auth);
        assert_eq!(status_failure(403), FailureClass::Permission);
        assert_eq!(status_failure(429), FailureClass::RateLimited);
        assert_eq!(status_failure(503), FailureClass::ProviderDown);
        assert_eq!(status_failure(302), FailureClass::ProviderMismatch);
        assert_eq!(status_failure(408), FailureClass::Timeout);
    }
}
