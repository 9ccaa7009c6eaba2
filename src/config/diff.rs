//! \[pure\] What changed between two validated configs, for `session-proxy reload` (the shape of
//! rathole's `calculate_events`): the daemon applies each [`Change`] — start, resize or drain an
//! upstream pool, swap the router, bind or close listeners, swap a listener's users or limits —
//! and refuses the whole reload when one of them cannot be applied (see
//! [`Change::RestartRequired`]), so the running state always equals one config.
//!
//! Upstreams are compared by name and by value (so a change to the `aws:` defaults shows up as
//! [`Change::UpstreamChanged`] for every upstream that inherits it); moving an upstream within
//! the file is not a change, and a change of `pool_size` alone is [`Change::UpstreamResized`],
//! which the pool applies in place. Listeners are matched by their socket (TCP address or Unix
//! path, see [`match_listeners`]): one only in the new file is added, one only in the old file
//! is removed, and a matched one may change its users or limits, which apply to connections
//! accepted afterwards. An upstream whose `kind:` differs is [`Change::UpstreamKindChanged`]
//! (whatever else differs too): it is run by different machinery, which has to be stopped and
//! the other one started. Forwards are matched by their listen socket like listeners (see
//! [`match_forwards`]); a kept one whose destination or `via` differs is
//! [`Change::ForwardChanged`]. The list comes out in a fixed order: listeners (new file order,
//! then removed ones), forwards (the same), removed upstreams (old file order), added,
//! kind-changed, resized and changed upstreams (new file order), routes, default, hosts, log
//! level, restart-only keys.

use std::fmt;
use std::num::NonZeroUsize;

use super::{Config, Forward, Limits, Listener, Upstream, UpstreamKind, UpstreamProtocol};

/// One difference between the running config and the reloaded one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    UpstreamAdded(String),
    UpstreamRemoved(String),
    /// Only `pool_size` differs: connections are added, or the surplus ones drain and close.
    UpstreamResized {
        name: String,
        old: NonZeroUsize,
        new: NonZeroUsize,
    },
    /// Any other setting of the upstream differs (targets, AWS, SSH, keepalive, ...).
    UpstreamChanged(String),
    /// `kind:` differs: the old upstream's connections or sessions are closed and the new
    /// kind's started.
    UpstreamKindChanged {
        name: String,
        old: UpstreamProtocol,
        new: UpstreamProtocol,
    },
    /// A forward on a socket no running forward listens on (its listen socket, as displayed
    /// by [`super::ListenOn`]).
    ForwardAdded(String),
    /// A running forward the new file drops.
    ForwardRemoved(String),
    /// A kept forward (same listen socket) whose destination or `via` differs.
    ForwardChanged(String),
    /// The `routes:` list differs (including order).
    RoutesChanged,
    /// A listener on a socket the running config does not listen on (its display form).
    ListenerAdded(String),
    /// A running listener the new config drops: it stops accepting, its connections go on.
    ListenerRemoved(String),
    /// The RFC 1929 users of a kept listener differ; `users` is how many there are now.
    ListenerUsersChanged {
        listener: String,
        users: usize,
    },
    /// The cap or idle timeout of a kept listener differs; applies to new connections.
    ListenerLimitsChanged {
        listener: String,
        old: Limits,
        new: Limits,
    },
    DefaultChanged,
    HostsChanged,
    LogLevelChanged,
    /// A key that only takes effect when the daemon restarts (`control_socket`, `state_dir`);
    /// a reload that contains one is refused as a whole.
    RestartRequired(&'static str),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UpstreamAdded(name) => write!(f, "upstream {name} added"),
            Self::UpstreamRemoved(name) => write!(f, "upstream {name} removed"),
            Self::UpstreamResized { name, old, new } => write!(
                f,
                "upstream {name}: pool_size {old} -> {new}, resized in place (open streams keep their connections)"
            ),
            Self::UpstreamChanged(name) => write!(f, "upstream {name} changed"),
            Self::UpstreamKindChanged { name, old, new } => {
                write!(f, "upstream {name}: kind {old} -> {new}")
            }
            Self::ForwardAdded(l) => write!(f, "forward {l} added"),
            Self::ForwardRemoved(l) => write!(f, "forward {l} removed"),
            Self::ForwardChanged(l) => write!(f, "forward {l} changed"),
            Self::RoutesChanged => f.write_str("routes changed"),
            Self::ListenerAdded(l) => write!(f, "listener {l} added"),
            Self::ListenerRemoved(l) => write!(
                f,
                "listener {l} removed; its open connections go on until they end"
            ),
            Self::ListenerUsersChanged { listener, users: 0 } => write!(
                f,
                "listener {listener}: users removed; new connections need no authentication"
            ),
            Self::ListenerUsersChanged { listener, users } => write!(
                f,
                "listener {listener}: users changed ({users} now); new connections must authenticate with them"
            ),
            Self::ListenerLimitsChanged { listener, old, new } => {
                write!(f, "listener {listener}: {}", limits_text(old, new))?;
                f.write_str("; applies to new connections, open ones keep the old limits")
            }
            Self::DefaultChanged => f.write_str("default action changed"),
            Self::HostsChanged => f.write_str("host aliases changed"),
            Self::LogLevelChanged => f.write_str("log level changed"),
            Self::RestartRequired(key) => {
                write!(f, "{key} changed, which only a restart can apply")
            }
        }
    }
}

