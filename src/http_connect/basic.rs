//! `Proxy-Authorization: Basic <base64(user:pass)>` (RFC 7617) into the RFC 1929-shaped
//! [`Credentials`] the SOCKS side already checks in constant time, so both front doors share
//! one credential check.

use crate::redact::Redacted;
use crate::socks::proto::Credentials;

/// The credentials of a `Proxy-Authorization` value, or `None` when it is not Basic, not
/// base64, or has no `:` between username and password.
pub(super) fn parse(value: &[u8]) -> Option<Credentials> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = decode_base64(token.trim())?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let (user, rest) = decoded.split_at(colon);
    Some(Credentials {
        username: user.to_vec(),
        password: Redacted::new(rest.get(1..).unwrap_or_default().to_vec()),
    })
}

/// Standard base64 with `=` padding (padding may be left out). `None` on any other byte.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode_to_username_and_password() {
        // base64("alice:s3cret:with:colons")
        let c = parse(b"Basic YWxpY2U6czNjcmV0OndpdGg6Y29sb25z").unwrap();
        assert_eq!(c.username, b"alice");
        assert_eq!(c.password.expose().as_slice(), b"s3cret:with:colons");
        let c = parse(b"basic   dTpw").unwrap();
        assert_eq!(
            (c.username.as_slice(), c.password.expose().as_slice()),
            (&b"u"[..], &b"p"[..])
        );
    }

    #[test]
    fn other_schemes_bad_base64_and_missing_colon_are_no_credentials() {
        assert!(parse(b"Bearer dTpw").is_none());
        assert!(parse(b"Basic d*pw").is_none());
        assert!(parse(b"Basic YWxpY2U=").is_none()); // "alice", no colon
        assert!(parse(b"Basic").is_none());
    }
}
