//! Routing: which way a SOCKS destination goes — through a named upstream, directly, or nowhere.
//!
//! \[pure\] No IO and no DNS: a [`Router`] is built once from the ordered `routes:` list and
//! [`Router::decide`] maps a destination ([`HostRef`]: an IP address or a domain name) to a
//! [`Decision`] that carries the [`Action`], the index of the rule that fired, and a one-line
//! human explanation (what `session-proxy route <host[:port]>` prints and what a rejected SOCKS
//! request logs).
//!
//! Semantics:
//! - IP destinations are matched against CIDR rules only, and the **most specific** matching
//!   prefix wins (longest prefix, as in boringtun's `AllowedIps`); equal prefixes are broken by
//!   rule order. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) also match IPv4 CIDRs, and IPv4
//!   addresses match IPv6 CIDRs that lie inside `::ffff:0:0/96`; specificity is compared in
//!   IPv6 bits so the two spellings rank consistently.
//! - Domain destinations are matched against domain globs only, in order, first match wins
//!   (case-insensitive; `*` also crosses dots, so `*.prod.internal` matches `a.b.prod.internal`
//!   but not `prod.internal`). Names are never resolved here. A "domain" that is an IP literal
//!   is treated as an IP. One trailing dot (`host.example.`) is ignored.
//! - No match: the caller's default action applies.
//!
//! Checking that an upstream named by a rule exists is the config layer's job.

use std::fmt;
use std::net::IpAddr;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use ipnet::IpNet;

mod literal;
mod resolve;
#[cfg(test)]
mod tests;

pub use literal::{classify, Literal};

/// Errors from building matchers and routers and from parsing destinations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("empty pattern; write a CIDR such as 10.0.0.0/8 or a domain glob such as *.internal")]
    EmptyPattern,
    #[error("{pattern:?} is not a valid CIDR: {reason}; write e.g. 10.20.0.0/16 or fd00::/8")]
    InvalidCidr { pattern: String, reason: String },
    #[error("{pattern:?} is not a valid domain glob: {reason}; write e.g. *.prod.internal")]
    InvalidGlob { pattern: String, reason: String },
    #[error("routes[{index}].match: {source}")]
    BadRule {
        index: usize,
        #[source]
        source: Box<Self>,
    },
    #[error("cannot build the domain glob set: {0}")]
    GlobSet(String),
    #[error("{input:?} is not a destination: {reason}; write host, host:port, IP, or [IPv6]:port")]
    InvalidDestination { input: String, reason: &'static str },
}

/// Where a connection goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// Through the named upstream (an SSH-over-SSM bastion pool).
    Upstream(String),
    /// Straight from this machine.
    Direct,
    /// Refused (SOCKS reply "connection not allowed by ruleset").
    Reject,
}

impl Action {
    /// Reads a `via:`/`default:` value: `direct`, `reject`, or else an upstream name.
    pub fn from_via(via: &str) -> Self {
        match via {
            "direct" => Self::Direct,
            "reject" => Self::Reject,
            name => Self::Upstream(name.to_owned()),
        }
    }

    /// The value as it would be written in the config (`direct`, `reject` or the upstream name).
    pub fn as_via(&self) -> &str {
        match self {
            Self::Upstream(name) => name,
            Self::Direct => "direct",
            Self::Reject => "reject",
        }
    }

    /// The upstream name, if this action goes through one.
    pub fn upstream(&self) -> Option<&str> {
        match self {
            Self::Upstream(name) => Some(name),
            Self::Direct | Self::Reject => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Upstream(name) => write!(f, "upstream {name}"),
            Self::Direct => f.write_str("direct"),
            Self::Reject => f.write_str("reject"),
        }
    }
}

