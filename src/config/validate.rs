//! Validation of the file: [`RawConfig`] → [`Config`], plus [`warnings`] about valid but
//! suspicious configs.
//!
//! Every problem is collected (with its key path) rather than stopping at the first. A section
//! with problems yields nothing, and the whole result is an error if any issue was recorded, so
//! a partially valid config never escapes. `~` is expanded against the `home` passed in (tests
//! pass a fixed one). The single-value checks live in `check.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use super::check::{
    abs_path, action, alias_name, drain_timeout, idle_timeout, log_level, max_connections, port,
    profile, region, socket_path, target, tcp_addr, Issues,
};
use super::forward::{clashes, forwards, socket_of, ViaNames};
use super::raw::{RawAws, RawConfig, RawHost, RawListener, RawMap, RawUser};
use super::upstream::upstream;
use super::{
    AwsDefaults, Config, HostAlias, HostKeyPolicy, Issue, Limits, Listener, ProxySetting, User,
    DEFAULT_DRAIN_TIMEOUT_SECS,
};
use crate::route::{Action, Matcher, Resolve, Router, Rule};

pub(super) fn validate(raw: RawConfig, home: Option<&Path>) -> Result<Config, Vec<Issue>> {
    let mut v = Issues::default();
    let aws = aws_defaults(&mut v, raw.aws.unwrap_or_default());
    let listeners = match raw.listeners {
        None => Config::default().listeners,
        Some(list) => listeners(&mut v, list, home),
    };
    let declared = names(&raw.upstreams);
    let upstreams = raw
        .upstreams
        .0
        .into_iter()
        .filter_map(|(name, up)| upstream(&mut v, name, up, &aws, home))
        .collect();
    let routes = routes(&mut v, raw.routes.unwrap_or_default(), &declared)
        .with_default_resolve(raw.resolve.unwrap_or_default());
    let default = match raw.default {
        Some(d) => v
            .check("default", action(&d, &declared))
            .unwrap_or(Action::Reject),
        None => Action::Reject,
    };
    let aliases = names(&raw.hosts);
    let hosts: BTreeMap<String, HostAlias> = raw
        .hosts
        .0
        .into_iter()
        .filter_map(|(alias, h)| host(&mut v, alias, h, &aws))
        .collect();
    let names = ViaNames {
        upstreams: &declared,
        aliases: &aliases,
        hosts: &hosts,
        aws: &aws,
    };
    let forwards = forwards(
        &mut v,
        raw.forwards.unwrap_or_default(),
        &names,
        &listeners,
        home,
    );
    let control_socket = raw
        .control_socket
        .and_then(|s| v.check("control_socket", socket_path(&s, home)));
    let state_dir = raw
        .state_dir
        .and_then(|s| v.check("state_dir", abs_path(&s, home)));
    let log_level = raw
        .log_level
        .and_then(|l| v.check("log_level", log_level(&l)));
    let drain_timeout = raw
        .drain_timeout_secs
        .and_then(|s| v.check("drain_timeout_secs", drain_timeout(s)))
        .unwrap_or(Duration::from_secs(DEFAULT_DRAIN_TIMEOUT_SECS));
    let exec_document = raw
        .exec
        .and_then(|e| e.document)
        .and_then(|d| v.check("exec.document", exec_document(d)));
    let proxy = match raw.proxy {
        None => ProxySetting::Environment,
        Some(p) => v.check("proxy", proxy(p.as_deref())).unwrap_or_default(),
    };
    v.finish(Config {
        aws,
        listeners,
        upstreams,
        routes,
        default,
        hosts,
        control_socket,
        state_dir,
        log_level,
        drain_timeout,
        forwards,
        exec_document,
        proxy,
    })
}

/// `proxy:`: empty or `none`, or `http://[user:password@]host:port` (never echoed with its
/// credentials).
fn proxy(value: Option<&str>) -> Result<ProxySetting, String> {
    ProxySetting::parse(value).map_err(|e| match e {
        crate::proxy::ProxyError::InvalidUrl { url, reason, .. } => {
            format!("{url} is not a usable proxy URL: {reason}; write http://[user:password@]host:port, or none")
        }
        other => other.to_string(),
    })
}

fn aws_defaults(v: &mut Issues, raw: RawAws) -> AwsDefaults {
    AwsDefaults {
        profile: raw
            .profile
            .and_then(|p| v.check("aws.profile", profile(&p))),
        region: raw.region.and_then(|r| v.check("aws.region", region(&r))),
    }
}

