//! SSM API failures that are the proxy's doing, not AWS's: the SDK reports a proxy's 407 as an
//! HTTP answer (plain-http endpoints, absolute-form requests) or as a tunnel error (https
//! endpoints, CONNECT), and an unreachable proxy as a connect error that does not say which
//! host it was. These turn them into [`ProxyError`]s and messages that name the proxy.

use aws_sdk_ssm::error::SdkError;

use crate::proxy::{ProxyError, ProxyUrl};

/// The SSM endpoint of `conf`: its override, or the regional https one.
pub(super) fn ssm_endpoint(conf: &aws_config::SdkConfig) -> String {
    let region = conf.region().map_or("", |r| r.as_ref());
    conf.endpoint_url().map_or_else(
        || format!("https://ssm.{region}.amazonaws.com"),
        str::to_owned,
    )
}

/// The proxy's refusal hidden in `err` (whose display chain is `text`), if any.
pub(super) fn refusal<E>(
    err: &SdkError<E>,
    text: &str,
    proxy: Option<&ProxyUrl>,
) -> Option<ProxyError> {
    let proxy = proxy?;
    let status = err.raw_response().map(|r| r.status().as_u16());
    if status != Some(407) && !text.contains("proxy authorization required") {
        return None;
    }
    let name = proxy.to_string();
    Some(if proxy.has_credentials() {
        ProxyError::AuthRefused { proxy: name }
    } else {
        ProxyError::AuthRequired { proxy: name }
    })
}

/// `message` of a transport failure, saying that the connection went through `proxy`.
pub(super) fn transport_message(message: String, proxy: Option<&ProxyUrl>) -> String {
    match proxy {
        Some(p) => format!("{message} (through the proxy {p}; check that it runs and can reach AWS, or set NO_PROXY for this host)"),
        None => message,
    }
}
