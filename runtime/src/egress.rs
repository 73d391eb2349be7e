//! Egress policy: which origins an invocation may call, and which network addresses the
//! operator allows.
//!
//! A request passes two checks. First its origin (scheme, host, port) must be the integration's
//! base-URL origin or match an origin pattern of the connector's manifest; this is checked before
//! any DNS lookup. Then every address its host resolves to must be allowed by the operator's
//! [`NetworkPolicy`]; the connection goes only to those checked addresses (see `http_client.rs`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// A permitted origin: `scheme://host[:port]`, where the host may be `*.domain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    host: HostPattern,
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    /// Exactly this host (a normalized domain or IP literal, as `Url::host_str` prints it).
    Exact(String),
    /// Any strict subdomain of this domain.
    SubdomainOf(String),
}

impl OriginPattern {
    /// Parses `https://host`, `https://host:8443` or `https://*.example.com`.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let (scheme, rest) =
            pattern.split_once("://").ok_or_else(|| format!("`{pattern}` is not of the form scheme://host[:port]"))?;
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let url =
            Url::parse(&format!("{scheme}://{rest}")).map_err(|e| format!("`{pattern}` is not a valid origin: {e}"))?;
        let origin = Self::from_url(&url).map_err(|e| format!("`{pattern}`: {e}"))?;
        if !(url.path() == "/" || url.path().is_empty()) || url.query().is_some() || url.fragment().is_some() {
            return Err(format!("`{pattern}` must be an origin without a path, query or fragment"));
        }
        if rest.ends_with('/') {
            return Err(format!("`{pattern}` must be an origin without a path"));
        }
        if !wildcard {
            return Ok(origin);
        }
        match (&origin.host, url.host()) {
            (HostPattern::Exact(domain), Some(Host::Domain(_))) if domain.contains('.') => {
                Ok(Self { host: HostPattern::SubdomainOf(domain.clone()), ..origin })
            }
            _ => Err(format!("`{pattern}`: a wildcard needs a domain with at least two labels")),
        }
    }

    /// The exact origin of a URL (the integration's base URL).
    pub fn from_url(url: &Url) -> Result<Self, String> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(format!("scheme `{scheme}` is not allowed; use http or https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("credentials in a URL are not allowed; use an AuthRef".into());
        }
        let host = url.host_str().ok_or("the URL has no host")?;
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        Ok(Self { scheme: scheme.to_string(), host: HostPattern::Exact(host.to_ascii_lowercase()), port })
    }

    /// Whether every origin `other` matches is matched by this pattern too.
    pub fn covers(&self, other: &OriginPattern) -> bool {
        let within = |host: &str, domain: &str| {
            host.strip_suffix(domain).is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
        };
        self.scheme == other.scheme
            && self.port == other.port
            && match (&self.host, &other.host) {
                (HostPattern::Exact(a), HostPattern::Exact(b)) => a == b,
                (HostPattern::Exact(_), HostPattern::SubdomainOf(_)) => false,
                (HostPattern::SubdomainOf(d), HostPattern::Exact(h)) => within(h, d),
                (HostPattern::SubdomainOf(d), HostPattern::SubdomainOf(e)) => d == e || within(e, d),
            }
    }

    /// Whether a request URL falls under this pattern.
    pub fn matches(&self, url: &Url) -> bool {
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        url.scheme() == self.scheme
            && port == self.port
            && match &self.host {
                HostPattern::Exact(h) => *h == host,
                HostPattern::SubdomainOf(domain) => {
                    host.strip_suffix(domain.as_str()).is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
                }
            }
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Exact(h) => write!(f, "{}://{}:{}", self.scheme, h, self.port),
            HostPattern::SubdomainOf(d) => write!(f, "{}://*.{}:{}", self.scheme, d, self.port),
        }
    }
}

/// The origins one invocation may call: the integration's base-URL origin and the manifest's.
#[derive(Clone, Debug, Default)]
pub struct OriginAllowlist {
    base: Option<OriginPattern>,
    /// Parsed once, when the connector is loaded ([`OriginAllowlist::parse_declared`]), and shared
    /// by every invocation of it.
    declared: Arc<[OriginPattern]>,
}

impl OriginAllowlist {
    /// A manifest's `permissions.hosts`, parsed.
    pub fn parse_declared(hosts: &[String]) -> Result<Arc<[OriginPattern]>, String> {
        hosts.iter().map(|h| OriginPattern::parse(h)).collect()
    }

    /// The integration's base-URL origin (if it has one) plus the manifest's origins.
    pub fn new(base_url: Option<&Url>, declared: Arc<[OriginPattern]>) -> Result<Self, String> {
        let base = base_url.map(OriginPattern::from_url).transpose()?;
        Ok(Self { base, declared })
    }

    /// The integration's base-URL origin, then the manifest's.
    pub fn patterns(&self) -> impl Iterator<Item = &OriginPattern> {
        self.base.iter().chain(self.declared.iter())
    }