/// `exec.document`: a session document name as SSM spells them.
fn exec_document(name: String) -> Result<String, String> {
    crate::exec::document::check_name(&name).map(|()| name)
}

/// Every name declared in a mapping, valid or not: a reference to one with problems of its own
/// is not reported again as unknown.
fn names<V>(map: &RawMap<V>) -> BTreeSet<String> {
    map.0.iter().map(|(name, _)| name.clone()).collect()
}

fn listeners(v: &mut Issues, list: Vec<RawListener>, home: Option<&Path>) -> Vec<Listener> {
    if list.is_empty() {
        v.push(
            "listeners",
            "empty list; remove the key for the default 127.0.0.1:1080, or add - socks5: 127.0.0.1:1080",
        );
    }
    let mut out: Vec<Listener> = Vec::new();
    for (i, l) in list.into_iter().enumerate() {
        let p = format!("listeners[{i}]");
        let limits = listener_limits(v, &p, &l);
        let users = users(v, &p, l.users);
        let listener = match (l.socks5, l.socks5_unix, l.http) {
            (None, None, Some(addr)) => {
                let fix = "set allow_remote: true if you really mean it";
                no_colon_in_usernames(v, &p, &users);
                v.check(
                    format!("{p}.http"),
                    tcp_addr(&addr, l.allow_remote.unwrap_or(false), fix),
                )
                .map(|addr| Listener::Http {
                    addr,
                    users,
                    limits,
                })
            }
            (Some(addr), None, None) => {
                let fix = "set allow_remote: true if you really mean it";
                v.check(
                    format!("{p}.socks5"),
                    tcp_addr(&addr, l.allow_remote.unwrap_or(false), fix),
                )
                .map(|addr| Listener::Tcp {
                    addr,
                    users,
                    limits,
                })
            }
            (None, Some(path), None) => {
                if l.allow_remote.is_some() {
                    v.push(
                        format!("{p}.allow_remote"),
                        "applies only to socks5 and http (TCP) listeners; remove it",
                    );
                }
                v.check(format!("{p}.socks5_unix"), socket_path(&path, home))
                    .map(|path| Listener::Unix {
                        path,
                        users,
                        limits,
                    })
            }
            (None, None, None) => {
                v.push(
                    &p,
                    "needs socks5: <ip:port>, socks5_unix: <path> or http: <ip:port>",
                );
                None
            }
            _ => {
                v.push(
                    &p,
                    "has more than one of socks5, socks5_unix and http; use one per list entry",
                );
                None
            }
        };
        let Some(listener) = listener else { continue };
        if let Some(j) = out.iter().position(|o| same_endpoint(o, &listener)) {
            v.push(&p, format!("same address as listeners[{j}]; remove one"));
        }
        out.push(listener);
    }
    out
}

/// HTTP Basic joins username and password with `:`, so a username holding one could never
/// be sent.
fn no_colon_in_usernames(v: &mut Issues, p: &str, users: &[User]) {
    for (j, u) in users.iter().enumerate() {
        if u.username.contains(':') {
            v.push(
                format!("{p}.users[{j}].username"),
                "contains ':', which HTTP Basic cannot carry in a username; pick another",
            );
        }
    }
}

fn listener_limits(v: &mut Issues, p: &str, l: &RawListener) -> Limits {
    let d = Limits::default();
    Limits {
        max_connections: l
            .max_connections
            .and_then(|n| v.check(format!("{p}.max_connections"), max_connections(n)))
            .unwrap_or(d.max_connections),
        idle_timeout: l
            .idle_timeout_secs
            .and_then(|s| v.check(format!("{p}.idle_timeout_secs"), idle_timeout(s)))
            .unwrap_or(d.idle_timeout),
    }
}

fn same_endpoint(a: &Listener, b: &Listener) -> bool {
    clashes(&socket_of(a), &socket_of(b))
}

