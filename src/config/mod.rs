//! The typed configuration: what `serve`, `stdio` and `route` run from.
//!
//! \[pure\] apart from [`load`] reading one file. Two stages, as in ripgrep's low/high args:
//! `raw.rs` mirrors the YAML with serde (`deny_unknown_fields`), then `validate.rs` turns it into a
//! [`Config`] whose fields are already typed (`SocketAddr`, [`Target`], [`Router`],
//! `NonZeroUsize`, `Duration`) and cross-checked (every `via:` names a defined upstream, no
//! duplicate listeners, ...). Validation collects every problem rather than stopping at the first,
//! and each names the key path and the fix:
//! `upstreams.bastion-prod.region: required when inline credentials are given; add region: <aws-region>`.
//! Syntax and type errors from serde carry the file name, line and column.
//!
//! Command-line flags layer on top through [`Overrides`] / [`Config::apply`], and
//! `serve --target …` without a file builds a one-upstream config with [`Config::ad_hoc`].
//! Finding the file is `discover.rs`; comparing two configs for `reload` is `diff.rs`. The
//! `upstreams:` section (its two kinds, `ssh` and `ssm-port`) is typed and checked in
//! `upstream.rs`, the `forwards:` section in `forward.rs`.
//! `config.example.yaml` at the crate root documents every key and is parsed by a test.

mod check;
mod diff;
mod discover;
mod forward;
mod overrides;
mod raw;
mod syntax;
mod upstream;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use self::diff::{diff, match_forwards, match_listeners, Change};
pub use self::discover::{discover, search_paths};
pub use self::forward::{Forward, Via};
pub use self::upstream::{SshUpstream, SsmPortUpstream, Upstream, UpstreamKind, UpstreamProtocol};
pub use crate::forward::spec::ListenOn;
pub use crate::proxy::ProxySetting;
use crate::redact::Redacted;
pub use crate::route::{Action, Router};
pub use crate::socks::proto::{Destination, Host};
pub use crate::socks::server::{Limits, DEFAULT_MAX_CONNECTIONS};
pub use crate::ssh::HostKeyPolicy;
pub use crate::ssm::api::InlineCredentials;
pub use crate::ssm::target::{ParseTargetError, Target};

/// Listener used when the file has no `listeners:` key.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 1080);
/// `port:` when not given (sshd on the bastion).
pub const DEFAULT_SSH_PORT: u16 = 22;
/// `pool_size:` when not given.
pub const DEFAULT_POOL_SIZE: usize = 2;
/// Largest `pool_size:` accepted (each connection is an SSM session).
pub const MAX_POOL_SIZE: usize = 64;
/// `keepalive_secs:` when not given.
pub const DEFAULT_KEEPALIVE_SECS: u64 = 15;
/// Largest `keepalive_secs:` accepted.
pub const MAX_KEEPALIVE_SECS: u64 = 3600;
/// `drain_timeout_secs:` when not given: how long `stop` lets streams in flight finish.
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 10;
/// Largest `drain_timeout_secs:` accepted.
pub const MAX_DRAIN_TIMEOUT_SECS: u64 = 300;
/// Largest `max_connections:` accepted (each connection holds one or two descriptors).
pub const MAX_MAX_CONNECTIONS: usize = 65536;
/// Largest `idle_timeout_secs:` accepted (a week).
pub const MAX_IDLE_TIMEOUT_SECS: u64 = 7 * 24 * 3600;
/// `idle_timeout_secs:` of an `ssm-port` upstream when not given.
pub const DEFAULT_PORT_IDLE_TIMEOUT_SECS: u64 = 300;
/// Largest `idle_timeout_secs:` of an `ssm-port` upstream (a day).
pub const MAX_PORT_IDLE_TIMEOUT_SECS: u64 = 24 * 3600;
/// `sessions_per_destination:` of an `ssm-port` upstream when not given.
pub const DEFAULT_SESSIONS_PER_DESTINATION: usize = 1;
/// `sessions:` of a forward via an instance when not given.
pub const DEFAULT_FORWARD_SESSIONS: usize = 1;
/// Largest `sessions:` and `sessions_per_destination:` accepted (each is an SSM session, and
/// accounts have a limit on concurrent sessions).
pub const MAX_SESSIONS: usize = 16;
/// Config files larger than this are refused before parsing.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Name of the single upstream built by [`Config::ad_hoc`].
pub const AD_HOC_UPSTREAM: &str = "ad-hoc";