/// `max_connections 1024 -> 10, idle_timeout_secs off -> 300` (only the parts that differ).
fn limits_text(old: &Limits, new: &Limits) -> String {
    let secs =
        |d: Option<std::time::Duration>| d.map_or("off".to_owned(), |d| d.as_secs().to_string());
    let mut parts = Vec::new();
    if old.max_connections != new.max_connections {
        parts.push(format!(
            "max_connections {} -> {}",
            old.max_connections, new.max_connections
        ));
    }
    if old.idle_timeout != new.idle_timeout {
        parts.push(format!(
            "idle_timeout_secs {} -> {}",
            secs(old.idle_timeout),
            secs(new.idle_timeout)
        ));
    }
    parts.join(", ")
}

/// The changes that turn `old` into `new`; empty when nothing the daemon cares about changed.
pub fn diff(old: &Config, new: &Config) -> Vec<Change> {
    let mut changes = listener_changes(&old.listeners, &new.listeners);
    changes.extend(forward_changes(&old.forwards, &new.forwards));
    for up in &old.upstreams {
        if new.upstream(&up.name).is_none() {
            changes.push(Change::UpstreamRemoved(up.name.clone()));
        }
    }
    for up in &new.upstreams {
        if old.upstream(&up.name).is_none() {
            changes.push(Change::UpstreamAdded(up.name.clone()));
        }
    }
    for up in &new.upstreams {
        match old.upstream(&up.name) {
            Some(o) if o == up => {}
            Some(o) if o.protocol() != up.protocol() => {
                changes.push(Change::UpstreamKindChanged {
                    name: up.name.clone(),
                    old: o.protocol(),
                    new: up.protocol(),
                });
            }
            Some(o) if only_pool_size_differs(o, up) => {
                if let (Some(a), Some(b)) = (o.ssh(), up.ssh()) {
                    changes.push(Change::UpstreamResized {
                        name: up.name.clone(),
                        old: a.pool_size,
                        new: b.pool_size,
                    });
                }
            }
            Some(_) => changes.push(Change::UpstreamChanged(up.name.clone())),
            None => {}
        }
    }
    if old.routes != new.routes {
        changes.push(Change::RoutesChanged);
    }
    if old.default != new.default {
        changes.push(Change::DefaultChanged);
    }
    if old.hosts != new.hosts {
        changes.push(Change::HostsChanged);
    }
    if old.log_level != new.log_level {
        changes.push(Change::LogLevelChanged);
    }
    if old.control_socket != new.control_socket {
        changes.push(Change::RestartRequired("control_socket"));
    }
    if old.state_dir != new.state_dir {
        changes.push(Change::RestartRequired("state_dir"));
    }
    if old.proxy != new.proxy {
        changes.push(Change::RestartRequired("proxy"));
    }
    changes
}

/// Whether both are SSH upstreams that differ in `pool_size` alone.
fn only_pool_size_differs(old: &Upstream, new: &Upstream) -> bool {
    let (Some(o), Some(n)) = (old.ssh(), new.ssh()) else {
        return false;
    };
    let resized = Upstream {
        kind: UpstreamKind::Ssh(super::SshUpstream {
            pool_size: n.pool_size,
            ..o.clone()
        }),
        ..old.clone()
    };
    resized == *new
}

