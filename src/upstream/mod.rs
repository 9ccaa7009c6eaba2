//! Upstreams: named pools of SSH-over-SSM connections to bastions (`kind: ssh`) or of SSM port
//! sessions per destination (`kind: ssm-port`, [`port_pool`]), and the registry that finds one
//! by name and opens streams through it.
//!
//! A pool runs from a validated [`config::Upstream`] as it is: the config module checked it
//! once, so nothing here re-declares or re-checks its fields. Settings that are not part of an
//! `upstreams:` entry (timeouts, the known-hosts file, an SSM endpoint override) are
//! [`PoolOptions`]. [`pool`] owns the connections; [`state`] is the pure
//! lifecycle/backoff/placement logic it uses. Routing (which upstream a destination goes to)
//! belongs to `route`.

mod connect;
mod handle;
pub mod pool;
pub mod port_pool;
pub mod state;
pub mod status;
mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config;
use crate::ssh::RejectKind;
pub use handle::UpstreamHandle;
pub use pool::{ConnStatus, Pool, PoolOptions, PoolStatus};
pub use port_pool::{PortPool, PortRefusal};
pub use state::PoolState;
pub use stream::UpstreamStream;

/// Why a stream could not be opened through an upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("unknown upstream \"{0}\"")]
    Unknown(String),
    #[error("upstream {upstream}: bastion {instance} could not connect to {host}:{port}: {} ({description})", .kind.describe())]
    Rejected {
        upstream: String,
        instance: String,
        host: String,
        port: u16,
        kind: RejectKind,
        description: String,
    },
    /// `last_error` is the status text; `cause` the typed connect failure behind it, when the
    /// last thing that went wrong was a connect attempt (it picks the exit code).
    #[error("upstream {upstream}: no connection to a bastion is ready (waited {:.1}s); last error: {last_error}", .waited.as_secs_f64())]
    NotReady {
        upstream: String,
        waited: Duration,
        last_error: String,
        #[source]
        cause: Option<Arc<pool::ConnectError>>,
    },
    #[error("upstream {upstream}: connections failed while opening a stream to {host}:{port}: {}", .cause.as_ref().map_or_else(|| "no connection was available".to_owned(), ToString::to_string))]
    ConnectionsLost {
        upstream: String,
        host: String,
        port: u16,
        #[source]
        cause: Option<Box<crate::ssh::SshError>>,
    },
    /// Every connection failed with an error that will not fix itself; the pool stopped
    /// retrying. `cause` picks the exit code (77 credentials, 78 profile, 68 target, ...).
    #[error("upstream {upstream}: {cause}")]
    GaveUp {
        upstream: String,
        #[source]
        cause: Arc<pool::ConnectError>,
    },
    /// An upstream handed to a runtime of another kind ([`Pool`] runs only `kind: ssh`);
    /// [`UpstreamHandle::new`] picks the right one, so only a direct caller can hit this.
    #[error("upstream {upstream}: kind: {kind} cannot run as this kind of pool")]
    Unsupported {
        upstream: String,
        kind: config::UpstreamProtocol,
    },
    /// A `kind: ssm-port` upstream could not carry a stream to `destination`.
    #[error("upstream {upstream}: {destination}: {why}")]
    Port {
        upstream: String,
        destination: String,
        why: PortRefusal,
    },
    /// The pool is stopped: `disconnect` took it down, or the master is stopping.
    #[error(
        "upstream {upstream} is disconnected; `session-proxy connect {upstream}` brings it back"
    )]
    ShutDown { upstream: String },
}

impl UpstreamError {
    /// The RFC 1928 reply code the SOCKS server should send for this error: the bastion's own
    /// verdict when it gave one, otherwise "general failure" (1).
    pub fn socks_reply(&self) -> u8 {
        match self {
            Self::Rejected { kind, .. } => kind.socks_reply(),
            Self::Port { why, .. } => why.socks_reply(),
            // No usable bastion connection: the destination is unreachable from here.
            Self::NotReady { .. }
            | Self::GaveUp { .. }
            | Self::ConnectionsLost { .. }
            | Self::ShutDown { .. } => 4,
            _ => 1,
        }
    }
}

/// All upstream pools, by name.
#[derive(Default)]
pub struct Upstreams {
    pools: BTreeMap<String, UpstreamHandle>,
}

impl Upstreams {
    /// Builds a pool per upstream (none started yet; see [`Upstreams::start`]). Names are
    /// unique in a validated [`config::Config`], which is where the list comes from. Fails on
    /// an upstream no pool can run ([`UpstreamError::Unsupported`]).
    pub fn new(upstreams: &[config::Upstream], opts: &PoolOptions) -> Result<Self, UpstreamError> {
        let pools = upstreams
            .iter()
            .map(|up| Ok((up.name.clone(), UpstreamHandle::new(up.clone(), opts)?)))
            .collect::<Result<_, UpstreamError>>()?;
        Ok(Self { pools })
    }

