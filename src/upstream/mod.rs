//! Upstreams: named pools of SSH-over-SSM connections to bastions, and the registry that finds
//! a pool by name and opens `direct-tcpip` streams through it.
//!
//! [`UpstreamConfig`] is the typed form of one `upstreams:` entry (the config module converts
//! into it). [`pool`] owns the connections; [`state`] is the pure lifecycle/backoff/placement
//! logic it uses. Routing (which upstream a destination goes to) belongs to `route`.

pub mod pool;
pub mod state;
pub mod status;
mod stream;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::ssh::{HostKeyPolicy, RejectKind};
use crate::ssm::api::AwsSettings;
pub use pool::{ConnStatus, Pool, PoolOptions, PoolStatus};
pub use state::PoolState;
pub use stream::UpstreamStream;

/// One upstream: where its bastions are and how to log in to them.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub name: String,
    /// Instance ids or names (resolved with `ssm::target::resolve` at each connect, so a
    /// replaced instance behind a Name tag is picked up).
    pub targets: Vec<String>,
    pub aws: AwsSettings,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    pub ssh_agent: bool,
    /// sshd port on the bastion (AWS-StartSSHSession `portNumber`).
    pub port: u16,
    /// Number of SSH connections kept open, spread over `targets`.
    pub pool_size: usize,
    pub host_key_policy: HostKeyPolicy,
    /// SSH keepalive interval; zero turns keepalives off (`keepalive_secs: 0`).
    pub keepalive: Duration,
    /// Connect on first use instead of at start.
    pub lazy: bool,
    pub known_hosts: PathBuf,
}

/// Why a stream could not be opened through an upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("unknown upstream \"{0}\"")]
    Unknown(String),
    #[error("upstream {upstream}: {message}")]
    Config { upstream: String, message: String },
    #[error("upstream {upstream}: bastion {instance} could not connect to {host}:{port}: {} ({description})", .kind.describe())]
    Rejected {
        upstream: String,
        instance: String,
        host: String,
        port: u16,
        kind: RejectKind,
        description: String,
    },
    #[error("upstream {upstream}: no connection to a bastion is ready (waited {waited:?}); last error: {last_error}")]
    NotReady {
        upstream: String,
        waited: Duration,
        last_error: String,
    },
    #[error("upstream {upstream}: connections failed while opening a stream to {host}:{port}: {last_error}")]
    ConnectionsLost {
        upstream: String,
        host: String,
        port: u16,
        last_error: String,
    },
    #[error("upstream {upstream} is shutting down")]
    ShutDown { upstream: String },
}

impl UpstreamError {
    /// The RFC 1928 reply code the SOCKS server should send for this error: the bastion's own
    /// verdict when it gave one, otherwise "general failure" (1).
    pub fn socks_reply(&self) -> u8 {
        match self {
            Self::Rejected { kind, .. } => kind.socks_reply(),
            // No usable bastion connection: the destination is unreachable from here.
            Self::NotReady { .. } | Self::ConnectionsLost { .. } | Self::ShutDown { .. } => 4,
            _ => 1,
        }
    }
}

/// Checks what a pool needs before it can start.
pub fn validate(cfg: &UpstreamConfig) -> Result<(), UpstreamError> {
    let err = |message: &str| {
        Err(UpstreamError::Config {
            upstream: cfg.name.clone(),
            message: message.to_owned(),
        })
    };
    if cfg.targets.is_empty() || cfg.targets.iter().any(|t| t.trim().is_empty()) {
        return err("targets must list at least one instance id or name, none empty");
    }
    if cfg.pool_size == 0 {
        return err("pool_size must be at least 1");
    }
    if cfg.user.is_empty() {
        return err("user must be set (the SSH login on the bastion)");
    }
    if cfg.identity_files.is_empty() && !cfg.ssh_agent {
        return err("set identity_files or enable ssh_agent: there is no key to log in with");
    }
    Ok(())
}

