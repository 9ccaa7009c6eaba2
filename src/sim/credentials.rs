//! Short-lived credentials the simulator hands out and checks (`sim --credential-lifetime`).
//!
//! Real accounts give a long-running master keys that expire (SSO, assumed roles,
//! `credential_process`). To test that the client refreshes them, the simulator mints key
//! triples on `GET /_sim/credentials` (answered in the `credential_process` JSON shape, so a
//! one-line `curl` script is a credential process) and then checks every API call's SigV4
//! signature, and every signed data-channel upgrade, against what it minted. The answers are
//! the service's: an unknown key is `UnrecognizedClientException`, an expired one
//! `ExpiredTokenException`, a wrong signature `InvalidSignatureException`, all HTTP 400 in
//! AWS JSON 1.1's error shape. Signatures are recomputed with aws-sigv4, the crate the SDK
//! signs with, over exactly the headers the client says it signed. The simulator only
//! listens on loopback, so the minting endpoint is reachable from this machine only.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_ssm::config::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use serde_json::{json, Value};

use crate::sim::aws_error::{kind, ApiError};

/// Where the simulator mints credentials.
pub const PATH: &str = "/_sim/credentials";
/// Minted keys kept for checking; past it the one expiring first is forgotten.
const MAX_KEYS: usize = 1024;

/// One minted key triple and when it stops working.
#[derive(Debug, Clone)]
struct Minted {
    secret: String,
    token: String,
    expires: SystemTime,
}

/// Mints credentials that expire after `lifetime` and checks requests signed with them.
#[derive(Debug)]
pub struct Minter {
    lifetime: Duration,
    keys: Mutex<HashMap<String, Minted>>,
    issued: AtomicU64,
}

/// The parts of an API request its signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Path and query, as on the request line.
    pub path: &'a str,
    /// Every header, names in any case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// What the `Authorization` header names.
struct Scope<'a> {
    key_id: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
}

impl Minter {
    pub fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            keys: Mutex::default(),
            issued: AtomicU64::new(0),
        }
    }

    /// How many key triples were handed out.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// A fresh key triple, as `credential_process` output.
    pub fn issue(&self, now: SystemTime) -> Value {
        let hex = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .to_ascii_uppercase();
        let key_id = format!("ASIASIM{}", hex.get(..13).unwrap_or_default());
        let minted = Minted {
            secret: uuid::Uuid::new_v4().simple().to_string(),
            token: format!("simtoken-{}", uuid::Uuid::new_v4().simple()),
            expires: whole_seconds(now + self.lifetime),
        };
        let out = json!({
            "Version": 1,
            "AccessKeyId": key_id,
            "SecretAccessKey": minted.secret,
            "SessionToken": minted.token,
            "Expiration": rfc3339(minted.expires),
        });
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= MAX_KEYS {
            let first = keys.iter().min_by_key(|(_, m)| m.expires);
            if let Some(k) = first.map(|(k, _)| k.clone()) {
                keys.remove(&k);
            }
        }
        keys.insert(key_id, minted);
        self.issued.fetch_add(1, Ordering::Relaxed);
        out
    }

    /// The secret of `key_id` if it was minted, is unexpired at `now` and `token` is its own.
    fn secret(
        &self,
        key_id: &str,
        token: Option<&str>,
        now: SystemTime,
    ) -> Result<String, ApiError> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let unrecognized = || {
            ApiError::new(
                kind::UNRECOGNIZED_CLIENT,
                "The security token included in the request is invalid.",
            )
        };
        let m = keys.get(key_id).ok_or_else(unrecognized)?;
        if token != Some(m.token.as_str()) {
            return Err(unrecognized());
        }
        if now >= m.expires {
            return Err(ApiError::new(
                kind::EXPIRED_TOKEN,
                "The security token included in the request is expired",
            ));
        }
        Ok(m.secret.clone())
    }

    /// Checks an API call's SigV4 signature against the minted keys.
    pub fn check_api(&self, req: &SignedRequest<'_>, now: SystemTime) -> Result<(), ApiError> {
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let incomplete = |what: &str| {
            ApiError::new(
                kind::INCOMPLETE_SIGNATURE,
                format!("Authorization header requires {what}"),
            )
        };
        let auth = header("authorization").ok_or_else(|| incomplete("a value"))?;
        let scope = parse_scope(auth).ok_or_else(|| incomplete("a Credential scope"))?;
        let token = header("x-amz-security-token");
        let secret = self.secret(scope.key_id, token, now)?;
        let date = header("x-amz-date").ok_or_else(|| incomplete("an X-Amz-Date header"))?;
        let time = crate::sim::signed_upgrade::parse_amz_date(date)
            .ok_or_else(|| incomplete("a valid X-Amz-Date"))?;
        let signed: Vec<(&str, &str)> = scope
            .signed_headers
            .iter()
            .filter(|h| !matches!(**h, "x-amz-date" | "x-amz-security-token"))
            .filter_map(|h| header(h).map(|v| (*h, v)))
            .collect();
        let creds = Credentials::new(scope.key_id, secret, token.map(str::to_owned), None, "sim");
        let expected = signature(req, &signed, &creds, &scope, time);
        let given = auth.split_once("Signature=").map(|(_, s)| s.trim());
        match expected {
            Some(sig) if given == Some(sig.as_str()) => Ok(()),
            _ => Err(ApiError::new(
                kind::INVALID_SIGNATURE,
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method.",
            )),
        }
    }

    /// The secret for a signed data-channel upgrade, or why it is refused.
    pub fn upgrade_secret(&self, key_id: &str, token: Option<&str>) -> Result<String, String> {
        self.secret(key_id, token, SystemTime::now())
            .map_err(|e| e.to_string())
    }
}

/// `AWS4-HMAC-SHA256 Credential=K/D/R/S/aws4_request, SignedHeaders=a;b, Signature=…`.
fn parse_scope(auth: &str) -> Option<Scope<'_>> {
    let rest = auth.trim().strip_prefix("AWS4-HMAC-SHA256 ")?;
    let field = |name: &str| {
        rest.split(',')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(name))
    };
    let parts: Vec<&str> = field("Credential=")?.split('/').collect();
    let [key_id, _day, region, service, "aws4_request"] = parts.as_slice() else {
        return None;
    };
    Some(Scope {
        key_id,
        region,
        service,
        signed_headers: field("SignedHeaders=")?.split(';').collect(),
    })
}

/// The signature aws-sigv4 computes for `req` over `headers` with `creds` at `time`.
fn signature(
    req: &SignedRequest<'_>,
    headers: &[(&str, &str)],
    creds: &Credentials,
    scope: &Scope<'_>,
    time: SystemTime,
) -> Option<String> {
    let identity = creds.clone().into();
    let mut settings = SigningSettings::default();
    // Sign whatever the client signed: the check must not drop a header it covered.
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(time)
        .settings(settings)
        .build()
        .ok()?
        .into();
    let signable = SignableRequest::new(
        req.method,
        req.path,
        headers.iter().copied(),
        SignableBody::Bytes(req.body),
    )
    .ok()?;
    let (_, sig) = sign(signable, &params).ok()?.into_parts();
    Some(sig)
}

/// `t` rounded down to the second, so the `Expiration` a client reads is the exact instant
/// the key stops working (RFC 3339 here has no fractions).
fn whole_seconds(t: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs())
}

/// `2026-11-30T21:30:00Z`: the `Expiration` form `credential_process` output uses.
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or_default();
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests;
