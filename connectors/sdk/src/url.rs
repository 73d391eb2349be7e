//! The parts of a URL connectors compare: its origin and host, and query values to escape.
//!
//! These are strict, not forgiving: a URL with anything a URL parser might read differently from
//! this plain split (a backslash, which browsers and the host's parser take as a path separator;
//! whitespace or control characters, which they drop; user information; percent-escapes or
//! non-ASCII in the authority) has no origin and no host here. A connector deciding whether to send
//! a credential to a URL from a response header must not be fooled into comparing a different host
//! than the one the request goes to.

/// `scheme://host[:port]`, lower-cased, of an absolute URL.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = authority(url, rest)?;
    Some(format!("{}://{}", scheme.to_ascii_lowercase(), authority.to_ascii_lowercase()))
}

/// The host of an absolute URL, lower-cased, without port (an IPv6 address keeps its brackets).
pub fn host(url: &str) -> Option<String> {
    let authority = authority(url, url.split_once("://")?.1)?;
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next()?
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The authority after `scheme://`, when the whole URL is plain enough to split by hand.
fn authority<'a>(url: &str, rest: &'a str) -> Option<&'a str> {
    if !url.bytes().all(|b| b.is_ascii_graphic() && !br#""<>^`{|}"#.contains(&b)) {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let plain = !authority.is_empty() && authority.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
    plain.then_some(authority)
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
        assert_eq!(host("http://[::1]:8080/"), Some("[::1]".into()));
        assert_eq!(host("https://"), None);
        assert_eq!(host("no-scheme"), None);
        assert_eq!(origin("https://auth.docker.io/token?x=1"), Some("https://auth.docker.io".into()));
        assert_eq!(origin("HTTP://Example.com:8080/a"), Some("http://example.com:8080".into()));
        assert_eq!(query_escape("repository:library/alpine:pull"), "repository%3Alibrary%2Falpine%3Apull");
    }

    #[test]
    fn urls_a_parser_could_read_differently_have_no_origin() {
        for tricky in [
            r"https://auth.docker.io\@registry.example.com/token",
            "https://auth.docker.io\\registry.example.com/token",
            "https://user:pw@mirror.internal/x",
            "https://auth.docker.io%2F@registry.example.com/",
            "https://regi\tstry.example.com/",
            "https://registry.example.com /x",
            "https://r\u{e9}gistry.example.com/",
        ] {
            assert_eq!(origin(tricky), None, "{tricky}");
            assert_eq!(host(tricky), None, "{tricky}");
        }
    }
}
