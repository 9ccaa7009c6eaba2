//! The SDK configuration every AWS client of ours is built from (SSM, KMS and the others):
//! credentials, profile, region, SSO and endpoint overrides (`AWS_ENDPOINT_URL[_SSM]`, how
//! the simulator is reached) resolved by aws-config the way the AWS CLI resolves them, plus
//! what the config file and flags override. One loader, so every client sees the same
//! credentials cache, region and endpoint.

use aws_config::BehaviorVersion;

use crate::proxy::{Proxies, ProxySetting};
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
    /// The config file's `proxy:` (the environment's proxies unless it says otherwise).
    pub proxy: ProxySetting,
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
    load_with(s, &Proxies::from_env(&s.proxy)).await
}

/// [`load`] with the proxies already resolved (the caller dials data channels through the
/// same ones).
pub async fn load_with(s: &AwsSettings, proxies: &Proxies) -> aws_config::SdkConfig {
    load_with_cache(s, proxies).await.0
}

/// [`load_with`], plus a handle on the credentials cache its clients share, for callers that
/// sign outside an SDK call (the data-channel upgrade): they then refresh through the same
/// cache as the SDK instead of running the chain again.
pub async fn load_with_cache(
    s: &AwsSettings,
    proxies: &Proxies,
) -> (aws_config::SdkConfig, CredentialsCache) {
    let cache = CredentialsCache::default();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client(proxies))
        .identity_cache(cache.clone());
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

/// The SDK's default HTTPS client (rustls with aws-lc, as `default_https_client` builds it)
/// with its proxy set explicitly from `proxies`. Left alone, the default client reads the
/// proxy environment itself (behavior version 2025-08-07 and later) and would never see the
/// config file's `proxy:`; this way SDK calls and data channels follow one decision.
fn http_client(proxies: &Proxies) -> aws_sdk_ssm::config::SharedHttpClient {
    use aws_smithy_http_client::{tls, Builder, ConnectorBuilder};
    let proxy = sdk_proxy(proxies);
    // `build_with_connector_fn` is how the SDK builds its own default client; the public
    // `Builder::tls_provider` path has no proxy setting.
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut b = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        b.set_connector_settings(settings.cloned());
        if let Some(c) = components {
            b.set_sleep_impl(c.sleep_impl());
        }
        b.set_proxy_config(Some(proxy.clone()));
        b.build()
    })
}

/// `proxies` in the SDK's terms. One `ProxyConfig` holds one proxy URL for http, https or
/// both; when the environment names two different ones, the SDK's own reading of the same
/// variables (and the same NO_PROXY rules) is used.
fn sdk_proxy(proxies: &Proxies) -> aws_smithy_http_client::proxy::ProxyConfig {
    use aws_smithy_http_client::proxy::ProxyConfig;
    let config = match (proxies.http(), proxies.https()) {
        (None, None) => return ProxyConfig::disabled(),
        (Some(h), Some(s)) if h != s => return ProxyConfig::from_env(),
        (Some(h), Some(_)) => ProxyConfig::all(h.expose_url()),
        (Some(h), None) => ProxyConfig::http(h.expose_url()),
        (None, Some(s)) => ProxyConfig::https(s.expose_url()),
    };
    match config {
        Ok(c) if proxies.no_proxy().is_empty() => c,
        Ok(c) => c.no_proxy(proxies.no_proxy().to_list()),
        // `ProxyUrl` only accepts what `http::Uri` parses, so this is not expected.
        Err(e) => {
            tracing::error!("the SDK refused the proxy URL ({e}); AWS API calls go direct");
            ProxyConfig::disabled()
        }
    }
}
