//! The SDK configuration every AWS client of ours is built from (SSM, KMS and the others):
//! credentials, profile, region, SSO and endpoint overrides (`AWS_ENDPOINT_URL[_SSM]`, how
//! the simulator is reached) resolved by aws-config the way the AWS CLI resolves them, plus
//! what the config file and flags override. One loader, so every client sees the same
//! credentials cache, region and endpoint.

use aws_config::BehaviorVersion;

use crate::redact::Redacted;
use crate::ssm::identity_cache::CredentialsCache;

/// AWS settings chosen by config file and flags (anything unset comes from the environment).
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub credentials: Option<InlineCredentials>,
    /// Endpoint override that wins over `AWS_ENDPOINT_URL`; lets `demo` point its in-process
    /// SDK at its own simulator without touching the process environment.
    pub endpoint_url: Option<String>,
}

/// Static AWS credentials given in the config file instead of a profile.
///
/// The one declaration: serde reads the `credentials:` mapping straight into it (the config
/// validator then checks the values in place) and [`SsmApi::new`] hands it to the SDK. The
/// secrets are [`Redacted`], so `Debug` and error messages never show them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct InlineCredentials {
    /// Not secret on its own (it identifies the key), so it is not redacted.
    pub access_key_id: String,
    pub secret_access_key: Redacted<String>,
    pub session_token: Option<Redacted<String>>,
}

/// The SDK configuration for `s`: the AWS CLI's resolution chain plus `s`'s overrides.
pub async fn load(s: &AwsSettings) -> aws_config::SdkConfig {
    load_with_cache(s).await.0
}

/// [`load`], plus a handle on the credentials cache its clients share, for callers that
/// sign outside an SDK call (the data-channel upgrade): they then refresh through the same
/// cache as the SDK instead of running the chain again.
pub async fn load_with_cache(s: &AwsSettings) -> (aws_config::SdkConfig, CredentialsCache) {
    let cache = CredentialsCache::default();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).identity_cache(cache.clone());
    if let Some(p) = &s.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &s.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(c) = &s.credentials {
        loader = loader.credentials_provider(aws_sdk_ssm::config::Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.expose().clone(),
            c.session_token.as_ref().map(|t| t.expose().clone()),
            None,
            "session-proxy-config",
        ));
    }
    if let Some(u) = &s.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    (loader.load().await, cache)
}
