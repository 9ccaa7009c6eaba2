//! The simulator's STS: GetCallerIdentity only, which `doctor` calls to say who the
//! credentials are. STS speaks the AWS query protocol, not JSON: a form-encoded POST
//! (`Action=GetCallerIdentity&Version=2011-06-15`) answered with XML in botocore's shape.
//! Pure request → response, like [`api`](crate::sim::api); [`http`](crate::sim::http) sends
//! form-encoded requests here by their content type.
//!
//! The caller is reported as the key id of the request's SigV4 `Credential=`, in a fixed
//! simulated account. Authentication is the SSM API's: a SigV4-shaped `Authorization`
//! header is required, signatures are not verified.

use crate::sim::api::{authenticate, ApiResponse};
use crate::sim::aws_error::ApiError;

/// The request content type of the query protocol.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
/// What STS answers with.
pub const CONTENT_TYPE: &str = "text/xml";
/// The account every simulated identity belongs to.
pub const ACCOUNT: &str = "123456789012";
/// The API version GetCallerIdentity is served under.
const VERSION: &str = "2011-06-15";
const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Whether a request with this content type is a query-protocol (STS) request.
pub fn is_query(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| c.trim().eq_ignore_ascii_case(FORM_CONTENT_TYPE))
}

/// Handles one form-encoded request.
pub fn handle(authorization: Option<&str>, body: &[u8]) -> ApiResponse {
    let params = form(body);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let result = authenticate(authorization).and_then(|()| match (get("Action"), get("Version")) {
        (Some("GetCallerIdentity"), Some(VERSION)) => Ok(identity(authorization)),
        (action, version) => Err(ApiError::new(
            "InvalidAction",
            format!(
                "Could not find operation {} for version {}",
                action.unwrap_or("(none)"),
                version.unwrap_or("(none)")
            ),
        )),
    });
    let response = match result {
        Ok(xml) => ApiResponse {
            status: 200,
            error_type: None,
            body: xml.into_bytes(),
        },
        Err(e) => error(&e),
    };
    tracing::debug!(status = response.status, "sim: sts request");
    response
}

/// The GetCallerIdentity answer for the key id the request was signed with.
fn identity(authorization: Option<&str>) -> String {
    let key = authorization
        .and_then(|a| a.split_once("Credential="))
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or("AKIDUNKNOWN");
    let key = escape(key);
    format!(
        "<GetCallerIdentityResponse xmlns=\"{XMLNS}\">\n  <GetCallerIdentityResult>\n    \
         <Arn>arn:aws:iam::{ACCOUNT}:user/session-proxy-sim</Arn>\n    <UserId>{key}</UserId>\n    \
         <Account>{ACCOUNT}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    \
         <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
        uuid::Uuid::new_v4()
    )
}

/// The query protocol's error document.
fn error(e: &ApiError) -> ApiResponse {
    let body = format!(
        "<ErrorResponse xmlns=\"{XMLNS}\">\n  <Error>\n    <Type>Sender</Type>\n    \
         <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n\
         </ErrorResponse>\n",
        escape(e.kind),
        escape(&e.message),
        uuid::Uuid::new_v4()
    );
    ApiResponse {
        status: e.status,
        error_type: None,
        body: body.into_bytes(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `a=1&b=x%20y` → pairs, percent- and `+`-decoded (invalid escapes are kept as written).
fn form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIASIMULATOR0000000/20260101/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";

    #[test]
    fn get_caller_identity_names_the_signing_key_in_the_simulated_account() {
        let r = handle(Some(AUTH), b"Action=GetCallerIdentity&Version=2011-06-15");
        assert_eq!(r.status, 200);
        let xml = String::from_utf8(r.body).unwrap();
        assert!(
            xml.contains("<UserId>AKIASIMULATOR0000000</UserId>"),
            "{xml}"
        );
        assert!(
            xml.contains(&format!("<Account>{ACCOUNT}</Account>")),
            "{xml}"
        );
        assert!(
            xml.starts_with("<GetCallerIdentityResponse xmlns="),
            "{xml}"
        );
    }

    #[test]
    fn unsigned_requests_and_other_actions_get_query_protocol_errors() {
        let r = handle(None, b"Action=GetCallerIdentity&Version=2011-06-15");
        assert_eq!(r.status, 403);
        let xml = String::from_utf8(r.body).unwrap();
        assert!(
            xml.contains("<Code>MissingAuthenticationTokenException</Code>"),
            "{xml}"
        );
        let r = handle(Some(AUTH), b"Action=AssumeRole&Version=2011-06-15");
        assert_eq!(r.status, 400);
        let xml = String::from_utf8(r.body).unwrap();
        assert!(xml.contains("<Code>InvalidAction</Code>"), "{xml}");
        assert!(xml.contains("operation AssumeRole for version"), "{xml}");
    }

    #[test]
    fn form_values_are_percent_and_plus_decoded() {
        assert_eq!(
            form(b"Action=Get%43allerIdentity&x=a+b&bad=%zz&"),
            vec![
                ("Action".to_owned(), "GetCallerIdentity".to_owned()),
                ("x".to_owned(), "a b".to_owned()),
                ("bad".to_owned(), "%zz".to_owned()),
            ]
        );
        assert!(is_query(Some(
            "application/x-www-form-urlencoded; charset=utf-8"
        )));
        assert!(!is_query(Some("application/x-amz-json-1.1")));
    }
}
