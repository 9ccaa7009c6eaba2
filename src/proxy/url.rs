//! A proxy URL as users write it (`http://user:p%40ss@proxy.corp:3128`): parsed once, with the
//! userinfo percent-decoded into Basic credentials and kept out of every printed form. Only
//! `http://` proxies are spoken to (the tunnel to AWS is still TLS end to end); a missing
//! scheme means `http://`, as curl and the SDK read it.

use std::fmt;

use base64::Engine as _;

use super::ProxyError;
use crate::redact::Redacted;

/// Port of a proxy URL that names none (the SDK's `http::Uri` default, so both paths agree).
pub const DEFAULT_PORT: u16 = 80;

/// A parsed `http://[user[:password]@]host[:port][/]` proxy URL.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// Host name or IP literal, without IPv6 brackets.
    host: String,
    port: u16,
    /// Percent-decoded user and password (the password may be empty).
    auth: Option<(String, Redacted<String>)>,
    /// `http://[userinfo@]host:port` with the userinfo as the user wrote it: what the SDK's
    /// proxy matcher parses (and percent-decodes) itself.
    normalized: Redacted<String>,
}

impl ProxyUrl {
    /// Parses `text`; `origin` names where it came from (`proxy`, `HTTPS_PROXY`) in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Self, ProxyError> {
        let invalid = |reason: &'static str| ProxyError::InvalidUrl {
            origin: origin.to_owned(),
            url: redact_text(text),
            reason,
        };
        let text = text.trim();
        let rest = match text.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                return Err(invalid("TLS to the proxy itself is not supported; write http://host:port (the connection to AWS inside the tunnel is still TLS)"))
            }
            Some(_) => return Err(invalid("only http:// proxies are supported")),
            None => text,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| {
            invalid("expected http://[user:password@]host:port with a port from 1 to 65535")
        })?;
        let auth = match userinfo {
            None => None,
            Some(u) if !u.bytes().all(userinfo_byte) => {
                return Err(invalid("the user name and password may only hold letters, digits and -._~!$&'()*+,;=:%; %-escape anything else (@ is %40)"))
            }
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                let user = percent_decode(user).ok_or_else(|| invalid("bad %-escape in the user name"))?;
                let pass = percent_decode(pass).ok_or_else(|| invalid("bad %-escape in the password"))?;
                Some((user, Redacted::new(pass)))
            }
        };
        let userinfo = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        let normalized = format!("http://{userinfo}{}:{port}", bracket(&host));
        Ok(Self {
            host,
            port,
            auth,
            normalized: Redacted::new(normalized),
        })
    }

    /// Where to open the TCP connection.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// True when the URL carries credentials.
    pub fn has_credentials(&self) -> bool {
        self.auth.is_some()
    }

    /// The `Proxy-Authorization` value for the URL's credentials, if any.
    pub fn basic_authorization(&self) -> Option<Redacted<String>> {
        let (user, pass) = self.auth.as_ref()?;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", pass.expose()));
        Some(Redacted::new(format!("Basic {token}")))
    }

    /// The URL with its credentials, for the SDK's own proxy matcher (which never prints it).
    pub fn expose_url(&self) -> &str {
        self.normalized.expose()
    }
}

impl fmt::Display for ProxyUrl {
    /// `http://host:port`, or `http://***@host:port` when the URL carries credentials: the
    /// only form that may reach a log line, `status` or an error message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = if self.auth.is_some() { "***@" } else { "" };
        write!(f, "http://{who}{}:{}", bracket(&self.host), self.port)
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; `None` when the host is empty or has bytes
/// no host name has, or the port is not 1..=65535.
fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    if !host_ok {
        return None;
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// RFC 3986 userinfo bytes (unreserved, sub-delims, `:` and `%` escapes).
fn userinfo_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:%".contains(&b)
}

/// RFC 3986 percent-decoding; `None` on a broken escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = (bytes.next()? as char).to_digit(16)?;
            let lo = (bytes.next()? as char).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// `text` with any userinfo replaced by `***`, for errors about a URL that did not parse.
pub fn redact_text(text: &str) -> String {
    let text = text.trim();
    let (scheme, rest) = match text.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), text),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}***@{host}{tail}"),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn credentials_are_percent_decoded_and_never_displayed() {
        let u = ProxyUrl::parse("proxy", "http://al%40ice:p%3Ass@Proxy.Corp:3128/").unwrap();
        assert_eq!((u.host(), u.port()), ("proxy.corp", 3128));
        assert_eq!(u.to_string(), "http://***@proxy.corp:3128");
        assert_eq!(format!("{u:?}"), "http://***@proxy.corp:3128");
        // base64("al@ice:p:ss")
        let auth = u.basic_authorization().unwrap();
        assert_eq!(auth.expose(), "Basic YWxAaWNlOnA6c3M=");
        assert_eq!(u.expose_url(), "http://al%40ice:p%3Ass@proxy.corp:3128");
    }

    #[test]
    fn scheme_less_and_port_less_urls_read_as_http_port_80() {
        let u = ProxyUrl::parse("HTTPS_PROXY", "10.0.0.1").unwrap();
        assert_eq!(u.to_string(), "http://10.0.0.1:80");
        assert!(!u.has_credentials());
        let v6 = ProxyUrl::parse("proxy", "http://[::1]:3128").unwrap();
        assert_eq!((v6.host(), v6.port()), ("::1", 3128));
        assert_eq!(v6.to_string(), "http://[::1]:3128");
    }

    #[test]
    fn bad_urls_are_refused_without_showing_the_password() {
        for bad in [
            "https://u:secret@proxy:3128",
            "socks5://u:secret@proxy:1080",
            "http://u:secret@proxy:0",
            "http://u:secret@proxy:99999",
            "http://u:secret@:3128",
            "http://u:secret@pro xy:3128",
            "http://u:sec%zzret@proxy:3128",
            "http://u:sec@ret@proxy:3128",
            "http://u:sec ret@proxy:3128",
        ] {
            let e = ProxyUrl::parse("proxy", bad).unwrap_err().to_string();
            assert!(!e.contains("secret"), "{e}");
            assert!(e.contains("***@"), "{e}");
            assert!(e.starts_with("proxy: "), "{e}");
        }
    }
}
