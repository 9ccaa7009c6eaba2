//! The pieces validation is made of: [`Issues`], which collects key-path-tagged problems, and
//! single-value checks that return `Ok(value)` or `Err("what is wrong; how to fix it")`. The
//! callers (`validate.rs` for the file, `overrides.rs` for flags) attach the key path or flag
//! name, so one check serves both spellings.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    Destination, Host, Issue, Limits, ListenOn, Listener, Target, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_POOL_SIZE, DEFAULT_PORT_IDLE_TIMEOUT_SECS, MAX_DRAIN_TIMEOUT_SECS,
    MAX_IDLE_TIMEOUT_SECS, MAX_KEEPALIVE_SECS, MAX_MAX_CONNECTIONS, MAX_POOL_SIZE,
    MAX_PORT_IDLE_TIMEOUT_SECS, MAX_SESSIONS,
};
use crate::route::Action;
use crate::route::{parse_destination, HostRef, RouteError};

/// Longest Unix socket path accepted (`sun_path` minus the NUL; macOS/BSD have 104 bytes).
const MAX_SOCKET_PATH: usize = if cfg!(target_os = "linux") { 107 } else { 103 };

#[derive(Default)]
pub(super) struct Issues(Vec<Issue>);

impl Issues {
    pub(super) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }

    pub(super) fn check<T>(
        &mut self,
        path: impl Into<String>,
        result: Result<T, String>,
    ) -> Option<T> {
        result.map_err(|message| self.push(path, message)).ok()
    }

    pub(super) fn count(&self) -> usize {
        self.0.len()
    }

    pub(super) fn into_issues(self) -> Vec<Issue> {
        self.0
    }

    pub(super) fn finish<T>(self, value: T) -> Result<T, Vec<Issue>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }
}

fn name_chars(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

pub(super) fn upstream_name(name: &str) -> Result<(), String> {
    if name == "direct" || name == "reject" {
        return Err(format!(
            "{name:?} is reserved for routes; rename the upstream"
        ));
    }
    if !name_chars(name) {
        return Err(
            "upstream names are 1 to 64 letters, digits, '-', '_' or '.'; rename it".to_owned(),
        );
    }
    Ok(())
}

pub(super) fn alias_name(alias: &str) -> Result<(), String> {
    if !name_chars(alias) {
        return Err("aliases are 1 to 64 letters, digits, '-', '_' or '.'; rename it".to_owned());
    }
    match alias.parse::<Target>() {
        Ok(Target::Name(_)) => Ok(()),
        _ => Err("an alias cannot look like an instance id; rename it".to_owned()),
    }
}

pub(super) fn target(s: &str) -> Result<Target, String> {
    s.parse::<Target>().map_err(|e| e.to_string())
}

pub(super) fn profile(s: &str) -> Result<String, String> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{s:?} is not a profile name; use a [profile …] name from ~/.aws/config"
        ));
    }
    Ok(s.to_owned())
}

pub(super) fn region(s: &str) -> Result<String, String> {
    let ok = s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(format!("{s:?} is not an AWS region; write e.g. eu-west-1"));
    }
    Ok(s.to_owned())
}

pub(super) fn user_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 255 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{s:?} is not a login name; write e.g. ec2-user"));
    }
    Ok(s.to_owned())
}

pub(super) fn port(n: u16) -> Result<u16, String> {
    if n == 0 {
        return Err("0 is not a port; use 1 to 65535 (default 22)".to_owned());
    }
    Ok(n)
}

pub(super) fn pool_size(n: u64) -> Result<NonZeroUsize, String> {
    usize::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_POOL_SIZE)
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| {
            format!("{n} is out of range; use 1 to {MAX_POOL_SIZE} (default {DEFAULT_POOL_SIZE})")
        })
}

pub(super) fn keepalive(secs: u64) -> Result<Option<Duration>, String> {
    match secs {
        0 => Ok(None),
        s if s <= MAX_KEEPALIVE_SECS => Ok(Some(Duration::from_secs(s))),
        s => Err(format!(
            "{s} is too large; use 1 to {MAX_KEEPALIVE_SECS}, or 0 to turn keepalives off"
        )),
    }
}

pub(super) fn drain_timeout(secs: u64) -> Result<Duration, String> {
    if secs <= MAX_DRAIN_TIMEOUT_SECS {
        Ok(Duration::from_secs(secs))
    } else {
        Err(format!(
            "{secs} is too large; use 0 (close streams at once) to {MAX_DRAIN_TIMEOUT_SECS}"
        ))
    }
}

pub(super) fn max_connections(n: u64) -> Result<NonZeroUsize, String> {
    usize::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_MAX_CONNECTIONS)
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| {
            format!("{n} is out of range; use 1 to {MAX_MAX_CONNECTIONS} (default {DEFAULT_MAX_CONNECTIONS})")
        })
}

pub(super) fn idle_timeout(secs: u64) -> Result<Option<Duration>, String> {
    match secs {
        0 => Ok(None),
        s if s <= MAX_IDLE_TIMEOUT_SECS => Ok(Some(Duration::from_secs(s))),
        s => Err(format!(
            "{s} is too large; use 1 to {MAX_IDLE_TIMEOUT_SECS}, or 0 (the default) to keep idle tunnels open"
        )),
    }
}

pub(super) fn log_level(s: &str) -> Result<String, String> {
    if s.is_empty() || s.chars().any(char::is_whitespace) {
        return Err(format!(
            "{s:?} is not a log filter; write e.g. info or session_proxy=debug"
        ));
    }
    Ok(s.to_owned())
}

