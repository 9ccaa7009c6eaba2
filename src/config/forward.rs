//! The `forwards:` section: port forwards the master (`serve`) runs, each a local listener
//! whose connections go to one destination `host:port` through an upstream or an instance.
//!
//! `via:` is resolved here, once, so the runtime gets a [`Via`] it does not have to guess
//! about: a declared upstream name wins, then a `hosts:` alias (its instance, profile and
//! region), then an instance id (`i-…`, `mi-…`), then an instance Name tag. A name within two
//! edits of an upstream or alias name is refused as a likely typo instead of being looked up
//! as a Name tag at run time; such an instance can still be reached through a `hosts:` alias or
//! its id. Listen addresses must be unique across forwards and SOCKS `listeners:`.
//!
//! The listen socket and the destination are the types `session-proxy forward` parses its
//! specs into ([`ListenOn`], and the SOCKS server's [`Destination`]), so a forward from the
//! file and one from the command line run alike.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::num::NonZeroUsize;
use std::path::Path;

use super::check::{destination, listen_on, profile, region, sessions, target, Issues};
use super::raw::RawForward;
use super::{
    AwsDefaults, Destination, HostAlias, ListenOn, Listener, Target, DEFAULT_FORWARD_SESSIONS,
};

/// One entry of `forwards:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Non-loopback TCP addresses passed validation only with `allow_remote: true`; a Unix
    /// socket is absolute, `~` already expanded.
    pub listen: ListenOn,
    /// As the instance sees it, port never 0: `localhost` is the instance itself
    /// (`AWS-StartPortForwardingSession`), any other host is dialled by the agent
    /// (`AWS-StartPortForwardingSessionToRemoteHost`); see [`crate::forward::spec::port_session`].
    pub to: Destination,
    pub via: Via,
}

/// How a forward reaches its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A name under `upstreams:` (either kind); its own settings decide the sessions.
    Upstream(String),
    /// A port-forwarding session straight to an instance.
    Instance {
        target: Target,
        /// Effective (the alias's, then the `aws:` default applied).
        profile: Option<String>,
        /// Effective (the alias's, then the `aws:` default applied).
        region: Option<String>,
        /// SSM sessions the forward's connections are spread over.
        sessions: NonZeroUsize,
    },
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Upstream(name) => write!(f, "upstream {name}"),
            Self::Instance { target, .. } => write!(f, "instance {target}"),
        }
    }
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "forward {} -> {} via {}", self.listen, self.to, self.via)
    }
}

/// Whether two listen sockets would be the same socket (TCP port 0 never clashes).
pub(super) fn clashes(a: &ListenOn, b: &ListenOn) -> bool {
    match (a, b) {
        (ListenOn::Tcp(x), ListenOn::Tcp(y)) => x == y && x.port() != 0,
        (ListenOn::Unix(x), ListenOn::Unix(y)) => x == y,
        _ => false,
    }
}

/// The socket a SOCKS listener binds.
pub(super) fn socket_of(l: &Listener) -> ListenOn {
    match l {
        Listener::Tcp { addr, .. } | Listener::Http { addr, .. } => ListenOn::Tcp(*addr),
        Listener::Unix { path, .. } => ListenOn::Unix(path.clone()),
    }
}

/// What `via:` may name, beyond instances.
pub(super) struct ViaNames<'a> {
    /// Every name under `upstreams:`, valid or not (an invalid one has its own issue).
    pub(super) upstreams: &'a BTreeSet<String>,
    /// Every name under `hosts:`, valid or not.
    pub(super) aliases: &'a BTreeSet<String>,
    /// The valid aliases.
    pub(super) hosts: &'a BTreeMap<String, HostAlias>,
    pub(super) aws: &'a AwsDefaults,
}

/// Validates `forwards:`; `listeners` are the SOCKS listeners a forward may not share a
/// socket with.
pub(super) fn forwards(
    v: &mut Issues,
    raw: Vec<RawForward>,
    names: &ViaNames<'_>,
    listeners: &[Listener],
    home: Option<&Path>,
) -> Vec<Forward> {
    let mut out: Vec<Forward> = Vec::new();
    for (i, f) in raw.into_iter().enumerate() {
        let p = format!("forwards[{i}]");
        let Some(fwd) = forward(v, &p, f, names, home) else {
            continue;
        };
        if let Some(j) = out.iter().position(|o| clashes(&o.listen, &fwd.listen)) {
            v.push(
                format!("{p}.listen"),
                format!("same address as forwards[{j}].listen; remove one"),
            );
        }
        let mut socks = listeners.iter().map(socket_of);
        if let Some(j) = socks.position(|l| clashes(&l, &fwd.listen)) {
            v.push(
                format!("{p}.listen"),
                format!("same address as listeners[{j}] (SOCKS); pick another"),
            );
        }
        out.push(fwd);
    }
    out
}

