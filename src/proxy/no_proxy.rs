//! `NO_PROXY`: the hosts reached directly although a proxy is set. The rules are curl's, which
//! are also those of the SDK's proxy matcher (hyper-util), so API calls and the data channel
//! agree: a comma list of `*` (everything), IP addresses, CIDRs (`10.0.0.0/8`), and domains that
//! match themselves and their subdomains (`corp.example`, `.corp.example` and `*.corp.example`
//! are the same rule). Matching is case-insensitive; ports are not part of a rule.

use std::net::IpAddr;

use ipnet::IpNet;

/// A parsed `NO_PROXY` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    nets: Vec<IpNet>,
    /// Lowercase, without a leading `.` or `*.`.
    domains: Vec<String>,
}

impl NoProxy {
    pub fn parse(list: &str) -> Self {
        let mut me = Self::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                me.all = true;
            } else if let Ok(net) = entry.parse::<IpNet>() {
                me.nets.push(net);
            } else if let Ok(ip) = strip_brackets(entry).parse::<IpAddr>() {
                me.nets.push(IpNet::from(ip));
            } else {
                let d = entry.trim_start_matches("*.").trim_start_matches('.');
                me.domains.push(d.to_ascii_lowercase());
            }
        }
        me
    }

    /// True when `host` (a name or an IP literal, IPv6 with or without brackets) goes direct.
    pub fn matches(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        let host = strip_brackets(host);
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.nets.iter().any(|n| n.contains(&ip));
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.domains.iter().any(|d| {
            host == *d
                || host
                    .strip_suffix(d.as_str())
                    .is_some_and(|head| head.ends_with('.'))
        })
    }

    /// The list in the form the SDK's matcher reads (normalised, so `*.x` means what it means
    /// here).
    pub fn to_list(&self) -> String {
        let mut parts: Vec<String> = vec![];
        if self.all {
            parts.push("*".into());
        }
        parts.extend(self.nets.iter().map(ToString::to_string));
        parts.extend(self.domains.iter().cloned());
        parts.join(",")
    }

    pub fn is_empty(&self) -> bool {
        !self.all && self.nets.is_empty() && self.domains.is_empty()
    }
}

fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    const CASES: &[(&str, &str, bool)] = &[
        // list, host, goes direct
        ("corp.example",          "corp.example",               true),
        ("corp.example",          "ssm.CORP.example",           true),
        ("corp.example",          "notcorp.example",            false),
        (".corp.example",         "corp.example",               true),
        ("*.corp.example",        "a.b.corp.example",           true),
        ("localhost, 127.0.0.1",  "127.0.0.1",                  true),
        ("localhost, 127.0.0.1",  "127.0.0.2",                  false),
        ("10.0.0.0/8",            "10.20.30.40",                true),
        ("10.0.0.0/8",            "11.0.0.1",                   false),
        ("::1",                   "[::1]",                      true),
        ("fd00::/8",              "fd12::1",                    true),
        ("*",                     "ssm.us-east-1.amazonaws.com", true),
        ("",                      "anything",                   false),
        (" , ,amazonaws.com ,",   "ssmmessages.eu-west-1.amazonaws.com", true),
    ];

    #[test]
    fn no_proxy_matches_hosts_domains_ips_and_cidrs_like_curl() {
        for (list, host, want) in CASES {
            assert_eq!(
                NoProxy::parse(list).matches(host),
                *want,
                "{list:?} vs {host}"
            );
        }
    }

    #[test]
    fn the_list_handed_to_the_sdk_keeps_every_rule() {
        let n = NoProxy::parse("*.corp.example, 10.0.0.0/8,127.0.0.1");
        assert_eq!(n.to_list(), "10.0.0.0/8,127.0.0.1/32,corp.example");
        assert!(NoProxy::parse(" , ").is_empty());
    }
}