pub(super) fn action(via: &str, declared: &BTreeSet<String>) -> Result<Action, String> {
    match Action::from_via(via) {
        Action::Upstream(name) if name.is_empty() => {
            Err("empty; use an upstream name, direct or reject".to_owned())
        }
        Action::Upstream(name) if !declared.contains(&name) => Err(format!(
            "unknown upstream {name:?}; define it under upstreams or use direct/reject"
        )),
        a => Ok(a),
    }
}

pub(super) fn tcp_addr(s: &str, allow_remote: bool, fix: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s.parse().map_err(|_| {
        format!("{s:?} is not an IP:port address (names are not resolved); write e.g. 127.0.0.1:1080 or [::1]:1080")
    })?;
    if !allow_remote && addr.ip().is_unspecified() {
        return Err(format!("{addr} listens on all interfaces; {fix}"));
    }
    if !allow_remote && !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address, so other hosts could connect; {fix}"
        ));
    }
    Ok(addr)
}

pub(super) fn listen_spec(
    s: &str,
    allow_remote: bool,
    home: Option<&Path>,
) -> Result<Listener, String> {
    let fix = "pass --allow-remote if you really mean it";
    let (users, limits) = (Vec::new(), Limits::default());
    Ok(match listen_on(s, allow_remote, fix, home)? {
        ListenOn::Unix(path) => Listener::Unix {
            path,
            users,
            limits,
        },
        ListenOn::Tcp(addr) => Listener::Tcp {
            addr,
            users,
            limits,
        },
    })
}

/// `IP:port`, or a Unix socket path (`unix:…`, anything containing `/`, or starting with `~`).
/// `fix` says how to allow a non-loopback address in the caller's spelling.
pub(super) fn listen_on(
    s: &str,
    allow_remote: bool,
    fix: &str,
    home: Option<&Path>,
) -> Result<ListenOn, String> {
    let unix = s
        .strip_prefix("unix:")
        .or_else(|| (s.contains('/') || s.starts_with('~')).then_some(s));
    match unix {
        Some(path) => socket_path(path, home).map(ListenOn::Unix),
        None => tcp_addr(s, allow_remote, fix).map(ListenOn::Tcp),
    }
}

/// `HOST:PORT` as the instance sees it: a name, an IP address in any spelling (kept as the
/// address it stands for, as routing does) or `[IPv6]`, and a port from 1.
pub(super) fn destination(s: &str) -> Result<Destination, String> {
    let example = "write HOST:PORT, e.g. db.internal:5432 or [fd00::5]:5432";
    let (host, port) = parse_destination(s).map_err(|e| match e {
        RouteError::InvalidDestination { reason, .. } => {
            format!("{s:?} is not a destination: {reason}; {example}")
        }
        other => other.to_string(),
    })?;
    if let (HostRef::Ip(IpAddr::V6(_)), None) = (host, port) {
        return Err(format!(
            "{s:?} has no port (an IPv6 address with a port is written [addr]:port); {example}"
        ));
    }
    let host = match host {
        HostRef::Ip(ip) => Host::Ip(ip),
        HostRef::Domain(name) => Host::Domain(name.to_owned()),
        HostRef::Malformed { reason, .. } => return Err(format!("{s:?}: {reason}; {example}")),
    };
    match port {
        None => Err(format!("{s:?} has no port; {example}")),
        Some(0) => Err(format!("{s:?}: 0 is not a port; use 1 to 65535")),
        Some(port) => Ok(Destination { host, port }),
    }
}

/// `idle_timeout_secs:` of an `ssm-port` upstream.
pub(super) fn port_idle_timeout(secs: u64) -> Result<Duration, String> {
    if (1..=MAX_PORT_IDLE_TIMEOUT_SECS).contains(&secs) {
        Ok(Duration::from_secs(secs))
    } else {
        Err(format!(
            "{secs} is out of range; use 1 to {MAX_PORT_IDLE_TIMEOUT_SECS} (default {DEFAULT_PORT_IDLE_TIMEOUT_SECS})"
        ))
    }
}

/// A count of SSM sessions (`sessions:`, `sessions_per_destination:`).
pub(super) fn sessions(n: u64, default: usize) -> Result<NonZeroUsize, String> {
    usize::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_SESSIONS)
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| format!("{n} is out of range; use 1 to {MAX_SESSIONS} (default {default})"))
}

/// Expands `~` and `~/…` against `home` and requires the result to be absolute.
pub(super) fn abs_path(s: &str, home: Option<&Path>) -> Result<PathBuf, String> {
    let no_home = || {
        "cannot expand ~ because the home directory is unknown; write an absolute path".to_owned()
    };
    let path = if s == "~" {
        home.ok_or_else(no_home)?.to_path_buf()
    } else if let Some(rest) = s.strip_prefix("~/") {
        home.ok_or_else(no_home)?.join(rest)
    } else if s.starts_with('~') {
        return Err(format!(
            "{s:?}: only ~/ is expanded, not ~user; write the full path"
        ));
    } else {
        PathBuf::from(s)
    };
    if !path.is_absolute() {
        return Err(format!(
            "{s:?} is a relative path; write an absolute path or start it with ~/"
        ));
    }
    Ok(path)
}

pub(super) fn socket_path(s: &str, home: Option<&Path>) -> Result<PathBuf, String> {
    let path = abs_path(s, home)?;
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(format!(
            "{} is {len} bytes but Unix socket paths are limited to {MAX_SOCKET_PATH}; use a shorter path",
            path.display()
        ));
    }
    Ok(path)
}
