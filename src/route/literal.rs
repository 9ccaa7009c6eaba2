//! Which host names are really IP addresses.
//!
//! \[pure\] A SOCKS client may send an address as a "domain name" (ATYP 3). If that text is
//! something the system's address parser turns into an address — glibc's `inet_aton` takes
//! `127.2`, `2130706434`, `0x7f000002`, `0177.0.0.2` and `127.0.0.02`, and a bastion's sshd
//! resolves names with the same parser — then routing it as a name would let it slip past CIDR
//! rules (a `reject` for 169.254.169.254 bypassed by `2852039166`). So every such spelling is
//! folded into the address it stands for before routing, and the address, not the text, is
//! what gets dialled. Text that looks numeric but is no valid address in any spelling, or that
//! carries characters no host name has (whitespace, control characters, `%` zones), is refused:
//! some parser somewhere might still read an address into it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a destination host string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Literal {
    /// An IP address in some spelling; dial this address.
    Ip(IpAddr),
    /// A name for a resolver to look up.
    Name,
    /// Neither: refuse it. The reason is for humans.
    Malformed(&'static str),
}

/// Classifies `host` (as received, e.g. a SOCKS ATYP 3 name or a `stdio` target).
pub fn classify(host: &str) -> Literal {
    if host.is_empty() {
        return Literal::Malformed("the host name is empty");
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '%')
    {
        return Literal::Malformed("host names cannot contain spaces, control characters or '%'");
    }
    if let Some(inner) = host.strip_prefix('[') {
        return match inner.strip_suffix(']').map(str::parse::<IpAddr>) {
            Some(Ok(ip)) => Literal::Ip(ip),
            _ => Literal::Malformed("text inside [...] must be an IP address"),
        };
    }
    if host.contains(':') {
        return match host.parse::<Ipv6Addr>() {
            Ok(ip) => Literal::Ip(IpAddr::V6(ip)),
            Err(_) => Literal::Malformed("a name with ':' must be an IPv6 address"),
        };
    }
    let bare = host.strip_suffix('.').unwrap_or(host);
    if bare.split('.').any(str::is_empty) {
        return Literal::Malformed("a host name has no empty labels ('..', or a leading dot)");
    }
    let last = bare.rsplit('.').next().unwrap_or(bare);
    if !is_numeric_label(last) {
        return Literal::Name;
    }
    match inet_aton(bare) {
        Some(ip) => Literal::Ip(IpAddr::V4(ip)),
        None => Literal::Malformed("it looks like an IPv4 address but is not a valid one"),
    }
}

/// A label that `inet_aton` would start reading as a number: decimal digits, or `0x` and hex
/// digits. No DNS top-level label looks like this (RFC 3696 §2), so nothing real is lost.
fn is_numeric_label(label: &str) -> bool {
    let hex = label
        .strip_prefix("0x")
        .or_else(|| label.strip_prefix("0X"));
    match hex {
        Some(h) => h.chars().all(|c| c.is_ascii_hexdigit()),
        None => !label.is_empty() && label.chars().all(|c| c.is_ascii_digit()),
    }
}

/// glibc's `inet_aton` grammar: 1 to 4 parts separated by dots, each decimal, octal (leading
/// `0`) or hex (`0x`); the last part fills all the bytes that remain (`a.b` = a, then 24 bits).
fn inet_aton(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let (last, leading) = parts.split_last()?;
    let mut value: u32 = 0;
    for (i, part) in leading.iter().enumerate() {
        let byte = u8::try_from(number(part)?).ok()?;
        value |= u32::from(byte) << (24 - 8 * i);
    }
    let tail_bits = 32 - 8 * leading.len();
    let tail = number(last)?;
    if tail_bits < 32 && tail >> tail_bits != 0 {
        return None;
    }
    Some(Ipv4Addr::from(value | u32::try_from(tail).ok()?))
}

/// One `inet_aton` part, at most 32 bits. `0x` alone is 0, as glibc reads it.
fn number(part: &str) -> Option<u64> {
    let (digits, radix) =
        if let Some(h) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            if h.is_empty() {
                return Some(0);
            }
            (h, 16)
        } else if let Some(o) = part.strip_prefix('0').filter(|o| !o.is_empty()) {
            (o, 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let n = u64::from_str_radix(digits, radix).ok()?;
    (n <= u64::from(u32::MAX)).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Literal {
        Literal::Ip(s.parse().unwrap())
    }

    #[test]
    fn every_inet_aton_spelling_of_an_ipv4_address_is_that_address() {
        for s in [
            "127.0.0.2",
            "127.2",
            "127.0.2",
            "2130706434",
            "0x7f000002",
            "0X7F000002",
            "0177.0.0.2",
            "0x7f.0.0.2",
            "127.0.0.02",
            "127.0.0.2.",
            "0x7f.0x0.0.02",
            "[127.0.0.2]",
        ] {
            assert_eq!(classify(s), ip("127.0.0.2"), "{s}");
        }
        assert_eq!(classify("2852039166"), ip("169.254.169.254"));
        assert_eq!(classify("0"), ip("0.0.0.0"));
        assert_eq!(classify("0x"), ip("0.0.0.0"));
        assert_eq!(classify("4294967295"), ip("255.255.255.255"));
    }

    #[test]
    fn ipv6_spellings_are_addresses() {
        assert_eq!(classify("::ffff:127.0.0.2"), ip("::ffff:127.0.0.2"));
        assert_eq!(classify("[::ffff:7f00:2]"), ip("::ffff:127.0.0.2"));
        assert_eq!(classify("::1"), ip("::1"));
    }

    #[test]
    fn numeric_text_that_is_no_valid_address_is_refused() {
        for s in [
            "4294967296",
            "256.0.0.1",
            "1.2.3.4.5",
            "1..2",
            "08.1.1.1",
            "1.2.65536",
            "1.16777216",
            "0x1ffffffff",
            "example.1",
            "1.2.3.4..",
        ] {
            assert!(matches!(classify(s), Literal::Malformed(_)), "{s}");
        }
    }

    #[test]
    fn text_a_resolver_might_still_read_an_address_into_is_refused() {
        for s in [
            "127.0.0.2 x",
            "127.0.0.2\t",
            "fe80::1%lo",
            "a:b",
            "[example.com]",
            "",
            "host\u{7}",
        ] {
            assert!(matches!(classify(s), Literal::Malformed(_)), "{s:?}");
        }
    }

    #[test]
    fn ordinary_names_stay_names() {
        for s in [
            "example.com",
            "db.prod.internal",
            "db.prod.internal.",
            "1.2.3.example",
            "127.0.0.1x",
            "0xdeadbeef.com",
            "deadbeef",
            "ip-10-0-0-1.ec2.internal",
            "localhost",
        ] {
            assert_eq!(classify(s), Literal::Name, "{s}");
        }
    }
}