    /// Ok when the URL's origin is allowed; otherwise the reason. The reason does not repeat the
    /// URL: it goes back to the connector, which chose the URL, and text the connector chose must
    /// never come back to it through the host (see `host/http.rs`); the record names the target.
    pub fn check(&self, url: &Url) -> Result<(), String> {
        if self.patterns().any(|p| p.matches(url)) {
            return Ok(());
        }
        if self.patterns().next().is_none() {
            Err("the request's origin is not allowed: the integration has no base URL and the manifest declares no \
                 hosts"
                .into())
        } else {
            let allowed: Vec<String> = self.patterns().map(|p| p.to_string()).collect();
            Err(format!("the request's origin is not allowed (allowed: {})", allowed.join(", ")))
        }
    }
}

/// The operator's network policy: which resolved addresses connectors may connect to.
///
/// An address is allowed when it, or an IPv4 address embedded in it, lies in an `allow` network;
/// otherwise it is denied when it, or an embedded IPv4 address, lies in a `block` network; any
/// other address is allowed. IPv6 forms that embed an IPv4 address (IPv4-mapped,
/// IPv4-compatible, NAT64, 6to4, Teredo) are judged by the embedded address too, so
/// `::ffff:127.0.0.1` is as blocked as `127.0.0.1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct NetworkPolicy {
    /// Networks always allowed (exceptions to `block`, e.g. an internal registry on loopback).
    pub allow: Vec<IpNet>,
    /// Networks denied.
    pub block: Vec<IpNet>,
    /// Host names answered with an address instead of DNS (`"api.bitbucket.org" =
    /// "10.20.0.5:8443"`; a port of 0 keeps the URL's): a split-horizon name, a SaaS API reached
    /// through a fixed egress address, a provider's stand-in in tests. The address is still judged
    /// by `allow` and `block`, and TLS still verifies the name.
    pub pin: BTreeMap<String, SocketAddr>,
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        Self { allow: Vec::new(), block: Self::default_blocked(), pin: BTreeMap::new() }
    }
}

impl NetworkPolicy {
    /// Loopback, link-local (cloud metadata), unspecified ("this network"), multicast, the
    /// reserved class E and broadcast, the documentation networks, in both families, plus the
    /// IPv6 discard prefix and cloud metadata address: the IANA special-purpose ranges that are
    /// never a legitimate destination. Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7, and
    /// the shared 100.64/10) stay allowed: internal registries and source hosts live there.
    pub fn default_blocked() -> Vec<IpNet> {
        [
            "127.0.0.0/8",
            "0.0.0.0/8",
            "169.254.0.0/16",
            "224.0.0.0/4",
            "240.0.0.0/4",
            "192.0.2.0/24",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "::1/128",
            "::/128",
            "fe80::/10",
            "ff00::/8",
            "100::/64",
            "2001:db8::/32",
            "fd00:ec2::254/128",
        ]
        .iter()
        .map(|n| n.parse().expect("the default networks are valid CIDRs"))
        .collect()
    }

    /// Ok when a connection to `ip` is allowed; otherwise the reason.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        let forms = effective_forms(ip);
        if forms.iter().any(|a| self.allow.iter().any(|n| n.contains(a))) {
            return Ok(());
        }
        for form in &forms {
            if let Some(net) = self.block.iter().find(|n| n.contains(form)) {
                return if *form == ip {
                    Err(format!("address {ip} is in blocked network {net}"))
                } else {
                    Err(format!("address {ip} embeds {form}, which is in blocked network {net}"))
                };
            }
        }
        Ok(())
    }
}

/// The address itself plus every IPv4 address an IPv6 address embeds.
fn effective_forms(ip: IpAddr) -> Vec<IpAddr> {
    let mut forms = vec![ip];
    if let IpAddr::V6(v6) = ip {
        forms.extend(embedded_ipv4(v6).into_iter().map(IpAddr::V4));
    }
    forms
}