impl UpstreamConfig {
    /// The pool's view of a validated `upstreams:` entry; host keys live in
    /// `<state_dir>/known_hosts`.
    pub fn from_config(up: &crate::config::Upstream, state_dir: &std::path::Path) -> Self {
        use crate::config::HostKeyPolicy as Configured;
        Self {
            name: up.name.clone(),
            targets: up.targets.iter().map(|t| t.as_str().to_owned()).collect(),
            aws: AwsSettings {
                profile: up.profile.clone(),
                region: up.region.clone(),
                credentials: up
                    .credentials
                    .as_ref()
                    .map(|c| crate::ssm::api::InlineCredentials {
                        access_key_id: c.access_key_id.clone(),
                        secret_access_key: c.secret_access_key.clone(),
                        session_token: c.session_token.clone(),
                    }),
                endpoint_url: None,
            },
            user: up.user.clone(),
            identity_files: up.identity_files.clone(),
            ssh_agent: up.ssh_agent,
            port: up.port,
            pool_size: up.pool_size.get(),
            host_key_policy: match up.host_key_policy {
                Configured::AcceptNew => HostKeyPolicy::AcceptNew,
                Configured::Strict => HostKeyPolicy::Strict,
                Configured::Off => HostKeyPolicy::Off,
            },
            keepalive: up.keepalive.unwrap_or(Duration::ZERO),
            lazy: up.lazy,
            known_hosts: state_dir.join("known_hosts"),
        }
    }
}

/// All upstream pools, by name.
#[derive(Default)]
pub struct Upstreams {
    pools: BTreeMap<String, Arc<Pool>>,
}

impl Upstreams {
    /// Builds a pool per config (none started yet; see [`Upstreams::start`]).
    pub fn new(configs: Vec<UpstreamConfig>, opts: &PoolOptions) -> Result<Self, UpstreamError> {
        let mut pools = BTreeMap::new();
        for cfg in configs {
            let name = cfg.name.clone();
            if pools.contains_key(&name) {
                return Err(UpstreamError::Config {
                    upstream: name,
                    message: "defined twice; upstream names must be unique".into(),
                });
            }
            pools.insert(name, Arc::new(Pool::new(cfg, opts.clone())?));
        }
        Ok(Self { pools })
    }

