//! The SDK's credentials cache, shared with the data-channel signer.
//!
//! aws-config puts a `LazyCache` (aws-smithy-runtime's identity cache) in front of the
//! credentials chain: every API call asks it, and it runs the chain (env, profile,
//! `credential_process`, SSO, IMDS) only when the cached credentials are within its buffer
//! (10 s, plus up to 5 s of jitter) of their expiry. `SdkConfig::credentials_provider()`
//! is the bare chain behind it, so a signer that called it would run `credential_process`
//! on every upgrade, and one that kept its own copy would be a second cache with its own
//! idea of "fresh". [`CredentialsCache`] wraps the SDK's cache instead: it answers the SDK
//! unchanged and remembers which resolver and runtime components the SDK asked it with, so
//! [`CredentialsCache::credentials`] can ask the very same cache entry later. A master that
//! runs for days thus refreshes through one cache before each StartSession, ResumeSession
//! and signed upgrade alike.

use std::sync::{Arc, Mutex};

use aws_sdk_ssm::config::{
    ConfigBag, Credentials, IdentityCache, ResolveCachedIdentity, RuntimeComponents,
    RuntimeComponentsBuilder, SharedIdentityCache,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::identity::{IdentityFuture, SharedIdentityResolver};

/// Why no credentials came out of the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// No API call has gone through the cache yet, so it does not know the SDK's resolver.
    #[error("no AWS API call has resolved credentials yet")]
    NotYetUsed,
    /// The provider chain failed (the SDK's own message).
    #[error("{0}")]
    Provider(String),
    /// The identity the chain returned is not AWS credentials (another auth scheme).
    #[error("the cached identity is not AWS credentials")]
    NotCredentials,
}

/// What the SDK last resolved credentials with: its resolver (the chain, whose cache
/// partition names the entry) and the components the cache needs (clock, sleep).
#[derive(Debug, Clone)]
struct LastUse {
    resolver: SharedIdentityResolver,
    components: RuntimeComponents,
}

/// The SDK's default identity cache, plus a handle to resolve through it outside an API call.
#[derive(Debug, Clone)]
pub struct CredentialsCache {
    inner: SharedIdentityCache,
    last: Arc<Mutex<Option<LastUse>>>,
}

impl Default for CredentialsCache {
    fn default() -> Self {
        Self {
            inner: IdentityCache::lazy().build(),
            last: Arc::default(),
        }
    }
}

impl CredentialsCache {
    /// The credentials the SDK's cache holds (refreshed through the chain when near expiry).
    pub async fn credentials(&self) -> Result<Credentials, CacheError> {
        let last = self
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(CacheError::NotYetUsed)?;
        let bag = ConfigBag::base();
        let identity = self
            .inner
            .resolve_cached_identity(last.resolver, &last.components, &bag)
            .await
            .map_err(|e| CacheError::Provider(crate::ssm::api::display_chain(e.as_ref())))?;
        identity
            .data::<Credentials>()
            .cloned()
            .ok_or(CacheError::NotCredentials)
    }
}

impl ResolveCachedIdentity for CredentialsCache {
    fn resolve_cached_identity<'a>(
        &'a self,
        resolver: SharedIdentityResolver,
        runtime_components: &'a RuntimeComponents,
        config_bag: &'a ConfigBag,
    ) -> IdentityFuture<'a> {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(LastUse {
            resolver: resolver.clone(),
            components: runtime_components.clone(),
        });
        self.inner
            .resolve_cached_identity(resolver, runtime_components, config_bag)
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }
}