fn embedded_ipv4(v6: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    let last32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    let mut found = Vec::new();
    // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d (deprecated, still routable by
    // some stacks).
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        found.push(last32);
    }
    // IPv4-translated ::ffff:0:a.b.c.d (SIIT).
    if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        found.push(last32);
    }
    // NAT64 well-known prefix 64:ff9b::/96 and local-use 64:ff9b:1::/48.
    if (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]) || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) {
        found.push(last32);
    }
    // 6to4 2002:AABB:CCDD::/48 embeds AA.BB.CC.DD.
    if s[0] == 0x2002 {
        found.push(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    // Teredo 2001:0::/32: server in bits 32..64, client (obfuscated) in the last 32 bits.
    if s[0] == 0x2001 && s[1] == 0 {
        found.push(Ipv4Addr::new(o[4], o[5], o[6], o[7]));
        found.push(Ipv4Addr::new(!o[12], !o[13], !o[14], !o[15]));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn origin_patterns_match_exactly() {
        let p = OriginPattern::parse("https://registry.example.com").unwrap();
        assert!(p.matches(&url("https://registry.example.com/v2/")));
        assert!(p.matches(&url("https://REGISTRY.example.com:443/v2/")));
        assert!(!p.matches(&url("http://registry.example.com/v2/")), "scheme");
        assert!(!p.matches(&url("https://registry.example.com:8443/")), "port");
        assert!(!p.matches(&url("https://registry.example.com.evil.io/")), "suffix");
        assert!(!p.matches(&url("https://evilregistry.example.com/")));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let p = OriginPattern::parse("https://*.docker.io").unwrap();
        assert!(p.matches(&url("https://auth.docker.io/token")));
        assert!(p.matches(&url("https://a.b.docker.io/")));
        assert!(!p.matches(&url("https://docker.io/")));
        assert!(!p.matches(&url("https://evildocker.io/")));
        assert!(!p.matches(&url("https://docker.io.evil.com/")));
        assert!(OriginPattern::parse("https://*.com").is_err());
        assert!(OriginPattern::parse("https://*.10.0.0.1").is_err());
        assert!(OriginPattern::parse("file:///etc").is_err());
        assert!(OriginPattern::parse("https://user:pw@x.io").is_err());
        assert!(OriginPattern::parse("https://x.io/path").is_err());
    }

    #[test]
    fn a_pattern_covers_what_it_matches_all_of() {
        let p = |s: &str| OriginPattern::parse(s).unwrap();
        assert!(p("https://a.example").covers(&p("https://a.example:443")));
        assert!(!p("https://a.example").covers(&p("http://a.example")));
        assert!(!p("https://a.example").covers(&p("https://a.example:8443")));
        assert!(!p("https://a.example").covers(&p("https://*.a.example")));
        assert!(p("https://*.example.com").covers(&p("https://a.example.com")));
        assert!(p("https://*.example.com").covers(&p("https://*.a.example.com")));
        assert!(p("https://*.example.com").covers(&p("https://*.example.com")));
        assert!(!p("https://*.example.com").covers(&p("https://example.com")));
        assert!(!p("https://*.a.example.com").covers(&p("https://*.example.com")));
        assert!(!p("https://*.example.com").covers(&p("https://evilexample.com")));
    }

    #[test]
    fn allowlist_names_the_allowed_origins() {
        let list = OriginAllowlist::new(
            Some(&url("https://harbor.local/")),
            OriginAllowlist::parse_declared(&["https://*.example.com".into()]).unwrap(),
        )
        .unwrap();
        assert!(list.check(&url("https://harbor.local/api/v2.0/ping")).is_ok());
        assert!(list.check(&url("https://x.example.com/")).is_ok());
        let err = list.check(&url("https://elsewhere.io/")).unwrap_err();
        // The allowed origins, never the refused URL (the connector chose it: see `check`).
        assert!(!err.contains("elsewhere") && err.contains("harbor.local"), "{err}");
        let empty = OriginAllowlist::new(None, Arc::from([])).unwrap();
        assert!(empty.check(&url("https://harbor.local/")).unwrap_err().contains("no base URL"));
    }

    #[test]
    fn url_parsing_normalizes_encoded_ipv4_spellings() {
        // The WHATWG parser turns these into 127.0.0.1; the policy then sees the real address.
        for spelling in
            ["http://2130706433/", "http://0x7f.1/", "http://0177.0.0.1/", "http://127.1/", "http://0x7f000001/"]
        {
            assert_eq!(url(spelling).host(), Some(Host::Ipv4(Ipv4Addr::LOCALHOST)), "{spelling}");
        }
    }

    #[test]
    fn default_policy_blocks_local_and_metadata_addresses() {
        let policy = NetworkPolicy::default();
        for blocked in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "ff02::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0:127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo client 127.0.0.1
            // Special-purpose ranges that are never a destination.
            "0.1.2.3",
            "240.0.0.1",
            "250.1.2.3",
            "192.0.2.10",
            "198.51.100.7",
            "203.0.113.200",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "100::1",
            "100::ffff:ffff:ffff:ffff",
            "::ffff:192.0.2.1",
            "::ffff:240.0.0.1",
        ] {
            let ip: IpAddr = blocked.parse().unwrap();
            assert!(policy.check(ip).is_err(), "{blocked} must be blocked");
        }
        // Private and shared ranges stay allowed: internal registries live there. So do the
        // neighbours of the blocked ranges.
        for allowed in [
            "93.184.216.34",
            "10.0.0.5",
            "172.16.3.4",
            "192.168.1.10",
            "100.64.0.1",
            "fd12:3456::1",
            "2606:4700::1111",
            "::ffff:93.184.216.34",
            "192.0.3.1",
            "198.51.101.1",
            "203.0.114.1",
            "2001:db9::1",
            "100:0:0:1::1",
        ] {
            let ip: IpAddr = allowed.parse().unwrap();
            assert!(policy.check(ip).is_ok(), "{allowed} must be allowed");
        }
    }

    #[test]
    fn allow_entries_are_exceptions_and_embedding_does_not_escape() {
        let policy = NetworkPolicy { allow: vec!["127.0.0.1/32".parse().unwrap()], ..NetworkPolicy::default() };
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("127.0.0.2".parse().unwrap()).is_err());
        assert!(policy.check("::ffff:169.254.169.254".parse().unwrap()).is_err());
        let err = policy.check("::ffff:169.254.169.254".parse().unwrap()).unwrap_err();
        assert!(err.contains("embeds 169.254.169.254"), "{err}");
    }
}