/// Whether two listeners are on the same socket (TCP address or Unix path), whatever their
/// users and limits.
fn same_socket(a: &Listener, b: &Listener) -> bool {
    match (a, b) {
        (Listener::Tcp { addr: x, .. }, Listener::Tcp { addr: y, .. }) => x == y,
        (Listener::Unix { path: x, .. }, Listener::Unix { path: y, .. }) => x == y,
        (Listener::Http { addr: x, .. }, Listener::Http { addr: y, .. }) => x == y,
        _ => false,
    }
}

/// For each listener of `new`, the index of the running listener in `old` that it keeps (same
/// socket), or `None` when it must be bound. Each old listener is kept at most once, first come
/// first served, so two `127.0.0.1:0` entries keep two running listeners.
pub fn match_listeners(old: &[Listener], new: &[Listener]) -> Vec<Option<usize>> {
    match_by(old, new, same_socket)
}

/// For each forward of `new`, the index of the running forward in `old` on the same listen
/// socket, or `None` when it must be started; matched as [`match_listeners`] does.
pub fn match_forwards(old: &[Forward], new: &[Forward]) -> Vec<Option<usize>> {
    match_by(old, new, |o, n| o.listen == n.listen)
}

/// Pairs each of `new` with the first unpaired one of `old` that is `same`.
fn match_by<T>(old: &[T], new: &[T], same: impl Fn(&T, &T) -> bool) -> Vec<Option<usize>> {
    let mut taken = vec![false; old.len()];
    new.iter()
        .map(|n| {
            let i = old
                .iter()
                .zip(&taken)
                .position(|(o, used)| !used && same(o, n))?;
            if let Some(t) = taken.get_mut(i) {
                *t = true;
            }
            Some(i)
        })
        .collect()
}

/// Added, changed and then removed forwards; see [`match_forwards`].
fn forward_changes(old: &[Forward], new: &[Forward]) -> Vec<Change> {
    let matched = match_forwards(old, new);
    let mut changes = Vec::new();
    for (n, m) in new.iter().zip(&matched) {
        match m.and_then(|i| old.get(i)) {
            None => changes.push(Change::ForwardAdded(n.listen.to_string())),
            Some(o) if o != n => changes.push(Change::ForwardChanged(n.listen.to_string())),
            Some(_) => {}
        }
    }
    for (i, o) in old.iter().enumerate() {
        if !matched.contains(&Some(i)) {
            changes.push(Change::ForwardRemoved(o.listen.to_string()));
        }
    }
    changes
}

