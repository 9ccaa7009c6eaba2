//! The simulator's check of signed data-channel upgrades (`sim --require-signed-upgrade`).
//!
//! The simulator knows the one key pair its environment lines hand out ([`ACCESS_KEY_ID`],
//! [`SECRET_ACCESS_KEY`]). It re-signs the request it received with that secret, at the time
//! and region the client's signature names, using the same aws-sigv4 code the client uses
//! ([`sign_request`]), and compares the `Authorization` headers. Without the flag it admits
//! every upgrade and only counts them, so tests can see that the client signs (and tests that
//! use other secrets keep working).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_ssm::config::Credentials;
use tokio_tungstenite::tungstenite::http::Request;

use crate::sim::credentials::Minter;
use crate::ssm::dial::sign::{sign_request, SERVICE};

/// The access key id the simulator accepts (and prints in its environment lines).
pub const ACCESS_KEY_ID: &str = "AKIASIMULATOR0000000";
/// Its secret: a client signing with any other secret is refused.
pub const SECRET_ACCESS_KEY: &str = "simulator-secret-key";

/// How an upgrade request was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No `Authorization` header at all.
    Unsigned,
    /// Signed with the simulator's credentials; the signature matches.
    Valid,
    /// Signed, but wrongly: the text says why (it becomes the 403 body).
    Invalid(String),
}

/// How many upgrades came validly signed, unsigned, wrongly signed, and were refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct UpgradeCounts {
    pub signed: u64,
    pub unsigned: u64,
    pub invalid: u64,
    pub refused: u64,
}

/// Admits or refuses upgrades by their signature, and counts them.
#[derive(Debug, Default)]
pub struct Gate {
    required: bool,
    /// With `sim --credential-lifetime`: upgrades are checked against the minted keys, and
    /// a signed upgrade with an unknown or expired key is refused even when not `required`.
    minter: Option<Arc<Minter>>,
    signed: AtomicU64,
    unsigned: AtomicU64,
    invalid: AtomicU64,
    refused: AtomicU64,
}

impl Gate {
    /// `required`: refuse unsigned and wrongly signed upgrades; otherwise admit all (but see
    /// `minter`: with it, signatures are checked against its short-lived keys).
    pub fn new(required: bool, minter: Option<Arc<Minter>>) -> Self {
        Self {
            required,
            minter,
            ..Self::default()
        }
    }

    /// `Err(body of the 403)` when the upgrade must be refused.
    pub fn admit(&self, req: &Request<()>) -> Result<(), String> {
        let verdict = match &self.minter {
            Some(m) => verify_with(req, &|key, token| m.upgrade_secret(key, token)),
            None => verify(req),
        };
        let (counter, why, refuse) = match verdict {
            Verdict::Valid => (&self.signed, None, false),
            Verdict::Unsigned => (
                &self.unsigned,
                Some("the request is not signed (SigV4 required)".to_owned()),
                self.required,
            ),
            Verdict::Invalid(why) => (
                &self.invalid,
                Some(why),
                self.required || self.minter.is_some(),
            ),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match why {
            Some(why) if refuse => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(format!("data-channel upgrade refused: {why}"))
            }
            _ => Ok(()),
        }
    }

    pub fn counts(&self) -> UpgradeCounts {
        UpgradeCounts {
            signed: self.signed.load(Ordering::Relaxed),
            unsigned: self.unsigned.load(Ordering::Relaxed),
            invalid: self.invalid.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// Checks the SigV4 signature of an upgrade request against the simulator's fixed key.
pub fn verify(req: &Request<()>) -> Verdict {
    verify_with(req, &|key, _| match key {
        ACCESS_KEY_ID => Ok(SECRET_ACCESS_KEY.to_owned()),
        other => Err(format!("unknown access key id {other}")),
    })
}

/// The secret of an access key id (given the session token sent), or why it is refused.
type SecretOf<'a> = dyn Fn(&str, Option<&str>) -> Result<String, String> + 'a;

/// Checks the SigV4 signature of an upgrade request, finding secrets with `secret_of`.
pub fn verify_with(req: &Request<()>, secret_of: &SecretOf<'_>) -> Verdict {
    let Some(auth) = header(req, "authorization") else {
        return Verdict::Unsigned;
    };
    match check(req, auth, secret_of) {
        Ok(()) => Verdict::Valid,
        Err(why) => Verdict::Invalid(why),
    }
}

fn header<'a>(req: &'a Request<()>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn check(req: &Request<()>, auth: &str, secret_of: &SecretOf<'_>) -> Result<(), String> {
    let scope = auth
        .split_once("Credential=")
        .and_then(|(_, rest)| rest.split(',').next())
        .ok_or("the Authorization header has no Credential scope")?;
    let parts: Vec<&str> = scope.split('/').collect();
    let [key_id, _day, region, service, "aws4_request"] = parts.as_slice() else {
        return Err(format!("malformed credential scope {scope}"));
    };
    if *service != SERVICE {
        return Err(format!("signed for service {service}, not {SERVICE}"));
    }
    let token = header(req, "x-amz-security-token").map(str::to_owned);
    let secret = secret_of(key_id, token.as_deref())?;
    let date = header(req, "x-amz-date").ok_or("the X-Amz-Date header is missing")?;
    let time = parse_amz_date(date).ok_or_else(|| format!("malformed X-Amz-Date {date}"))?;
    let creds = Credentials::new(*key_id, secret, token, None, "sim");
    let mut expected = Request::builder()
        .uri(req.uri().clone())
        .header("host", header(req, "host").unwrap_or_default())
        .body(())
        .map_err(|e| e.to_string())?;
    sign_request(&mut expected, &creds, region, time).map_err(|e| e.to_string())?;
    if header(&expected, "authorization") == Some(auth) {
        Ok(())
    } else {
        Err("the signature does not match (wrong secret access key?)".into())
    }
}

/// `20261130T193000Z` → the instant it names (UTC).
pub(crate) fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    if s.len() != 16 || s.get(8..9) != Some("T") || s.get(15..16) != Some("Z") {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let secs = days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    fn signed_with(secret: &str) -> Request<()> {
        let mut req = "ws://127.0.0.1:9/v1/data-channel/s-1?role=publish_subscribe"
            .into_client_request()
            .unwrap();
        let creds = Credentials::new(ACCESS_KEY_ID, secret, None, None, "test");
        sign_request(&mut req, &creds, "us-east-1", SystemTime::now()).unwrap();
        req
    }

    #[test]
    fn amz_date_parses_to_the_instant_it_names() {
        let t = parse_amz_date("20261130T193000Z").unwrap();
        let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_796_067_000);
        assert_eq!(parse_amz_date("2026-11-30T19:30"), None);
    }

    #[test]
    fn upgrade_signed_with_the_simulator_secret_is_valid() {
        assert_eq!(verify(&signed_with(SECRET_ACCESS_KEY)), Verdict::Valid);
    }

    #[test]
    fn upgrade_signed_with_another_secret_is_invalid() {
        assert!(matches!(verify(&signed_with("nope")), Verdict::Invalid(_)));
    }

    #[test]
    fn upgrade_without_authorization_is_unsigned() {
        let req = "ws://127.0.0.1:9/v1/data-channel/s-1"
            .into_client_request()
            .unwrap();
        assert_eq!(verify(&req), Verdict::Unsigned);
    }
}