/// Where a name is turned into an address.
///
/// `remote` (the default) leaves names to whoever dials them (the bastion's resolver, or this
/// machine's for `direct`), so CIDR rules never see the address a name stands for. `local`
/// resolves the name here first and routes each address by the CIDR rules (a `reject` on any
/// of them refuses the connection), falling back to the name's own rule; the address, not the
/// name, is then dialled. It costs one DNS lookup on this machine per connection, and names
/// that only resolve inside the VPC (private hosted zones) fail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolve {
    #[default]
    Remote,
    Local,
}

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Matcher {
    /// An IPv4 or IPv6 network (host bits already cleared by [`Matcher::parse`]).
    Cidr(IpNet),
    /// A case-insensitive domain glob as written, e.g. `*.prod.internal`.
    DomainGlob(String),
}

impl Matcher {
    /// Parses a `match:` value: a CIDR, a bare IP (a /32 or /128 host route), or a domain glob.
    pub fn parse(pattern: &str) -> Result<Self, RouteError> {
        if pattern.is_empty() {
            return Err(RouteError::EmptyPattern);
        }
        if let Ok(net) = pattern.parse::<IpNet>() {
            return Ok(Self::Cidr(net.trunc()));
        }
        if let Ok(ip) = pattern.parse::<IpAddr>() {
            return Ok(Self::Cidr(IpNet::from(ip)));
        }
        let looks_numeric = pattern.chars().all(|c| c.is_ascii_digit() || c == '.');
        if pattern.contains('/') || pattern.contains(':') || looks_numeric {
            return Err(RouteError::InvalidCidr {
                pattern: pattern.to_owned(),
                reason: cidr_problem(pattern),
            });
        }
        compile_glob(pattern)?;
        Ok(Self::DomainGlob(pattern.to_owned()))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cidr(net) => write!(f, "{net}"),
            Self::DomainGlob(pattern) => f.write_str(pattern),
        }
    }
}

/// Says what is wrong with something that looked like a CIDR but did not parse.
fn cidr_problem(pattern: &str) -> String {
    let (addr, prefix) = match pattern.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (pattern, None),
    };
    let max = match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => 32,
        Ok(IpAddr::V6(_)) => 128,
        Err(_) => return format!("{addr:?} is not an IP address"),
    };
    match prefix {
        Some(p) => format!("prefix length {p:?} must be a number from 0 to {max}"),
        None => "not an IP address or network".to_owned(),
    }
}

const GLOB_PUNCTUATION: &str = "-._*?[]{},!";

fn compile_glob(pattern: &str) -> Result<Glob, RouteError> {
    let invalid = |reason: String| RouteError::InvalidGlob {
        pattern: pattern.to_owned(),
        reason,
    };
    if let Some(c) = pattern
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !GLOB_PUNCTUATION.contains(*c))
    {
        return Err(invalid(format!(
            "character {c:?} cannot appear in a domain name (allowed: letters, digits, {GLOB_PUNCTUATION})"
        )));
    }
    GlobBuilder::new(pattern)
        .case_insensitive(true)
        .literal_separator(false)
        .backslash_escape(false)
        .build()
        .map_err(|e| invalid(e.kind().to_string()))
}

/// One entry of `routes:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub matcher: Matcher,
    pub action: Action,
    /// For domain rules: resolve matching names here and apply CIDR rules to the addresses.
    pub resolve: Resolve,
}

/// A destination as the SOCKS layer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRef<'a> {
    Ip(IpAddr),
    Domain(&'a str),
    /// Text that is neither a name nor an address in any spelling (see [`classify`]); it is
    /// always refused.
    Malformed {
        text: &'a str,
        reason: &'static str,
    },
}

impl<'a> HostRef<'a> {
    /// Classifies a host string the way the system's resolver would: every spelling of an IP
    /// address (`[::1]`, `127.2`, `0x7f000002`, ...) becomes [`HostRef::Ip`], a real name a
    /// [`HostRef::Domain`], and anything else [`HostRef::Malformed`].
    pub fn parse(host: &'a str) -> Self {
        match classify(host) {
            Literal::Ip(ip) => Self::Ip(ip),
            Literal::Name => Self::Domain(host),
            Literal::Malformed(reason) => Self::Malformed { text: host, reason },
        }
    }

