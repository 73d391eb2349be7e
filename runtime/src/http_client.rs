//! The outbound HTTP client shared by all invocations.
//!
//! One reqwest client (keep-alive pools are what makes a sandboxed request as cheap as a native
//! one), configured so that nothing from the environment leaks in: no proxy variables, no
//! automatic redirects, no cookies. Its DNS resolver checks every resolved address against the
//! operator's [`NetworkPolicy`] and hands reqwest only the checked addresses, so the connection
//! goes to exactly what was checked. An integration with its own CA certificates gets its own
//! client (cached by the certificates' digest).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sha2::{Digest, Sha256};

use crate::egress::NetworkPolicy;

/// Timeouts of outbound requests.
#[derive(Clone, Copy, Debug)]
pub struct HttpTimeouts {
    /// TCP + TLS connect timeout.
    pub connect: Duration,
    /// Whole-request timeout (also bounded by the invocation's deadline).
    pub request: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(5), request: Duration::from_secs(10) }
    }
}

/// A blocked address found while resolving a host name.
#[derive(Debug, thiserror::Error)]
#[error("{host}: {reason}")]
pub struct AddressDenied {
    /// The host name.
    pub host: String,
    /// Why (names the address and the blocked network).
    pub reason: String,
}

/// A host name that did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {reason}")]
pub struct DnsFailure {
    /// The host name.
    pub host: String,
    /// The resolver's answer.
    pub reason: String,
}

#[derive(Debug)]
struct PolicyResolver {
    policy: Arc<NetworkPolicy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let pinned = policy.pin.iter().find(|(name, _)| name.eq_ignore_ascii_case(&host)).map(|(_, addr)| *addr);
            let addrs: Vec<SocketAddr> = match pinned {
                Some(addr) => vec![addr],
                None => tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .map_err(|e| DnsFailure { host: host.clone(), reason: e.to_string() })?
                    .collect(),
            };
            if addrs.is_empty() {
                return Err(DnsFailure { host, reason: "no addresses".into() }.into());
            }
            check_answer(&policy, &host, &addrs)?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Checks every address of a DNS answer. One blocked address denies the whole answer: a name
/// that mixes public and private addresses is how DNS rebinding gets past a check.
pub fn check_answer(policy: &NetworkPolicy, host: &str, addrs: &[SocketAddr]) -> Result<(), AddressDenied> {
    for addr in addrs {
        policy.check(addr.ip()).map_err(|reason| AddressDenied { host: host.to_string(), reason })?;
    }
    Ok(())
}

/// Builds and caches the outbound clients.
#[derive(Debug)]
pub struct EgressClients {
    policy: Arc<NetworkPolicy>,
    timeouts: HttpTimeouts,
    default: reqwest::Client,
    with_ca: Mutex<HashMap<[u8; 32], reqwest::Client>>,
}

/// At most this many distinct custom-CA clients are kept; beyond it the cache starts over.
const MAX_CA_CLIENTS: usize = 256;

impl EgressClients {
    /// Builds the default client.
    pub fn new(policy: NetworkPolicy, timeouts: HttpTimeouts) -> Result<Self, reqwest::Error> {
        // reqwest is built without a bundled crypto provider; ring is the one we ship.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let policy = Arc::new(policy);
        let default = build_client(&policy, timeouts, &[])?;
        Ok(Self { policy, timeouts, default, with_ca: Mutex::new(HashMap::new()) })
    }

    /// The operator's network policy.
    pub fn policy(&self) -> &NetworkPolicy {
        &self.policy
    }

    /// The request timeout.
    pub fn timeouts(&self) -> HttpTimeouts {
        self.timeouts
    }

    /// The client for an integration: the default one, or one that also trusts the
    /// integration's CA certificates (PEM).
    pub fn client(&self, ca_pem: Option<&str>) -> Result<reqwest::Client, String> {
        let Some(pem) = ca_pem.filter(|p| !p.trim().is_empty()) else {
            return Ok(self.default.clone());
        };
        let key: [u8; 32] = Sha256::digest(pem.as_bytes()).into();
        let mut cache = self.with_ca.lock().expect("the CA client cache lock is never poisoned");
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| format!("the integration's CA certificates are not valid PEM: {e}"))?;
        if certs.is_empty() {
            return Err("the integration's CA certificates contain no certificate".into());
        }
        let client = build_client(&self.policy, self.timeouts, &certs)
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        if cache.len() >= MAX_CA_CLIENTS {
            cache.clear();
        }
        cache.insert(key, client.clone());
        Ok(client)
    }
}

fn build_client(
    policy: &Arc<NetworkPolicy>,
    timeouts: HttpTimeouts,
    extra_roots: &[reqwest::Certificate],
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("stellaops-integrations/", env!("CARGO_PKG_VERSION")))
        .tls_certs_merge(extra_roots.iter().cloned())
        .dns_resolver(PolicyResolver { policy: policy.clone() })
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| SocketAddr::new(a.parse().unwrap(), 443)).collect()
    }

    #[test]
    fn an_answer_mixing_public_and_blocked_addresses_is_denied_whole() {
        let policy = NetworkPolicy::default();
        assert!(check_answer(&policy, "registry.example.com", &addrs(&["93.184.216.34", "2606:4700::1111"])).is_ok());
        for mixed in [
            &["93.184.216.34", "127.0.0.1"][..],
            &["127.0.0.1", "93.184.216.34"][..],
            &["93.184.216.34", "::ffff:169.254.169.254"][..],
            &["2606:4700::1111", "::1"][..],
        ] {
            let err = check_answer(&policy, "rebind.example.com", &addrs(mixed)).unwrap_err();
            assert!(err.to_string().starts_with("rebind.example.com: address"), "{err}");
        }
    }

    #[tokio::test]
    async fn a_pinned_name_resolves_to_its_address_and_the_policy_still_judges_it() {
        let pinned: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        let mut policy = NetworkPolicy::default();
        policy.pin.insert("API.Bitbucket.org".into(), pinned);
        let resolve = |policy: NetworkPolicy| async move {
            PolicyResolver { policy: Arc::new(policy) }
                .resolve("api.bitbucket.org".parse().unwrap())
                .await
                .map(|addrs| addrs.collect::<Vec<_>>())
        };
        // Loopback is blocked by default: a pin does not get past the policy.
        let err = resolve(policy.clone()).await.unwrap_err();
        assert!(err.to_string().contains("127.0.0.1"), "{err}");
        policy.allow.push("127.0.0.1/32".parse().unwrap());
        assert_eq!(resolve(policy).await.unwrap(), vec![pinned]);
    }
}
