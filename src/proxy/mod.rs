//! Corporate HTTP proxies: the one decision of whether, and through which proxy, a connection
//! to an AWS endpoint goes, shared by every SDK client (`ssm::sdk`) and every data-channel
//! WebSocket (`ssm::dial`), first dial and resumes alike.
//!
//! - [`url`]: the proxy URL (`http://user:password@host:port`), credentials percent-decoded,
//!   never printed (`http://***@host:port`).
//! - [`no_proxy`]: `NO_PROXY` rules (curl's, which are also the SDK's).
//! - [`select`]: `proxy:` in the config file over `HTTPS_PROXY`/`HTTP_PROXY`, plus `NO_PROXY`.
//! - [`connect`]: the CONNECT handshake (sans-IO head writer and bounded reply parser, and the
//!   tokio shell that opens the tunnel).

pub mod connect;
pub mod no_proxy;
pub mod select;
pub mod url;

pub use no_proxy::NoProxy;
pub use select::{Proxies, ProxySetting};
pub use url::ProxyUrl;

/// A proxy that cannot be used. Every variant names the proxy in its redacted form only.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{origin}: {url} is not a usable proxy URL: {reason}")]
    InvalidUrl {
        origin: String,
        /// The text with its credentials replaced by `***`.
        url: String,
        reason: &'static str,
    },
    #[error("could not reach the proxy {proxy}: {source}; check that it runs and that HTTPS_PROXY/HTTP_PROXY or the config's proxy: name it")]
    Unreachable {
        proxy: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the proxy {proxy} wants credentials (HTTP 407); put them in the proxy URL: http://USER:PASSWORD@host:port (HTTPS_PROXY/HTTP_PROXY or proxy: in the config file)")]
    AuthRequired { proxy: String },
    #[error("the proxy {proxy} refused the credentials in its URL (HTTP 407); check the user name and password (%-escape special characters)")]
    AuthRefused { proxy: String },
    #[error("the proxy {proxy} refused to connect to {target} (HTTP {status} {reason}); ask its administrators to allow it, or add the host to NO_PROXY if it is reachable directly")]
    Refused {
        proxy: String,
        target: String,
        status: u16,
        reason: String,
    },
    #[error("the proxy {proxy} sent {what}; is it an HTTP proxy?")]
    BadReply { proxy: String, what: String },
    #[error("the proxy {proxy} closed the connection without answering CONNECT")]
    Closed { proxy: String },
    #[error("the proxy {proxy} did not answer CONNECT within {}s", connect::HANDSHAKE_TIMEOUT.as_secs())]
    Timeout { proxy: String },
}

impl ProxyError {
    /// True when the proxy wants other credentials: the user must change the proxy URL, and
    /// retrying cannot help.
    pub fn is_auth(&self) -> bool {
        matches!(self, Self::AuthRequired { .. } | Self::AuthRefused { .. })
    }
}