    /// Treats a domain that is really an IP literal as that IP.
    fn normalized(self) -> Self {
        match self {
            Self::Domain(d) => Self::parse(d),
            other => other,
        }
    }
}

impl fmt::Display for HostRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Domain(d) => crate::printable::Printable(d).fmt(f),
            Self::Malformed { text, .. } => crate::printable::Printable(text).fmt(f),
        }
    }
}

/// Parses `host`, `host:port`, `IP`, `IPv6`, `[IPv6]` or `[IPv6]:port` (the argument of
/// `session-proxy route`).
pub fn parse_destination(input: &str) -> Result<(HostRef<'_>, Option<u16>), RouteError> {
    let bad = |reason| RouteError::InvalidDestination {
        input: input.to_owned(),
        reason,
    };
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| bad("the port must be a number from 0 to 65535"))
    };
    if let Some(rest) = input.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
        let ip = v6
            .parse::<IpAddr>()
            .map_err(|_| bad("text inside [...] must be an IP address"))?;
        let port = match after {
            "" => None,
            _ => Some(parse_port(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| bad("expected ':' after ']'"))?,
            )?),
        };
        return Ok((HostRef::Ip(ip), port));
    }
    if let Ok(ip) = input.parse::<IpAddr>() {
        return Ok((HostRef::Ip(ip), None));
    }
    if input.matches(':').count() > 1 {
        return Err(bad(
            "IPv6 addresses with a port must be written [addr]:port",
        ));
    }
    let (host, port) = match input.split_once(':') {
        Some((h, p)) => (h, Some(parse_port(p)?)),
        None => (input, None),
    };
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    Ok((HostRef::parse(host), port))
}

/// The outcome of [`Router::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// Index into `routes:` of the rule that fired; `None` when the default applied.
    pub rule: Option<usize>,
    /// One line for humans, e.g.
    /// `10.20.3.4 matched routes[0] (10.20.0.0/16) → upstream bastion-prod`.
    pub explanation: String,
    /// The address the destination stands for when it is an IP in any spelling (`127.2`,
    /// `0x7f000002`, `[::1]`, ...). Callers dial this, never the text, so what is dialled is
    /// what was routed.
    pub ip: Option<IpAddr>,
    /// The destination is a name whose rule (or, with none, the default) says `resolve: local`:
    /// the caller resolves it and decides again per address ([`Router::decide_resolved`]).
    pub resolve_locally: bool,
}

/// The compiled `routes:` list.
#[derive(Clone, Default)]
pub struct Router {
    rules: Vec<Rule>,
    globs: GlobSet,
    /// `glob_rules[i]` is the rule index of the i-th glob in `globs`.
    glob_rules: Vec<usize>,
    /// `resolve:` for names that no rule matches (the top-level key).
    default_resolve: Resolve,
}