    /// Starts connecting every pool that is not lazy. Must run inside a tokio runtime.
    pub fn start(&self) {
        for p in self.pools.values() {
            if !p.config().lazy {
                p.start();
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Pool>> {
        self.pools.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pools.keys().map(String::as_str)
    }

    /// Opens a stream to `host:port` through upstream `name`.
    pub async fn open(
        &self,
        name: &str,
        host: &str,
        port: u16,
    ) -> Result<UpstreamStream, UpstreamError> {
        let pool = self
            .pools
            .get(name)
            .ok_or_else(|| UpstreamError::Unknown(name.to_owned()))?;
        pool.open_stream(host, port).await
    }

    /// Adds (or replaces, shutting the old one down) a pool; for `reload`.
    pub async fn insert(
        &mut self,
        cfg: UpstreamConfig,
        opts: &PoolOptions,
    ) -> Result<(), UpstreamError> {
        let pool = Arc::new(Pool::new(cfg, opts.clone())?);
        if !pool.config().lazy {
            pool.start();
        }
        if let Some(old) = self.pools.insert(pool.config().name.clone(), pool) {
            old.shutdown().await;
        }
        Ok(())
    }

    /// Adds or replaces a pool and hands back the old one still running, so the caller can
    /// shut it down without holding the registry lock (new streams to other upstreams go on).
    pub fn replace(
        &mut self,
        cfg: UpstreamConfig,
        opts: &PoolOptions,
    ) -> Result<Option<Arc<Pool>>, UpstreamError> {
        let pool = Arc::new(Pool::new(cfg, opts.clone())?);
        if !pool.config().lazy {
            pool.start();
        }
        Ok(self.pools.insert(pool.config().name.clone(), pool))
    }

    /// Removes a pool without shutting it down (see [`Upstreams::replace`]).
    pub fn take(&mut self, name: &str) -> Option<Arc<Pool>> {
        self.pools.remove(name)
    }

    /// Removes a pool and shuts it down; for `reload`.
    pub async fn remove(&mut self, name: &str) -> bool {
        match self.pools.remove(name) {
            Some(p) => {
                p.shutdown().await;
                true
            }
            None => false,
        }
    }

    /// Status of every pool, in name order.
    pub fn snapshot(&self) -> Vec<PoolStatus> {
        self.pools.values().map(|p| p.snapshot()).collect()
    }

    /// Shuts every pool down (SSH disconnect and TerminateSession for each connection).
    pub async fn shutdown(&self) {
        let all = self.pools.values().map(|p| p.shutdown());
        futures_util::future::join_all(all).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn cfg(name: &str) -> UpstreamConfig {
        UpstreamConfig {
            name: name.into(),
            targets: vec!["i-0123456789abcdef0".into()],
            aws: AwsSettings::default(),
            user: "ec2-user".into(),
            identity_files: vec!["/nonexistent/id_ed25519".into()],
            ssh_agent: false,
            port: 22,
            pool_size: 2,
            host_key_policy: HostKeyPolicy::AcceptNew,
            keepalive: Duration::from_secs(15),
            lazy: true,
            known_hosts: "/nonexistent/known_hosts".into(),
        }
    }

    #[test]
    fn invalid_configs_are_refused_with_the_key_to_fix() {
        type Breaker = fn(&mut UpstreamConfig);
        let cases: [(Breaker, &str); 4] = [
            (|c| c.targets.clear(), "targets"),
            (|c| c.pool_size = 0, "pool_size"),
            (|c| c.user.clear(), "user"),
            (|c| c.identity_files.clear(), "identity_files"),
        ];
        for (break_it, key) in cases {
            let mut c = cfg("web");
            break_it(&mut c);
            let e = validate(&c).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("web"), "{e}");
        }
        assert!(validate(&cfg("web")).is_ok());
    }

    #[test]
    fn config_entries_convert_with_keepalive_off_as_zero_and_known_hosts_in_the_state_dir() {
        use crate::config::{HostKeyPolicy as P, Target, Upstream};
        let up = Upstream {
            name: "prod".into(),
            targets: vec![
                Target::InstanceId("i-0123456789abcdef0".into()),
                Target::Name("bastion".into()),
            ],
            profile: Some("prod".into()),
            region: Some("eu-west-1".into()),
            credentials: None,
            user: "ubuntu".into(),
            identity_files: vec!["/home/u/.ssh/id_ed25519".into()],
            ssh_agent: true,
            port: 2222,
            pool_size: std::num::NonZeroUsize::new(3).unwrap(),
            host_key_policy: P::Strict,
            lazy: true,
            keepalive: None,
        };
        let c = UpstreamConfig::from_config(&up, std::path::Path::new("/state"));
        assert_eq!(c.targets, ["i-0123456789abcdef0", "bastion"]);
        assert_eq!(c.aws.profile.as_deref(), Some("prod"));
        assert_eq!(
            (c.port, c.pool_size, c.lazy, c.ssh_agent),
            (2222, 3, true, true)
        );
        assert_eq!(c.host_key_policy, HostKeyPolicy::Strict);
        assert_eq!(c.keepalive, Duration::ZERO);
        assert_eq!(c.known_hosts, PathBuf::from("/state/known_hosts"));
        assert!(validate(&c).is_ok());
    }

    #[test]
    fn duplicate_upstream_names_are_refused() {
        let r = Upstreams::new(vec![cfg("a"), cfg("a")], &PoolOptions::default());
        assert!(matches!(r, Err(UpstreamError::Config { .. })));
    }

    #[tokio::test]
    async fn unknown_upstream_is_an_error_naming_it() {
        let u = Upstreams::new(vec![cfg("a")], &PoolOptions::default()).unwrap();
        let e = u.open("b", "127.0.0.1", 80).await.unwrap_err();
        assert!(e.to_string().contains("\"b\""), "{e}");
        assert_eq!(u.snapshot().len(), 1);
        assert_eq!(u.snapshot()[0].state, PoolState::Idle);
    }

    #[test]
    fn socks_replies_follow_the_bastion_verdict() {
        let rejected = |kind| UpstreamError::Rejected {
            upstream: "u".into(),
            instance: "i".into(),
            host: "h".into(),
            port: 1,
            kind,
            description: String::new(),
        };
        assert_eq!(rejected(RejectKind::Refused).socks_reply(), 5);
        assert_eq!(rejected(RejectKind::HostUnreachable).socks_reply(), 4);
        assert_eq!(rejected(RejectKind::NetworkUnreachable).socks_reply(), 3);
        assert_eq!(UpstreamError::Unknown("x".into()).socks_reply(), 1);
    }
}