    /// Starts connecting every pool that is not lazy. Must run inside a tokio runtime.
    pub fn start(&self) {
        for p in self.pools.values() {
            if !p.lazy() {
                p.start();
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<UpstreamHandle> {
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
        up: config::Upstream,
        opts: &PoolOptions,
    ) -> Result<(), UpstreamError> {
        if let Some(old) = self.replace(up, opts)? {
            old.shutdown().await;
        }
        Ok(())
    }

    /// Adds or replaces a pool and hands back the old one still running, so the caller can
    /// shut it down without holding the registry lock (new streams to other upstreams go on).
    /// On error (an upstream no pool can run) nothing is changed.
    pub fn replace(
        &mut self,
        up: config::Upstream,
        opts: &PoolOptions,
    ) -> Result<Option<UpstreamHandle>, UpstreamError> {
        let pool = UpstreamHandle::new(up, opts)?;
        if !pool.lazy() {
            pool.start();
        }
        Ok(self.pools.insert(pool.config().name.clone(), pool))
    }

    /// Removes a pool without shutting it down (see [`Upstreams::replace`]).
    pub fn take(&mut self, name: &str) -> Option<UpstreamHandle> {
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

    use std::path::{Path, PathBuf};

    use crate::config::{
        HostKeyPolicy, SshUpstream, SsmPortUpstream, Target, Upstream, UpstreamKind,
    };

    fn login() -> SshUpstream {
        SshUpstream {
            user: "ubuntu".into(),
            identity_files: vec!["/home/u/.ssh/id_ed25519".into()],
            ssh_agent: true,
            instance_connect: false,
            port: 2222,
            pool_size: std::num::NonZeroUsize::new(3).unwrap(),
            host_key_policy: HostKeyPolicy::Strict,
            lazy: true,
            keepalive: None,
        }
    }

    fn up(name: &str) -> Upstream {
        Upstream {
            name: name.into(),
            targets: vec![
                Target::InstanceId("i-0123456789abcdef0".into()),
                Target::Name("bastion".into()),
            ],
            profile: Some("prod".into()),
            region: Some("eu-west-1".into()),
            credentials: None,
            kind: UpstreamKind::Ssh(login()),
        }
    }

    fn opts() -> PoolOptions {
        PoolOptions::new(Path::new("/nonexistent/state"))
    }

    #[test]
    fn ssh_settings_keep_the_entry_and_spell_keepalive_off_as_zero() {
        let s = opts().ssh_settings(&login());
        assert_eq!(s.user, "ubuntu");
        assert_eq!(s.identity_files, [PathBuf::from("/home/u/.ssh/id_ed25519")]);
        assert!(s.ssh_agent);
        assert_eq!(s.host_key_policy, HostKeyPolicy::Strict);
        assert_eq!(s.keepalive, Duration::ZERO);
        let on = SshUpstream {
            keepalive: Some(Duration::from_secs(15)),
            ..login()
        };
        assert_eq!(opts().ssh_settings(&on).keepalive, Duration::from_secs(15));
    }

    #[test]
    fn every_pool_keeps_host_keys_in_the_state_dir_known_hosts_file() {
        let s = opts().ssh_settings(&login());
        assert_eq!(
            s.known_hosts.path(),
            Path::new("/nonexistent/state/known_hosts")
        );
    }

    #[test]
    fn aws_settings_come_from_the_entry_and_the_endpoint_from_the_options() {
        let o = PoolOptions {
            endpoint_url: Some("http://127.0.0.1:1".into()),
            ..opts()
        };
        let a = o.aws_settings(&up("prod"));
        assert_eq!(a.profile.as_deref(), Some("prod"));
        assert_eq!(a.region.as_deref(), Some("eu-west-1"));
        assert!(a.credentials.is_none());
        assert_eq!(a.endpoint_url.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(opts().aws_settings(&up("prod")).endpoint_url, None);
    }

    #[test]
    fn a_pool_has_one_slot_per_pool_size_over_its_targets() {
        let pool = Pool::new(up("prod"), opts()).unwrap();
        let s = pool.snapshot();
        assert_eq!((s.connections_total, s.state), (3, PoolState::Idle));
        assert_eq!(pool.config(), up("prod"));
    }

    #[test]
    fn an_ssm_port_upstream_runs_as_port_sessions_that_start_with_their_first_destination() {
        let port = Upstream {
            kind: UpstreamKind::SsmPort(SsmPortUpstream {
                idle_timeout: Duration::from_secs(300),
                sessions_per_destination: std::num::NonZeroUsize::new(2).unwrap(),
            }),
            ..up("db")
        };
        let mut ups = Upstreams::new(&[up("a"), port.clone()], &opts()).unwrap();
        let db = ups.get("db").unwrap();
        assert!(matches!(db, UpstreamHandle::Port(_)));
        assert!(
            db.lazy(),
            "nothing to connect before a destination is known"
        );
        assert_eq!((db.pool_size(), db.config()), (2, port.clone()));
        let s = db.snapshot();
        assert_eq!((s.kind.as_str(), s.state), ("ssm-port", PoolState::Idle));
        assert!(s.destinations.is_empty());
        assert_eq!(ups.get("a").unwrap().snapshot().kind, "ssh");
        let old = ups.replace(port, &opts()).unwrap();
        assert!(
            matches!(old, Some(UpstreamHandle::Port(_))),
            "reload replaces it"
        );
    }

    #[test]
    fn socks_replies_follow_the_agent_verdict_for_port_upstreams() {
        let port = |why| UpstreamError::Port {
            upstream: "db".into(),
            destination: "10.0.0.1:5432".into(),
            why,
        };
        assert_eq!(port(PortRefusal::Refused).socks_reply(), 5);
        let forbidden = PortRefusal::Forbidden {
            output: "Forwarding to IP address 169.254.169.254 is forbidden.".into(),
        };
        assert_eq!(port(forbidden).socks_reply(), 2);
        let none = PortRefusal::NoSession {
            last_error: "x".into(),
            permanent: true,
        };
        assert_eq!(port(none).socks_reply(), 4);
    }

    #[tokio::test]
    async fn unknown_upstream_is_an_error_naming_it() {
        let u = Upstreams::new(&[up("a")], &opts()).unwrap();
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
