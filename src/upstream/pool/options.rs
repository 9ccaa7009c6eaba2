//! The settings every pool shares that are not part of the user's `upstreams:` entry, and how
//! they combine with an entry into the SSH and AWS settings of its connections.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::state::{self, BackoffPolicy};
use crate::config::{SshUpstream, Upstream};
use crate::proxy::ProxySetting;
use crate::ssh::{KnownHosts, SshSettings};
use crate::ssm::api::AwsSettings;
use crate::ssm::session::SessionOptions;

/// Pool settings that are not part of the user's `upstreams:` entry; the same for every pool.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub backoff: BackoffPolicy,
    /// Limit for StartSession + SSH handshake + authentication.
    pub connect_timeout: Duration,
    /// How long `open_stream` waits for a first connection (lazy start, reconnect in progress).
    pub open_wait: Duration,
    /// How long a slot's shutdown may take (SSH disconnect, TerminateSession).
    pub close_timeout: Duration,
    pub session: SessionOptions,
    /// The known-hosts file every pool checks and records bastion host keys in.
    pub known_hosts: PathBuf,
    /// SSM endpoint that wins over `AWS_ENDPOINT_URL`; `demo` points its pools at its own
    /// simulator with it, without touching the process environment.
    pub endpoint_url: Option<String>,
    /// How often a slot whose credentials need a human tries them again (besides on every
    /// client request): 30 s, or `SESSION_PROXY_CREDENTIALS_RETRY_SECS`.
    pub credentials_retry: Duration,
    /// The config file's `proxy:` for the pools' SSM calls and data channels.
    pub proxy: ProxySetting,
}

impl PoolOptions {
    /// The defaults, with host keys kept in `<state_dir>/known_hosts`. There is no `Default`:
    /// a pool must be told where its known-hosts file is, so a test cannot write to the user's.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            backoff: BackoffPolicy::default(),
            connect_timeout: Duration::from_secs(60),
            open_wait: Duration::from_secs(20),
            close_timeout: Duration::from_secs(5),
            session: SessionOptions::default(),
            known_hosts: state_dir.join("known_hosts"),
            endpoint_url: None,
            credentials_retry: state::credentials_retry(
                std::env::var(state::CREDENTIALS_RETRY_ENV).ok().as_deref(),
            ),
            proxy: ProxySetting::Environment,
        }
    }

    /// How the pool's SSH connections log in and check host keys.
    pub fn ssh_settings(&self, login: &SshUpstream) -> SshSettings {
        SshSettings {
            user: login.user.clone(),
            identity_files: login.identity_files.clone(),
            ssh_agent: login.ssh_agent,
            pushed_key: None,
            host_key_policy: login.host_key_policy,
            known_hosts: KnownHosts::new(self.known_hosts.clone()),
            // Zero is how `SshSettings` spells "keepalives off" (`keepalive_secs: 0`).
            keepalive: login.keepalive.unwrap_or(Duration::ZERO),
        }
    }

    /// Which AWS account, region and endpoint the pool's SSM calls go to.
    pub fn aws_settings(&self, up: &Upstream) -> AwsSettings {
        AwsSettings {
            profile: up.profile.clone(),
            region: up.region.clone(),
            credentials: up.credentials.clone(),
            endpoint_url: self.endpoint_url.clone(),
            proxy: self.proxy.clone(),
        }
    }
}
