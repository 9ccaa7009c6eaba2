//! Dialing the data-channel WebSocket: the upgrade request for the stream URL (verbatim,
//! §1.4), signed when credentials are at hand ([`sign`]), Nagle off (§10 item 18), then the
//! OpenDataChannel frame. Used for the first dial and for every resume, so resumes re-sign
//! and go through the same HTTP proxy (CONNECT, then TLS inside the tunnel) as API calls.

pub mod sign;

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub use sign::{SignError, UpgradeSigner};

use crate::printable::Printable;
use crate::proxy::{connect, Proxies, ProxyError};
use crate::ssm::driver::{ws_config, WsStream};
use crate::ssm::payload::OpenDataChannel;

/// Longest part of a refusal body kept in the message.
const MAX_BODY: usize = 200;

/// Why the data-channel WebSocket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The endpoint answered the upgrade with an HTTP error: with 403 that is the signature
    /// (wrong or refused credentials), which retrying cannot fix.
    #[error("the data-channel endpoint refused the WebSocket upgrade (HTTP {status}: {body}); check the AWS credentials in use (access key and secret of the profile or environment)")]
    Refused { status: u16, body: String },
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The HTTP proxy in the way could not be used (unreachable, wants credentials, refused).
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error(transparent)]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
}

impl DialError {
    /// True when the endpoint refused the credentials (HTTP 401/403): no retry helps.
    pub fn is_refused(&self) -> bool {
        match self {
            Self::Refused { status, .. } => matches!(status, 401 | 403),
            Self::Proxy(p) => p.is_auth(),
            _ => false,
        }
    }

    fn from_ws(e: tokio_tungstenite::tungstenite::Error) -> Self {
        match e {
            tokio_tungstenite::tungstenite::Error::Http(resp) => {
                let body = resp.body().as_deref().unwrap_or_default();
                let text = String::from_utf8_lossy(body);
                let text: String = text.trim().chars().take(MAX_BODY).collect();
                Self::Refused {
                    status: resp.status().as_u16(),
                    body: Printable(&text).to_string(),
                }
            }
            other => Self::WebSocket(other),
        }
    }
}

/// What the OpenDataChannel frame carries besides the token.
#[derive(Debug, Clone)]
pub struct Client<'a> {
    pub client_id: &'a str,
    pub client_version: &'a str,
}

/// Dials `url` (through the proxy `proxies` pick for it, if any), signing the upgrade with
/// `signer` if any, and sends the OpenDataChannel frame.
pub async fn open(
    url: &str,
    token: &str,
    client: &Client<'_>,
    signer: Option<&UpgradeSigner>,
    proxies: &Proxies,
) -> Result<WsStream, DialError> {
    let mut req = url.into_client_request()?;
    if let Some(s) = signer {
        s.sign(&mut req).await?;
    }
    let mut ws = match proxies.for_url(url) {
        None => {
            tokio_tungstenite::connect_async_with_config(req, Some(ws_config()), true)
                .await
                .map_err(DialError::from_ws)?
                .0
        }
        Some(proxy) => {
            let uri = req.uri();
            let tls = uri.scheme_str() == Some("wss");
            let host = uri.host().unwrap_or_default();
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
            tracing::debug!("data channel to {host}:{port} through the proxy {proxy}");
            let tcp = connect::tunnel(proxy, &host, port).await?;
            tokio_tungstenite::client_async_tls_with_config(req, tcp, Some(ws_config()), None)
                .await
                .map_err(DialError::from_ws)?
                .0
        }
    };
    let frame = OpenDataChannel {
        message_schema_version: "1.0".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        token_value: token.to_owned(),
        client_id: Some(client.client_id.to_owned()),
        client_version: Some(client.client_version.to_owned()),
    };
    ws.send(WsMessage::text(frame.to_json())).await?;
    Ok(ws)
}