fn forward(
    v: &mut Issues,
    p: &str,
    raw: RawForward,
    names: &ViaNames<'_>,
    home: Option<&Path>,
) -> Option<Forward> {
    let before = v.count();
    let listen = forward_listen(v, p, &raw, home);
    let to = v.check(format!("{p}.to"), destination(&raw.to));
    let via = via(v, p, &raw, names);
    if v.count() != before {
        return None;
    }
    Some(Forward {
        listen: listen?,
        to: to?,
        via: via?,
    })
}

fn forward_listen(
    v: &mut Issues,
    p: &str,
    raw: &RawForward,
    home: Option<&Path>,
) -> Option<ListenOn> {
    let fix = "set allow_remote: true if you really mean it";
    let allow_remote = raw.allow_remote.unwrap_or(false);
    let listen = v.check(
        format!("{p}.listen"),
        listen_on(&raw.listen, allow_remote, fix, home),
    );
    if matches!(listen, Some(ListenOn::Unix(_))) && raw.allow_remote.is_some() {
        v.push(
            format!("{p}.allow_remote"),
            "applies only to TCP listen addresses; remove it",
        );
    }
    listen
}

/// Resolves `via:` (see the module doc for the order).
fn via(v: &mut Issues, p: &str, raw: &RawForward, names: &ViaNames<'_>) -> Option<Via> {
    let name = raw.via.as_str();
    let at = format!("{p}.via");
    if name == "direct" || name == "reject" {
        v.push(
            at,
            format!("{name} is for routes; a forward goes via an upstream name or an instance"),
        );
        return None;
    }
    if names.upstreams.contains(name) {
        let only = "applies only when via is an instance; the upstream's own settings decide";
        for (key, set) in [
            ("profile", raw.profile.is_some()),
            ("region", raw.region.is_some()),
            ("sessions", raw.sessions.is_some()),
        ] {
            if set {
                v.push(format!("{p}.{key}"), only);
            }
        }
        return Some(Via::Upstream(name.to_owned()));
    }
    let alias = names.hosts.get(name);
    let target = match alias {
        Some(a) => a.target.clone(),
        None if names.aliases.contains(name) => return None,
        None => v.check(&at, via_target(name, names))?,
    };
    let profile = match &raw.profile {
        Some(prof) => v.check(format!("{p}.profile"), profile(prof)),
        None => alias.map_or(names.aws.profile.clone(), |a| a.profile.clone()),
    };
    let region = match &raw.region {
        Some(r) => v.check(format!("{p}.region"), region(r)),
        None => alias.map_or(names.aws.region.clone(), |a| a.region.clone()),
    };
    let sessions = match raw.sessions {
        Some(n) => v.check(
            format!("{p}.sessions"),
            sessions(n, DEFAULT_FORWARD_SESSIONS),
        )?,
        None => NonZeroUsize::new(DEFAULT_FORWARD_SESSIONS)?,
    };
    Some(Via::Instance {
        target,
        profile,
        region,
        sessions,
    })
}

/// `via:` that is neither an upstream nor an alias: an instance id or Name tag, unless it is
/// so close to an upstream or alias name that it is probably a typo of one.
fn via_target(name: &str, names: &ViaNames<'_>) -> Result<Target, String> {
    if name.is_empty() {
        return Err("empty; use an upstream name, a hosts: alias or an instance".to_owned());
    }
    let t = target(name)?;
    if let Target::Name(_) = t {
        let known = names.upstreams.iter().chain(names.aliases);
        if let Some(near) = super::syntax::closest(name, known.map(String::as_str), |_| 2) {
            return Err(format!(
                "unknown upstream {name:?}; did you mean {near}? (to reach an instance by this \
                 Name tag, add it under hosts: and use the alias, or use its instance id)"
            ));
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests;
