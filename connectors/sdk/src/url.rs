//! The parts of a URL connectors compare: its origin and host, and query values to escape. The
//! host has already parsed the URL strictly (the API refuses anything a URL parser rejects, and
//! user information), so these only take apart what is known to be well-formed.

/// `scheme://host[:port]`, lower-cased, of an absolute URL.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = authority(rest);
    (!authority.is_empty()).then(|| format!("{}://{}", scheme.to_ascii_lowercase(), authority.to_ascii_lowercase()))
}

/// The host of an absolute URL, lower-cased, without user information or port (an IPv6 address
/// keeps its brackets).
pub fn host(url: &str) -> Option<String> {
    let authority = authority(url.split_once("://")?.1);
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next()?
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The authority after `scheme://`, without user information.
fn authority(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.rsplit_once('@').map_or(authority, |(_, host)| host)
}

/// Percent-encodes a query value: everything but RFC 3986's unreserved characters.
pub fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_origins() {
        assert_eq!(host("https://Registry.Example.com:5000/v2"), Some("registry.example.com".into()));
        assert_eq!(host("https://user:pw@mirror.internal/x"), Some("mirror.internal".into()));
        assert_eq!(host("http://[::1]:8080/"), Some("[::1]".into()));
        assert_eq!(host("https://"), None);
        assert_eq!(host("no-scheme"), None);
        assert_eq!(origin("https://auth.docker.io/token?x=1"), Some("https://auth.docker.io".into()));
        assert_eq!(origin("HTTP://Example.com:8080/a"), Some("http://example.com:8080".into()));
        assert_eq!(query_escape("repository:library/alpine:pull"), "repository%3Alibrary%2Falpine%3Apull");
    }
}
