//! \[pure\] What changed between two validated configs, for `session-proxy reload` (the shape of
//! rathole's `calculate_events`): the daemon applies each [`Change`] — start or drain an
//! upstream pool, swap the router, rebind listeners — and reports the ones that need a restart.
//!
//! Upstreams are compared by name and by value (so a change to the `aws:` defaults shows up as
//! [`Change::UpstreamChanged`] for every upstream that inherits it); moving an upstream within
//! the file is not a change. A listener whose only change is `max_connections` or
//! `idle_timeout_secs` is [`Change::ListenerLimitsChanged`], which the daemon applies in place
//! (to connections accepted afterwards); any other listener change needs a restart. The list
//! comes out in a fixed order: listeners, removed upstreams
//! (old file order), added and changed upstreams (new file order), routes, default, hosts,
//! log level, restart-only keys.

use std::fmt;

use super::{Config, Limits, Listener};

/// One difference between the running config and the reloaded one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    UpstreamAdded(String),
    UpstreamRemoved(String),
    /// Any setting of the upstream differs (targets, AWS, SSH, pool, keepalive, ...).
    UpstreamChanged(String),
    /// The `routes:` list differs (including order).
    RoutesChanged,
    /// Listeners added, removed, moved or with other users: needs a restart.
    ListenersChanged,
    /// Only the cap or idle timeout of `listeners[index]` differs; applies to new connections.
    ListenerLimitsChanged {
        index: usize,
        listener: String,
        old: Limits,
        new: Limits,
    },
    DefaultChanged,
    HostsChanged,
    LogLevelChanged,
    /// A key that only takes effect when the daemon restarts (`control_socket`, `state_dir`).
    RestartRequired(&'static str),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UpstreamAdded(name) => write!(f, "upstream {name} added"),
            Self::UpstreamRemoved(name) => write!(f, "upstream {name} removed"),
            Self::UpstreamChanged(name) => write!(f, "upstream {name} changed"),
            Self::RoutesChanged => f.write_str("routes changed"),
            Self::ListenersChanged => f.write_str("listeners changed"),
            Self::ListenerLimitsChanged {
                index,
                listener,
                old,
                new,
            } => {
                let secs = |d: Option<std::time::Duration>| {
                    d.map_or("off".to_owned(), |d| d.as_secs().to_string())
                };
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
                write!(f, "listeners[{index}] ({listener}): {}", parts.join(", "))?;
                f.write_str("; applies to new connections, open ones keep the old limits")
            }
            Self::DefaultChanged => f.write_str("default action changed"),
            Self::HostsChanged => f.write_str("host aliases changed"),
            Self::LogLevelChanged => f.write_str("log level changed"),
            Self::RestartRequired(key) => {
                write!(f, "{key} changed; restart the daemon to apply it")
            }
        }
    }
}

/// The changes that turn `old` into `new`; empty when nothing the daemon cares about changed.
pub fn diff(old: &Config, new: &Config) -> Vec<Change> {
    let mut changes = listener_changes(&old.listeners, &new.listeners);
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
        if old.upstream(&up.name).is_some_and(|o| o != up) {
            changes.push(Change::UpstreamChanged(up.name.clone()));
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
    changes
}

/// One [`Change::ListenersChanged`] if anything but the limits differs, else one
/// [`Change::ListenerLimitsChanged`] per listener whose limits differ.
fn listener_changes(old: &[Listener], new: &[Listener]) -> Vec<Change> {
    let same_but_limits = old.len() == new.len()
        && old
            .iter()
            .zip(new)
            .all(|(o, n)| o.with_limits(n.limits()) == *n);
    if !same_but_limits {
        return vec![Change::ListenersChanged];
    }
    old.iter()
        .zip(new)
        .enumerate()
        .filter(|(_, (o, n))| o.limits() != n.limits())
        .map(|(index, (o, n))| Change::ListenerLimitsChanged {
            index,
            listener: n.to_string(),
            old: o.limits(),
            new: n.limits(),
        })
        .collect()
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
            ("pool size", &BASE.replace("user: ubuntu,", "user: ubuntu, pool_size: 4,"), vec![UpstreamChanged(up("b"))]),
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
            ("listeners", &format!("{BASE}listeners: [{{ socks5: 127.0.0.1:1081 }}]\n"), vec![ListenersChanged]),
            ("explicit default listener is no change", &format!("{BASE}listeners: [{{ socks5: 127.0.0.1:1080 }}]\n"), vec![]),
            ("hosts", &BASE.replace("web-1", "web-2"), vec![HostsChanged]),
            ("log level", &format!("{BASE}log_level: debug\n"), vec![LogLevelChanged]),
            ("restart-only keys", &format!("{BASE}control_socket: /tmp/c.sock\nstate_dir: /tmp/s\n"),
                vec![RestartRequired("control_socket"), RestartRequired("state_dir")]),
            ("everything at once", &(BASE
                .replace("a: { targets", "a: { lazy: true, targets")
                .replace("  b: {", "  z: {").replace("via: b }", "via: z }")
                .replace("default: direct", "default: a")
                .replace("web-1", "web-9")
                + "listeners: [{ socks5: 127.0.0.1:9 }]\n"),
                vec![ListenersChanged, UpstreamRemoved(up("b")), UpstreamAdded(up("z")), UpstreamChanged(up("a")),
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
    fn listener_limits_alone_change_in_place_and_say_they_apply_to_new_connections() {
        let two = "listeners: [{ socks5: 127.0.0.1:1080 }, { socks5_unix: /tmp/s.sock LIMITS}]\n";
        let base = cfg(&format!("{BASE}{}", two.replace("LIMITS", "")));
        let limited = format!(
            "{BASE}{}",
            two.replace("LIMITS", ", max_connections: 10, idle_timeout_secs: 300")
        );
        let changes = diff(&base, &cfg(&limited));
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(matches!(
            changes[0],
            Change::ListenerLimitsChanged { index: 1, .. }
        ));
        assert_eq!(
            changes[0].to_string(),
            "listeners[1] (socks5 unix:/tmp/s.sock): max_connections 1024 -> 10, idle_timeout_secs off -> 300; \
             applies to new connections, open ones keep the old limits"
        );
        // Next to any other listener change, the whole set needs a restart.
        let moved = limited.replace("1080", "1081");
        assert_eq!(diff(&base, &cfg(&moved)), vec![Change::ListenersChanged]);
    }

    #[test]
    fn changes_display_for_the_reload_report() {
        assert_eq!(
            Change::UpstreamAdded(up("x")).to_string(),
            "upstream x added"
        );
        assert_eq!(
            Change::RestartRequired("state_dir").to_string(),
            "state_dir changed; restart the daemon to apply it"
        );
    }
}