impl Router {
    /// Compiles the ordered rules. Fails only on a glob that [`Matcher::parse`] would have
    /// refused (possible when a `Matcher::DomainGlob` is built by hand).
    pub fn new(rules: Vec<Rule>) -> Result<Self, RouteError> {
        let mut builder = GlobSetBuilder::new();
        let mut glob_rules = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            if let Matcher::DomainGlob(pattern) = &rule.matcher {
                let glob = compile_glob(pattern).map_err(|e| RouteError::BadRule {
                    index,
                    source: Box::new(e),
                })?;
                builder.add(glob);
                glob_rules.push(index);
            }
        }
        let globs = builder
            .build()
            .map_err(|e| RouteError::GlobSet(e.to_string()))?;
        Ok(Self {
            rules,
            globs,
            glob_rules,
            default_resolve: Resolve::Remote,
        })
    }

    /// Sets where names that no rule matches are resolved (the top-level `resolve:` key).
    #[must_use]
    pub fn with_default_resolve(mut self, resolve: Resolve) -> Self {
        self.default_resolve = resolve;
        self
    }

    /// The rules, in config order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The index of the rule that applies to `host`, if any (see the module doc for the order).
    pub fn lookup(&self, host: &HostRef<'_>) -> Option<usize> {
        match host.normalized() {
            HostRef::Ip(ip) => self.lookup_ip(ip),
            HostRef::Domain(d) => self.lookup_domain(d),
            HostRef::Malformed { .. } => None,
        }
    }

    fn lookup_ip(&self, ip: IpAddr) -> Option<usize> {
        let mut best: Option<(u8, usize)> = None;
        for (index, rule) in self.rules.iter().enumerate() {
            let Matcher::Cidr(net) = &rule.matcher else {
                continue;
            };
            if let Some(bits) = specificity(net, ip) {
                if best.is_none_or(|(b, _)| bits > b) {
                    best = Some((bits, index));
                }
            }
        }
        best.map(|(_, index)| index)
    }

    fn lookup_domain(&self, domain: &str) -> Option<usize> {
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        if domain.is_empty() {
            return None;
        }
        // GlobSet reports matches in ascending glob order, i.e. in rule order.
        let first = self.globs.matches(domain).into_iter().next()?;
        self.glob_rules.get(first).copied()
    }

    /// Decides where `host` goes; `default` applies when no rule matches.
    pub fn decide(&self, host: &HostRef<'_>, default: &Action) -> Decision {
        let host = host.normalized();
        let ip = match host {
            HostRef::Ip(ip) => Some(ip),
            _ => None,
        };
        if let HostRef::Malformed { reason, .. } = host {
            return Decision {
                action: Action::Reject,
                rule: None,
                explanation: format!("{host} refused: {reason}"),
                ip: None,
                resolve_locally: false,
            };
        }
        let is_name = matches!(host, HostRef::Domain(_));
        let matched = self
            .lookup(&host)
            .and_then(|i| self.rules.get(i).map(|r| (i, r)));
        if let Some((index, rule)) = matched {
            return Decision {
                action: rule.action.clone(),
                rule: Some(index),
                explanation: format!(
                    "{host} matched routes[{index}] ({}) → {}",
                    rule.matcher, rule.action
                ),
                ip,
                resolve_locally: is_name && rule.resolve == Resolve::Local,
            };
        }
        let has_cidrs = self
            .rules
            .iter()
            .any(|r| matches!(r.matcher, Matcher::Cidr(_)));
        let note = match host {
            HostRef::Domain(_) if has_cidrs => {
                " (CIDR routes apply to IP destinations only; names are not resolved)"
            }
            _ => "",
        };
        let explanation = match default {
            Action::Reject => {
                format!(
                    "no route for {host}{note} and default is reject; add a route or set default"
                )
            }
            other => format!("no route for {host}{note}; default → {other}"),
        };
        Decision {
            action: default.clone(),
            rule: None,
            explanation,
            ip,
            resolve_locally: is_name && self.default_resolve == Resolve::Local,
        }
    }
}

/// How specifically `net` matches `ip`, in IPv6 prefix bits, or `None` if it does not.
fn specificity(net: &IpNet, ip: IpAddr) -> Option<u8> {
    match net {
        IpNet::V4(net) => {
            let v4 = match ip {
                IpAddr::V4(a) => a,
                IpAddr::V6(a) => a.to_ipv4_mapped()?,
            };
            net.contains(&v4)
                .then(|| net.prefix_len().saturating_add(96))
        }
        IpNet::V6(net) => {
            let v6 = match ip {
                IpAddr::V6(a) => a,
                // Only nets inside ::ffff:0:0/96 can describe IPv4 addresses.
                IpAddr::V4(a) if net.prefix_len() >= 96 => a.to_ipv6_mapped(),
                IpAddr::V4(_) => return None,
            };
            net.contains(&v6).then(|| net.prefix_len())
        }
    }
}

impl PartialEq for Router {
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules && self.default_resolve == other.default_resolve
    }
}

impl Eq for Router {}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("rules", &self.rules)
            .finish()
    }
}
