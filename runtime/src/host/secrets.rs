//! `secrets`: resolve only the integration's own AuthRef, in its own namespace; reveal only with
//! the permission, and only when the secret's binding holds every origin the connector could send
//! the value to.

use wasmtime::component::Resource;

use super::{HostState, SecretHandle, lock};
use crate::bindings::secrets::{Host, HostSecret, SecretError};
use crate::record::{DenialKind, HostCall};
use crate::secrets::{AuthRef, ResolveError, Source};

impl HostState {
    /// Writes the call's entry; traps when a budget ran out.
    fn record_secret_call(&self, operation: &str, target: &str, error: Option<(&str, String)>) -> wasmtime::Result<()> {
        let mut j = lock(&self.cx.journal);
        let error_message = error.as_ref().map(|(_, m)| j.redactor.redact(m));
        j.record_call(HostCall {
            interface: crate::record::Interface::Secrets,
            operation: operation.into(),
            target: target.into(),
            error: error.map(|(kind, _)| kind.to_string()),
            error_message,
            ..HostCall::default()
        })
        .map_err(wasmtime::Error::new)
    }
}

impl Host for HostState {
    async fn resolve(&mut self, auth_ref: String) -> wasmtime::Result<Result<Resource<SecretHandle>, SecretError>> {
        lock(&self.cx.journal).begin_call()?;
        // The target is logged only once it is known to be a well-formed AuthRef, so a guest
        // cannot smuggle arbitrary text into the audit through it.
        let parsed = match AuthRef::parse(&auth_ref) {
            Ok(r) => r,
            Err(why) => {
                self.record_secret_call("resolve", "(malformed AuthRef)", Some(("invalid-ref", why.clone())))?;
                return Ok(Err(SecretError::InvalidRef(why)));
            }
        };
        let target = parsed.to_string();
        if self.cx.bound_auth_ref.as_ref() != Some(&parsed) {
            let why = match &self.cx.bound_auth_ref {
                Some(_) => "a connector may resolve only the AuthRef of the integration under test".to_string(),
                None => "the integration under test has no AuthRef".to_string(),
            };
            lock(&self.cx.journal).deny(DenialKind::SecretRef, &target, &why);
            self.record_secret_call("resolve", &target, Some(("denied", why.clone())))?;
            return Ok(Err(SecretError::Denied(why)));
        }
        match self.cx.resolver.resolve(&self.cx.secret_namespace, &parsed) {
            Ok(secret) => {
                lock(&self.cx.journal).add_secret(&secret.value, secret.binding.as_ref(), Source::Host)?;
                self.record_secret_call("resolve", &target, None)?;
                let handle =
                    self.push_secret(SecretHandle { origin: target, value: secret.value, binding: secret.binding })?;
                Ok(Ok(handle))
            }
            Err(e @ ResolveError::Unbound(_)) => {
                let why = e.to_string();
                lock(&self.cx.journal).deny(DenialKind::SecretBinding, &target, &why);
                self.record_secret_call("resolve", &target, Some(("denied", why.clone())))?;
                Ok(Err(SecretError::Denied(why)))
            }
            Err(ResolveError::NotFound(m)) => {
                self.record_secret_call("resolve", &target, Some(("not-found", m.clone())))?;
                Ok(Err(SecretError::NotFound(m)))
            }
            Err(ResolveError::Unavailable(m)) => {
                tracing::warn!(auth_ref = %target, reason = %m, "secret store unavailable");
                self.record_secret_call("resolve", &target, Some(("unavailable", m.clone())))?;
                Ok(Err(SecretError::Unavailable(m)))
            }
        }
    }
}

impl HostSecret for HostState {
    async fn auth_ref(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(&secret)?.origin.clone())
    }

    async fn reveal(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<Result<String, SecretError>> {
        lock(&self.cx.journal).begin_call()?;
        let handle = self.table.get(&secret)?;
        let origin = handle.origin.clone();
        if !self.cx.may_reveal_secrets {
            let why = "reveal needs `reveal-secrets = true` in the connector's manifest and the operator's permission"
                .to_string();
            lock(&self.cx.journal).deny(DenialKind::Reveal, &origin, &why);
            self.record_secret_call(crate::record::REVEAL, &origin, Some(("denied", why.clone())))?;
            return Ok(Err(SecretError::Denied(why)));
        }
        // The connector could send a value it holds to any origin it may reach: a bound secret is
        // revealed only when its binding holds all of them.
        if let Some(binding) = &handle.binding
            && !binding.covers(&self.cx.origins)
        {
            let reachable: Vec<String> = self.cx.origins.patterns().map(|p| p.to_string()).collect();
            let why = format!(
                "the secret is bound to {binding}; the connector may send requests to {}, which the binding does not \
                 all hold",
                reachable.join(", ")
            );
            lock(&self.cx.journal).deny(DenialKind::SecretBinding, &origin, &why);
            self.record_secret_call(crate::record::REVEAL, &origin, Some(("denied", why.clone())))?;
            return Ok(Err(SecretError::Denied(why)));
        }
        let value = handle.value.expose().to_string();
        self.record_secret_call(crate::record::REVEAL, &origin, None)?;
        Ok(Ok(value))
    }

    async fn drop(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<()> {
        self.table.delete(secret)?;
        Ok(())
    }
}