/// Added, changed (users, limits) and then removed listeners; see [`match_listeners`].
fn listener_changes(old: &[Listener], new: &[Listener]) -> Vec<Change> {
    let matched = match_listeners(old, new);
    let mut changes = Vec::new();
    for (n, m) in new.iter().zip(&matched) {
        let Some(o) = m.and_then(|i| old.get(i)) else {
            changes.push(Change::ListenerAdded(n.to_string()));
            continue;
        };
        if o.users() != n.users() {
            changes.push(Change::ListenerUsersChanged {
                listener: n.to_string(),
                users: n.users().len(),
            });
        }
        if o.limits() != n.limits() {
            changes.push(Change::ListenerLimitsChanged {
                listener: n.to_string(),
                old: o.limits(),
                new: n.limits(),
            });
        }
    }
    for (i, o) in old.iter().enumerate() {
        if !matched.contains(&Some(i)) {
            changes.push(Change::ListenerRemoved(o.to_string()));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const BASE: &str = r#"
aws: { region: eu-west-1 }
upstreams:
  a: { targets: [i-0123456789abcdef0], user: ec2-user, ssh_agent: true }
  b: { targets: [bastion-b], user: ubuntu, ssh_agent: true }
routes:
  - { match: 10.0.0.0/8, via: a }
  - { match: "*.b.internal", via: b }
default: direct
hosts:
  web: { target: web-1 }
"#;

    fn cfg(yaml: &str) -> Config {
        super::super::parse(yaml, "test", Some(Path::new("/home/t"))).unwrap()
    }

    fn up(name: &str) -> String {
        name.to_owned()
    }

    fn n(v: usize) -> NonZeroUsize {
        NonZeroUsize::new(v).unwrap()
    }

    #[test]
    fn diff_vectors() {
        use Change::*;
        #[rustfmt::skip]
        let cases: &[(&str, &str, Vec<Change>)] = &[
            ("identical", BASE, vec![]),
            ("reordered upstreams", &BASE.replace(
                "  a: { targets: [i-0123456789abcdef0], user: ec2-user, ssh_agent: true }\n  b: { targets: [bastion-b], user: ubuntu, ssh_agent: true }",
                "  b: { targets: [bastion-b], user: ubuntu, ssh_agent: true }\n  a: { targets: [i-0123456789abcdef0], user: ec2-user, ssh_agent: true }"),
                vec![]),
            ("pool size alone resizes in place", &BASE.replace("user: ubuntu,", "user: ubuntu, pool_size: 4,"),
                vec![UpstreamResized { name: up("b"), old: n(2), new: n(4) }]),
            ("pool size next to another setting", &BASE.replace("user: ubuntu,", "user: root, pool_size: 4,"), vec![UpstreamChanged(up("b"))]),
            ("targets", &BASE.replace("[bastion-b]", "[bastion-b, bastion-c]"), vec![UpstreamChanged(up("b"))]),
            ("aws default region reaches every upstream and host", &BASE.replace("eu-west-1", "us-east-1"),
                vec![UpstreamChanged(up("a")), UpstreamChanged(up("b")), HostsChanged]),
            ("upstream added", &BASE.replace("routes:", "  c: { targets: [c], user: u, ssh_agent: true }\nroutes:"),
                vec![UpstreamAdded(up("c"))]),
            ("upstream removed (and its route)", &BASE
                .replace("  b: { targets: [bastion-b], user: ubuntu, ssh_agent: true }\n", "")
                .replace("  - { match: \"*.b.internal\", via: b }\n", ""),
                vec![UpstreamRemoved(up("b")), RoutesChanged]),
            ("renamed = removed + added", &BASE.replace("  b: {", "  b2: {").replace("via: b }", "via: b2 }"),
                vec![UpstreamRemoved(up("b")), UpstreamAdded(up("b2")), RoutesChanged]),
            ("route order", &BASE.replace(
                "  - { match: 10.0.0.0/8, via: a }\n  - { match: \"*.b.internal\", via: b }",
                "  - { match: \"*.b.internal\", via: b }\n  - { match: 10.0.0.0/8, via: a }"),
                vec![RoutesChanged]),
            ("route target", &BASE.replace("10.0.0.0/8, via: a", "10.0.0.0/8, via: b"), vec![RoutesChanged]),
            ("default", &BASE.replace("default: direct", "default: reject"), vec![DefaultChanged]),
            ("default omitted means reject", &BASE.replace("default: direct\n", ""), vec![DefaultChanged]),
            ("listener moved = added + removed", &format!("{BASE}listeners: [{{ socks5: 127.0.0.1:1081 }}]\n"),
                vec![ListenerAdded("socks5 127.0.0.1:1081".into()), ListenerRemoved("socks5 127.0.0.1:1080".into())]),
            ("users added to a kept listener", &format!("{BASE}listeners: [{{ socks5: 127.0.0.1:1080, users: [{{ username: a, password: b }}] }}]\n"),
                vec![ListenerUsersChanged { listener: "socks5 127.0.0.1:1080".into(), users: 1 }]),
            ("explicit default listener is no change", &format!("{BASE}listeners: [{{ socks5: 127.0.0.1:1080 }}]\n"), vec![]),
            ("hosts", &BASE.replace("web-1", "web-2"), vec![HostsChanged]),
            ("log level", &format!("{BASE}log_level: debug\n"), vec![LogLevelChanged]),
            ("restart-only keys", &format!("{BASE}control_socket: /tmp/c.sock\nstate_dir: /tmp/s\n"),
                vec![RestartRequired("control_socket"), RestartRequired("state_dir")]),
            ("proxy is restart-only", &format!("{BASE}proxy: http://127.0.0.1:3128\n"), vec![RestartRequired("proxy")]),
            ("everything at once", &(BASE
                .replace("a: { targets", "a: { lazy: true, targets")
                .replace("  b: {", "  z: {").replace("via: b }", "via: z }")
                .replace("default: direct", "default: a")
                .replace("web-1", "web-9")
                + "listeners: [{ socks5: 127.0.0.1:9 }]\n"),
                vec![ListenerAdded("socks5 127.0.0.1:9".into()), ListenerRemoved("socks5 127.0.0.1:1080".into()), UpstreamRemoved(up("b")), UpstreamAdded(up("z")), UpstreamChanged(up("a")),
                     RoutesChanged, DefaultChanged, HostsChanged]),
        ];
        let old = cfg(BASE);
        for (name, new, want) in cases {
            assert_eq!(&diff(&old, &cfg(new)), want, "case {name}");
        }
    }

    #[test]
    fn diff_is_empty_both_ways_for_equal_configs_and_symmetric_for_adds() {
        let a = cfg(BASE);
        let b = cfg(&BASE.replace(
            "routes:",
            "  c: { targets: [c], user: u, ssh_agent: true }\nroutes:",
        ));
        assert!(diff(&b, &b).is_empty());
        assert_eq!(diff(&a, &b), vec![Change::UpstreamAdded(up("c"))]);
        assert_eq!(diff(&b, &a), vec![Change::UpstreamRemoved(up("c"))]);
    }

    #[test]
    fn kept_listeners_change_limits_in_place_and_say_they_apply_to_new_connections() {
        let two = "listeners: [{ socks5: 127.0.0.1:1080 }, { socks5_unix: /tmp/s.sock LIMITS}]\n";
        let base = cfg(&format!("{BASE}{}", two.replace("LIMITS", "")));
        let limited = format!(
            "{BASE}{}",
            two.replace("LIMITS", ", max_connections: 10, idle_timeout_secs: 300")
        );
        let changes = diff(&base, &cfg(&limited));
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(
            changes[0].to_string(),
            "listener socks5 unix:/tmp/s.sock: max_connections 1024 -> 10, idle_timeout_secs off -> 300; \
             applies to new connections, open ones keep the old limits"
        );
        // Moving the other listener leaves the limits change of this one as it was.
        let moved = limited.replace("1080", "1081");
        let changes = diff(&base, &cfg(&moved));
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert!(matches!(changes[0], Change::ListenerAdded(_)));
        assert!(matches!(changes[1], Change::ListenerLimitsChanged { .. }));
        assert!(matches!(changes[2], Change::ListenerRemoved(_)));
    }

    #[test]
    fn listeners_are_matched_by_socket_once_each_whatever_their_order() {
        let l = |yaml: &str| cfg(&format!("{BASE}listeners: {yaml}\n")).listeners;
        let old =
            l("[{ socks5: 127.0.0.1:0 }, { socks5: 127.0.0.1:0 }, { socks5_unix: /tmp/a.sock }]");
        let new =
            l("[{ socks5_unix: /tmp/a.sock }, { socks5: 127.0.0.1:0 }, { socks5: 127.0.0.2:0 }]");
        assert_eq!(match_listeners(&old, &new), vec![Some(2), Some(0), None]);
        assert_eq!(match_listeners(&new, &new), vec![Some(0), Some(1), Some(2)]);
    }

    #[test]
    fn a_kind_change_is_its_own_change_even_with_other_settings() {
        use UpstreamProtocol::{Ssh, SsmPort};
        let ports = BASE.replace(
            "b: { targets: [bastion-b], user: ubuntu, ssh_agent: true }",
            "b: { kind: ssm-port, targets: [bastion-b] }",
        );
        let kind = |old, new| {
            vec![Change::UpstreamKindChanged {
                name: up("b"),
                old,
                new,
            }]
        };
        assert_eq!(diff(&cfg(BASE), &cfg(&ports)), kind(Ssh, SsmPort));
        assert_eq!(diff(&cfg(&ports), &cfg(BASE)), kind(SsmPort, Ssh));
        let tuned = ports.replace(
            "targets: [bastion-b] }",
            "targets: [bastion-b], idle_timeout_secs: 60 }",
        );
        assert_eq!(
            diff(&cfg(&ports), &cfg(&tuned)),
            vec![Change::UpstreamChanged(up("b"))]
        );
        assert_eq!(
            kind(Ssh, SsmPort)[0].to_string(),
            "upstream b: kind ssh -> ssm-port"
        );
    }

    #[test]
    fn forwards_are_added_removed_and_changed_by_listen_socket() {
        use Change::*;
        let fw = |entries: &str| cfg(&format!("{BASE}forwards:\n{entries}"));
        let base = fw("  - { listen: 127.0.0.1:15432, to: db:5432, via: a }\n  - { listen: /tmp/w.sock, to: localhost:80, via: web }\n");
        #[rustfmt::skip]
        let cases: &[(&str, &str, Vec<Change>)] = &[
            ("identical", "  - { listen: 127.0.0.1:15432, to: db:5432, via: a }\n  - { listen: /tmp/w.sock, to: localhost:80, via: web }\n", vec![]),
            ("reordered", "  - { listen: /tmp/w.sock, to: localhost:80, via: web }\n  - { listen: 127.0.0.1:15432, to: db:5432, via: a }\n", vec![]),
            ("destination", "  - { listen: 127.0.0.1:15432, to: db:5433, via: a }\n  - { listen: /tmp/w.sock, to: localhost:80, via: web }\n",
                vec![ForwardChanged("127.0.0.1:15432".into())]),
            ("via", "  - { listen: 127.0.0.1:15432, to: db:5432, via: b }\n  - { listen: /tmp/w.sock, to: localhost:80, via: web }\n",
                vec![ForwardChanged("127.0.0.1:15432".into())]),
            ("sessions", "  - { listen: 127.0.0.1:15432, to: db:5432, via: a }\n  - { listen: /tmp/w.sock, to: localhost:80, via: web, sessions: 4 }\n",
                vec![ForwardChanged("unix:/tmp/w.sock".into())]),
            ("moved = added + removed", "  - { listen: 127.0.0.1:15433, to: db:5432, via: a }\n  - { listen: /tmp/w.sock, to: localhost:80, via: web }\n",
                vec![ForwardAdded("127.0.0.1:15433".into()), ForwardRemoved("127.0.0.1:15432".into())]),
            ("one removed", "  - { listen: /tmp/w.sock, to: localhost:80, via: web }\n",
                vec![ForwardRemoved("127.0.0.1:15432".into())]),
        ];
        for (name, entries, want) in cases {
            assert_eq!(&diff(&base, &fw(entries)), want, "case {name}");
        }
        // An instance forward follows its alias, and the alias change shows on both.
        let moved_alias = cfg(&format!("{}forwards:\n  - {{ listen: 127.0.0.1:15432, to: db:5432, via: a }}\n  - {{ listen: /tmp/w.sock, to: localhost:80, via: web }}\n", BASE.replace("web-1", "web-2")));
        assert_eq!(
            diff(&base, &moved_alias),
            vec![ForwardChanged("unix:/tmp/w.sock".into()), HostsChanged]
        );
        assert_eq!(diff(&cfg(BASE), &base).len(), 2, "both added");
        assert_eq!(
            ForwardRemoved("unix:/tmp/w.sock".into()).to_string(),
            "forward unix:/tmp/w.sock removed"
        );
    }

    #[test]
    fn forwards_are_matched_by_listen_socket_once_each() {
        let f = |entries: &str| cfg(&format!("{BASE}forwards: {entries}\n")).forwards;
        let old = f("[{ listen: 127.0.0.1:0, to: a:1, via: a }, { listen: 127.0.0.1:0, to: b:1, via: a }, { listen: /tmp/f.sock, to: c:1, via: a }]");
        let new = f("[{ listen: /tmp/f.sock, to: c:2, via: a }, { listen: 127.0.0.1:0, to: a:1, via: a }, { listen: 127.0.0.2:0, to: a:1, via: a }]");
        assert_eq!(match_forwards(&old, &new), vec![Some(2), Some(0), None]);
    }

    #[test]
    fn changes_display_for_the_reload_report() {
        assert_eq!(
            Change::UpstreamAdded(up("x")).to_string(),
            "upstream x added"
        );
        assert_eq!(
            Change::RestartRequired("state_dir").to_string(),
            "state_dir changed, which only a restart can apply"
        );
    }
}
