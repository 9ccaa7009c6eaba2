//! SigV4 for the data-channel WebSocket upgrade (§1.4).
//!
//! The service accepts an unsigned upgrade (the token in the first frame authorises the
//! session), but the plugin signs it, and proxies or endpoint policies that look for a signed
//! request refuse the unsigned form. So whenever credentials are at hand the upgrade GET is
//! signed with the SDK's own signer: service `ssmmessages`, the client's region, signed
//! headers `host;x-amz-date` (plus the session token header when there is one).

use std::time::SystemTime;

use aws_sdk_ssm::config::{Credentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Request};

use crate::ssm::identity_cache::CredentialsCache;

/// The signing name of the data-channel endpoints.
pub const SERVICE: &str = "ssmmessages";

/// Why a request could not be signed (a malformed URL or header, never a credential problem:
/// missing credentials mean an unsigned upgrade).
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the stream URL has no host to sign")]
    NoHost,
    #[error("could not sign the data-channel upgrade: {0}")]
    Signer(String),
}

/// Signs upgrades with the credentials of the SDK config the SSM client was built from.
///
/// It asks the SDK's own credentials cache ([`CredentialsCache`]), the one StartSession and
/// ResumeSession just went through: no second copy of the credentials, and a refresh (say
/// `credential_process` handing out keys that expire in minutes) happens once, in the SDK,
/// for the API call and the upgrade that follows it.
#[derive(Debug, Clone)]
pub struct UpgradeSigner {
    cache: CredentialsCache,
    region: String,
}

impl UpgradeSigner {
    /// `None` when the config has no credentials provider or no region: upgrades stay unsigned.
    pub fn new(
        provider: Option<SharedCredentialsProvider>,
        cache: CredentialsCache,
        region: Option<&str>,
    ) -> Option<Self> {
        provider?;
        Some(Self {
            cache,
            region: region?.to_owned(),
        })
    }

    /// Signs `req` in place; leaves it unsigned when no credentials can be had (as before
    /// signing existed), since the service itself does not require the signature.
    pub async fn sign(&self, req: &mut Request<()>) -> Result<(), SignError> {
        let creds = match self.cache.credentials().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("data-channel upgrade left unsigned: no credentials ({e})");
                return Ok(());
            }
        };
        sign_request(req, &creds, &self.region, SystemTime::now())
    }
}

/// Adds `Authorization`, `X-Amz-Date` (and `X-Amz-Security-Token`) to `req` for `creds` at
/// `time`. Pure, so the simulator re-signs with it to verify what a client sent.
pub fn sign_request(
    req: &mut Request<()>,
    creds: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), SignError> {
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .ok_or(SignError::NoHost)?
        .to_owned();
    let uri = req.uri().to_string();
    let identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SignError::Signer(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        "GET",
        &uri,
        std::iter::once(("host", host.as_str())),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| SignError::Signer(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| SignError::Signer(e.to_string()))?
        .into_parts();
    for (name, value) in instructions.headers() {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| SignError::Signer(e.to_string()))?;
        let value = HeaderValue::from_str(value).map_err(|e| SignError::Signer(e.to_string()))?;
        req.headers_mut().insert(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    fn request() -> Request<()> {
        "wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/s-1?role=publish_subscribe"
            .into_client_request()
            .unwrap()
    }

    #[test]
    fn signature_covers_host_and_date_only_without_a_session_token() {
        let mut req = request();
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        sign_request(&mut req, &creds, "us-east-1", SystemTime::UNIX_EPOCH).unwrap();
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/19700101/us-east-1/ssmmessages/aws4_request"
        ));
        assert!(auth.contains("SignedHeaders=host;x-amz-date,"), "{auth}");
        assert_eq!(req.headers()["x-amz-date"], "19700101T000000Z");
        assert!(req.headers().get("x-amz-security-token").is_none());
    }

    #[test]
    fn session_token_is_sent_and_signed() {
        let mut req = request();
        let creds = Credentials::new("AKID", "secret", Some("tok".into()), None, "test");
        sign_request(&mut req, &creds, "eu-west-1", SystemTime::UNIX_EPOCH).unwrap();
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"));
        assert_eq!(req.headers()["x-amz-security-token"], "tok");
    }
}