/// Everything that can go wrong finding, reading, parsing or validating a config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {} is larger than {MAX_CONFIG_BYTES} bytes; is it the right file?", path.display())]
    TooLarge { path: PathBuf },
    #[error(
        "config file {} (given with --config) does not exist; check the path, or drop --config to use {}",
        path.display(),
        discover::describe_search()
    )]
    NotFound { path: PathBuf },
    #[error("config file {} (given with --config) is not a regular file", path.display())]
    NotAFile { path: PathBuf },
    /// YAML syntax, unknown keys, wrong types (from serde), with the file and position.
    #[error("{}", fmt_syntax(origin, *line, *column, message))]
    Syntax {
        origin: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    /// Values that parsed but do not make sense; every problem found, each with its key path.
    #[error("{}", fmt_issues(origin, issues))]
    Invalid { origin: String, issues: Vec<Issue> },
}

/// One validation problem: the key path (`routes[2].via`, or a flag such as `--listen`) and a
/// message that says what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

fn fmt_syntax(origin: &str, line: Option<usize>, column: Option<usize>, message: &str) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{origin}:{l}:{c}: {message}"),
        _ => format!("{origin}: {message}"),
    }
}

fn fmt_issues(origin: &str, issues: &[Issue]) -> String {
    match issues {
        [one] => format!("{origin}: {one}"),
        many => {
            let mut s = format!("{origin}: {} problems:", many.len());
            for issue in many {
                s.push_str("\n  ");
                s.push_str(&issue.to_string());
            }
            s
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The `aws:` defaults (already folded into each upstream and host alias; kept for
    /// `stdio <instance>` with no alias).
    pub aws: AwsDefaults,
    /// At least one.
    pub listeners: Vec<Listener>,
    /// In file order; names are unique (see [`Config::upstream`]).
    pub upstreams: Vec<Upstream>,
    pub routes: Router,
    /// Action when no route matches (`reject` unless configured).
    pub default: Action,
    /// Aliases for `session-proxy stdio <alias>`.
    pub hosts: BTreeMap<String, HostAlias>,
    pub control_socket: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// A tracing `EnvFilter` directive such as `info` or `session_proxy=debug`.
    pub log_level: Option<String>,
    /// Grace period for streams in flight when the master stops (`drain_timeout_secs:`).
    pub drain_timeout: Duration,
    /// Port forwards the master runs; listen sockets are unique, also against `listeners`.
    pub forwards: Vec<Forward>,
    /// `exec.document`: the separate-output session document `exec` uses by default.
    pub exec_document: Option<String>,
    /// `proxy:`: the HTTP proxy for AWS API calls and data channels (the environment's when
    /// not given).
    pub proxy: ProxySetting,
}

impl Default for Config {
    /// What an empty file means: one unauthenticated SOCKS5 listener on 127.0.0.1:1080, no
    /// upstreams, everything rejected.
    fn default() -> Self {
        Self {
            aws: AwsDefaults::default(),
            listeners: vec![Listener::Tcp {
                addr: DEFAULT_LISTEN,
                users: Vec::new(),
                limits: Limits::default(),
            }],
            upstreams: Vec::new(),
            routes: Router::default(),
            default: Action::Reject,
            hosts: BTreeMap::new(),
            control_socket: None,
            state_dir: None,
            log_level: None,
            drain_timeout: Duration::from_secs(DEFAULT_DRAIN_TIMEOUT_SECS),
            forwards: Vec::new(),
            exec_document: None,
            proxy: ProxySetting::Environment,
        }
    }
}

/// The `aws:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsDefaults {
    pub profile: Option<String>,
    pub region: Option<String>,
}

/// A SOCKS5 or HTTP CONNECT listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listener {
    /// A TCP address; non-loopback addresses passed validation only with `allow_remote: true`.
    Tcp {
        addr: SocketAddr,
        users: Vec<User>,
        limits: Limits,
    },
    /// A Unix socket path (the server creates it with mode 0600).
    Unix {
        path: PathBuf,
        users: Vec<User>,
        limits: Limits,
    },
    /// An HTTP CONNECT listener on a TCP address (`http:`), for tools that only honour
    /// `https_proxy`; the same routing, users (Basic) and limits as a SOCKS5 one.
    Http {
        addr: SocketAddr,
        users: Vec<User>,
        limits: Limits,
    },
}

impl Listener {
    /// RFC 1929 users; empty means no authentication. When non-empty, no-auth is refused.
    pub fn users(&self) -> &[User] {
        match self {
            Self::Tcp { users, .. } | Self::Unix { users, .. } | Self::Http { users, .. } => users,
        }
    }

    /// `max_connections:` and `idle_timeout_secs:`; `reload` can change them in place.
    pub fn limits(&self) -> Limits {
        match self {
            Self::Tcp { limits, .. } | Self::Unix { limits, .. } | Self::Http { limits, .. } => {
                *limits
            }
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { addr, .. } => write!(f, "socks5 {addr}"),
            Self::Unix { path, .. } => write!(f, "socks5 unix:{}", path.display()),
            Self::Http { addr, .. } => write!(f, "http {addr}"),
        }
    }
}

/// An RFC 1929 username/password pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    pub password: Redacted<String>,
}

