//! What every connector reads first: the integration's base URL, whether it names the provider's
//! cloud or a server of its own, the credential it needs, and the names it puts in a URL's path.
//! One reading each, so that no connector decides them its own way.

use crate::url::host;
use crate::{ConnectionConfig, Failed, StepResult};

/// The integration's base URL: `http` or `https`, without its trailing slashes (the host checked
/// it when the integration was saved; a connector reads it here once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    root: String,
    host: String,
}

/// A provider's cloud: its one base URL, and the hosts that are its and must not be read as a
/// server of the user's own when spelled another way.
#[derive(Clone, Copy, Debug)]
pub struct Cloud {
    /// How the provider calls it (`Bitbucket Cloud`).
    pub name: &'static str,
    /// Its base URL (`https://bitbucket.org`).
    pub url: &'static str,
    /// Other spellings of the same base URL that are accepted (`https://api.bitbucket.org`).
    pub also: &'static [&'static str],
    /// Every host that belongs to it.
    pub hosts: &'static [&'static str],
}

/// Where the provider runs for this integration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deployment {
    /// The provider's cloud.
    Cloud,
    /// A server of the user's own, at the base URL.
    SelfHosted,
}

impl BaseUrl {
    /// The base URL `text` is (its trailing slashes dropped), or why it is not one: it must be an
    /// `http(s)` URL with a plain host.
    pub fn parse(text: &str) -> Result<Self, String> {
        let root = text.trim_end_matches('/');
        let scheme = root.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        let host = host(root).filter(|_| matches!(scheme.as_deref(), Some("http" | "https")));
        let host = host.ok_or("the base URL must be an http(s) URL")?;
        Ok(BaseUrl { root: root.to_string(), host })
    }

    /// The base URL without trailing slashes.
    pub fn as_str(&self) -> &str {
        &self.root
    }

    /// Its host, lower-cased.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `path` (which begins with `/`) under the base URL.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.root)
    }

    /// Whether the base URL is `cloud` (exactly its URL, or one of its other spellings, over
    /// https) or a server of the user's own. A host of the cloud spelled any other way (`http://`,
    /// a path) is an error naming the cloud's URL: it must not fall through to a self-hosted
    /// server at that address.
    pub fn deployment(&self, cloud: &Cloud) -> Result<Deployment, String> {
        let lower = self.root.to_ascii_lowercase();
        if lower == cloud.url || cloud.also.contains(&lower.as_str()) {
            return Ok(Deployment::Cloud);
        }
        if cloud.hosts.contains(&self.host.as_str()) {
            return Err(format!("{}'s base URL is `{}`", cloud.name, cloud.url));
        }
        Ok(Deployment::SelfHosted)
    }
}

/// The credential a connector cannot work without: it exists only where the integration has an
/// AuthRef ([`ConnectionConfig::credential`]), so [`Credential::resolve`] always has one to
/// resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    auth_ref: String,
}

impl Credential {
    /// The secret behind the AuthRef, for the test's `step`; one that does not resolve fails the
    /// step with the error's class and message.
    pub fn resolve(&self, step: &'static str) -> Result<crate::secrets::Secret, Failed> {
        crate::secrets::resolve(&self.auth_ref).step_at(step, "the AuthRef")
    }
}

impl ConnectionConfig {
    /// The integration's base URL; refused when it has none, or it is not an `http(s)` URL.
    pub fn base(&self) -> Result<BaseUrl, String> {
        BaseUrl::parse(self.base_url.as_deref().ok_or("the integration has no base URL")?)
    }

    /// The credential the connector needs; refused without an AuthRef, with `needed` (what the
    /// provider needs: "GitLab needs an access token") and how to give one.
    pub fn credential(&self, needed: &str) -> Result<Credential, String> {
        match &self.auth_ref {
            Some(auth_ref) => Ok(Credential { auth_ref: auth_ref.clone() }),
            None => Err(format!("{needed}: set the integration's authRef")),
        }
    }
}

/// Whether `name` can stand as one segment of a URL's path as it is: letters, digits, `.`, `_`
/// and `-`, not empty, and neither `.` nor `..` (which a server reads as a move in the path).
pub fn path_segment(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Whether `path` is `min` or more [`path_segment`]s joined by `/` (`group/subgroup/name`).
pub fn path_of_segments(path: &str, min: usize) -> bool {
    path.split('/').count() >= min && path.split('/').all(path_segment)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base_url: Option<&str>) -> ConnectionConfig {
        ConnectionConfig {
            integration_id: String::new(),
            name: String::new(),
            integration_type: crate::IntegrationType::Scm,
            provider: String::new(),
            base_url: base_url.map(str::to_string),
            auth_ref: None,
            configuration: "{}".into(),
            environment: None,
        }
    }

    const BITBUCKET: Cloud = Cloud {
        name: "Bitbucket Cloud",
        url: "https://bitbucket.org",
        also: &["https://api.bitbucket.org"],
        hosts: &["bitbucket.org", "api.bitbucket.org"],
    };

    #[test]
    fn a_base_url_is_read_once_and_the_cloud_is_decided_one_way() {
        let base = config(Some("https://git.example.com/gitlab//")).base().unwrap();
        assert_eq!((base.as_str(), base.host()), ("https://git.example.com/gitlab", "git.example.com"));
        assert_eq!(base.join("/api/v4/user"), "https://git.example.com/gitlab/api/v4/user");
        assert_eq!(base.deployment(&BITBUCKET), Ok(Deployment::SelfHosted));
        for cloud in ["https://bitbucket.org/", "HTTPS://Bitbucket.org", "https://api.bitbucket.org"] {
            assert_eq!(config(Some(cloud)).base().unwrap().deployment(&BITBUCKET), Ok(Deployment::Cloud), "{cloud}");
        }
        for wrong in ["http://bitbucket.org", "https://bitbucket.org/workspace", "https://api.bitbucket.org:8443"] {
            let refused = config(Some(wrong)).base().unwrap().deployment(&BITBUCKET).unwrap_err();
            assert!(refused.contains("`https://bitbucket.org`"), "{wrong}: {refused}");
        }
        assert!(config(None).base().unwrap_err().contains("no base URL"));
        assert!(config(Some("ftp://files.example.com")).base().is_err());
        assert!(config(Some("https://user@host.example.com")).base().is_err());
    }

    #[test]
    fn a_credential_exists_only_with_an_auth_ref() {
        let mut c = config(None);
        assert_eq!(
            c.credential("GitLab needs an access token").unwrap_err(),
            "GitLab needs an access token: set the integration's authRef"
        );
        c.auth_ref = Some("ref://scm/gitlab/token".into());
        assert!(c.credential("GitLab needs an access token").is_ok());
    }

    #[test]
    fn path_segments_need_no_escaping_and_never_move_in_the_path() {
        for good in ["platform-api.v2", "a", "A_b-c.d"] {
            assert!(path_segment(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "a%2F", "ü", "a?b"] {
            assert!(!path_segment(bad), "{bad}");
        }
        assert!(path_of_segments("group/sub/name", 2));
        assert!(!path_of_segments("name", 2));
        assert!(!path_of_segments("group/../name", 2));
        assert!(!path_of_segments("group//name", 2));
    }
}