fn users(v: &mut Issues, p: &str, raw: Option<Vec<RawUser>>) -> Vec<User> {
    let Some(raw) = raw else { return Vec::new() };
    if raw.is_empty() {
        v.push(
            format!("{p}.users"),
            "empty list; remove the key for no authentication, or add - username: … password: …",
        );
    }
    let mut out: Vec<User> = Vec::new();
    for (j, u) in raw.into_iter().enumerate() {
        let up = format!("{p}.users[{j}]");
        // RFC 1929 carries each as a length byte plus 1..=255 bytes.
        if u.username.is_empty() || u.username.len() > 255 {
            v.push(
                format!("{up}.username"),
                "must be 1 to 255 bytes (RFC 1929)",
            );
        } else if out.iter().any(|o| o.username == u.username) {
            v.push(
                format!("{up}.username"),
                format!("{:?} is listed twice; remove one", u.username),
            );
        }
        let len = u.password.expose().len();
        if len == 0 || len > 255 {
            v.push(
                format!("{up}.password"),
                "must be 1 to 255 bytes (RFC 1929)",
            );
        }
        out.push(User {
            username: u.username,
            password: u.password,
        });
    }
    out
}

fn routes(v: &mut Issues, raw: Vec<super::raw::RawRoute>, declared: &BTreeSet<String>) -> Router {
    let mut rules: Vec<Rule> = Vec::new();
    let mut seen: Vec<(usize, Matcher)> = Vec::new();
    let before = v.count();
    for (i, r) in raw.into_iter().enumerate() {
        let matcher = v.check(
            format!("routes[{i}].match"),
            Matcher::parse(&r.matches).map_err(|e| e.to_string()),
        );
        let action = v.check(format!("routes[{i}].via"), action(&r.via, declared));
        let (Some(matcher), Some(action)) = (matcher, action) else {
            continue;
        };
        let key = match &matcher {
            Matcher::DomainGlob(g) => Matcher::DomainGlob(g.to_ascii_lowercase()),
            cidr => cidr.clone(),
        };
        if let Some((j, _)) = seen.iter().find(|(_, k)| *k == key) {
            v.push(
                format!("routes[{i}].match"),
                format!("{matcher} duplicates routes[{j}], so this rule never applies; remove one"),
            );
        }
        seen.push((i, key));
        let resolve = r.resolve.unwrap_or_default();
        if resolve == Resolve::Local && matches!(matcher, Matcher::Cidr(_)) {
            v.push(
                format!("routes[{i}].resolve"),
                "resolve: local applies to name rules only (a CIDR already is an address); remove it"
                    .to_owned(),
            );
        }
        rules.push(Rule {
            matcher,
            action,
            resolve,
        });
    }
    if v.count() != before {
        return Router::default();
    }
    v.check("routes", Router::new(rules).map_err(|e| e.to_string()))
        .unwrap_or_default()
}

fn host(
    v: &mut Issues,
    alias: String,
    raw: RawHost,
    aws: &AwsDefaults,
) -> Option<(String, HostAlias)> {
    let p = format!("hosts.{alias}");
    let before = v.count();
    v.check(&p, alias_name(&alias));
    let target = v.check(format!("{p}.target"), target(&raw.target));
    let profile = match raw.profile {
        Some(prof) => v.check(format!("{p}.profile"), profile(&prof)),
        None => aws.profile.clone(),
    };
    let region = match raw.region {
        Some(r) => v.check(format!("{p}.region"), region(&r)),
        None => aws.region.clone(),
    };
    let port = raw.port.and_then(|n| v.check(format!("{p}.port"), port(n)));
    if v.count() != before {
        return None;
    }
    Some((
        alias,
        HostAlias {
            target: target?,
            profile,
            region,
            port,
        },
    ))
}

pub(super) fn warnings(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for (i, l) in cfg.listeners.iter().enumerate() {
        if let Listener::Tcp { addr, users, .. } | Listener::Http { addr, users, .. } = l {
            if !addr.ip().is_loopback() && users.is_empty() {
                out.push(format!(
                    "listeners[{i}]: {addr} accepts proxy clients from other hosts without a password; add users:"
                ));
            }
        }
    }
    for u in &cfg.upstreams {
        let used = cfg.default.upstream() == Some(&u.name)
            || cfg
                .routes
                .rules()
                .iter()
                .any(|r| r.action.upstream() == Some(&u.name))
            || cfg
                .forwards
                .iter()
                .any(|f| matches!(&f.via, super::Via::Upstream(n) if *n == u.name));
        if !used {
            out.push(format!(
                "upstreams.{}: no route, forward or default, so no traffic goes through it",
                u.name
            ));
        }
        if u.ssh().map(|s| s.host_key_policy) == Some(HostKeyPolicy::Off) {
            out.push(format!(
                "upstreams.{}.host_key_policy: off disables SSH host key checks; use accept-new or strict",
                u.name
            ));
        }
    }
    out
}