/// A `hosts:` entry: `session-proxy stdio <alias>` connects to `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAlias {
    pub target: Target,
    /// Effective (the `aws:` default applied).
    pub profile: Option<String>,
    /// Effective (the `aws:` default applied).
    pub region: Option<String>,
    /// `None`: the `stdio -p` flag or 22 applies.
    pub port: Option<u16>,
}

/// Command-line values that override the file (each `None`/empty leaves the file's value).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replaces `aws.profile` and every upstream's and host alias's profile (upstreams with
    /// inline credentials keep their credentials and ignore it).
    pub profile: Option<String>,
    /// Replaces `aws.region` and every upstream's and host alias's region.
    pub region: Option<String>,
    /// Replaces all listeners when non-empty: `ADDR:PORT`, or a Unix socket path (anything
    /// containing `/`, or starting with `~`). These listeners have no users.
    pub listen: Vec<String>,
    /// Allows non-loopback `listen` addresses.
    pub allow_remote: bool,
    /// `direct`, `reject` or an upstream name.
    pub default: Option<String>,
    pub control_socket: Option<String>,
    pub state_dir: Option<String>,
    pub log_level: Option<String>,
}

/// Flags of `session-proxy serve --target …` (no config file): one upstream named
/// [`AD_HOC_UPSTREAM`] that every destination goes through.
#[derive(Debug, Clone, Default)]
pub struct AdHoc {
    pub targets: Vec<String>,
    pub user: String,
    pub identity_files: Vec<String>,
    pub ssh_agent: bool,
    pub port: Option<u16>,
    pub pool_size: Option<u64>,
    pub host_key_policy: Option<HostKeyPolicy>,
    pub profile: Option<String>,
    pub region: Option<String>,
}

impl Config {
    /// The upstream called `name`.
    pub fn upstream(&self, name: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.name == name)
    }

    /// Layers command-line flags over the file. On error nothing is changed; issue paths are
    /// flag names (`--listen`, `--default`, ...).
    pub fn apply(&mut self, o: &Overrides) -> Result<(), ConfigError> {
        overrides::apply(self, o, home_dir().as_deref()).map_err(|issues| ConfigError::Invalid {
            origin: "command line".to_owned(),
            issues,
        })
    }

    /// Builds the config of `serve --target … --user …`: [`Config::default`] plus one upstream
    /// [`AD_HOC_UPSTREAM`] that is also the default route. Issue paths are flag names.
    pub fn ad_hoc(spec: &AdHoc) -> Result<Self, ConfigError> {
        overrides::ad_hoc(spec, home_dir().as_deref()).map_err(|issues| ConfigError::Invalid {
            origin: "command line".to_owned(),
            issues,
        })
    }

    /// Things that are allowed but probably unintended (e.g. a remote listener without users,
    /// an upstream nothing routes to). The caller logs them at warn level.
    pub fn warnings(&self) -> Vec<String> {
        validate::warnings(self)
    }
}

/// Parses and validates YAML text. `origin` names the source in messages (usually the path).
pub fn from_yaml_str(s: &str, origin: &str) -> Result<Config, ConfigError> {
    parse(s, origin, home_dir().as_deref())
}

/// Reads, parses and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
        });
    }
    let config = from_yaml_str(&text, &path.display().to_string())?;
    tracing::debug!(path = %path.display(), "loaded config");
    Ok(config)
}

fn parse(s: &str, origin: &str, home: Option<&Path>) -> Result<Config, ConfigError> {
    let raw: Option<raw::RawConfig> =
        serde_yaml_ng::from_str(s).map_err(|e| syntax::error(&e, origin))?;
    validate::validate(raw.unwrap_or_default(), home).map_err(|issues| ConfigError::Invalid {
        origin: origin.to_owned(),
        issues,
    })
}

fn home_dir() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf())
}
