//! The `upstreams:` section: the typed [`Upstream`] and its validation.
//!
//! An upstream is either an SSH bastion pool (`kind: ssh`, the default: `AWS-StartSSHSession`,
//! then SSH `direct-tcpip` streams) or an SSH-less one (`kind: ssm-port`: one
//! `AWS-StartPortForwardingSessionToRemoteHost` session per destination, only IAM). What the
//! two share (targets, AWS settings) sits in [`Upstream`]; what only one of them has sits in
//! its [`UpstreamKind`] variant, so code that runs an SSH pool has to take the SSH variant
//! first and cannot read a login that an `ssm-port` upstream does not have. Keys of the other
//! kind are refused with one issue each rather than ignored, so a half-converted upstream is
//! noticed at load time.

use std::fmt;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::check::{
    abs_path, keepalive, pool_size, port, port_idle_timeout, profile, region, sessions, target,
    upstream_name, user_name, Issues,
};
use super::raw::RawUpstream;
use super::{
    AwsDefaults, HostKeyPolicy, InlineCredentials, Target, DEFAULT_KEEPALIVE_SECS,
    DEFAULT_POOL_SIZE, DEFAULT_PORT_IDLE_TIMEOUT_SECS, DEFAULT_SESSIONS_PER_DESTINATION,
    DEFAULT_SSH_PORT,
};

/// A named upstream: which instances carry its streams and with which AWS identity, plus the
/// settings of its [`UpstreamKind`]. AWS settings are the effective ones (the `aws:` defaults
/// already applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub name: String,
    /// Non-empty, no duplicates; tried in order.
    pub targets: Vec<Target>,
    /// `None` when `credentials` are given or no profile is configured (SDK default chain).
    pub profile: Option<String>,
    pub region: Option<String>,
    pub credentials: Option<InlineCredentials>,
    pub kind: UpstreamKind,
}

/// How an upstream carries streams, with the settings only that way has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamKind {
    /// `kind: ssh`: a pool of SSH connections over `AWS-StartSSHSession`.
    Ssh(SshUpstream),
    /// `kind: ssm-port`: port-forwarding sessions, no SSH.
    SsmPort(SsmPortUpstream),
}

/// The settings of a `kind: ssh` upstream: how to log into the bastion and how many
/// connections to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshUpstream {
    /// SSH login.
    pub user: String,
    /// `~` already expanded; absolute.
    pub identity_files: Vec<PathBuf>,
    pub ssh_agent: bool,
    /// Log in with a fresh in-memory key per connection, pushed with EC2 Instance Connect
    /// (`instance_connect: true`); then there are no identity files and no agent.
    pub instance_connect: bool,
    /// sshd port on the bastion (`portNumber` of `AWS-StartSSHSession`).
    pub port: u16,
    pub pool_size: NonZeroUsize,
    pub host_key_policy: HostKeyPolicy,
    /// Not connected at start; connected on first use.
    pub lazy: bool,
    /// `None` = keepalives off (`keepalive_secs: 0`).
    pub keepalive: Option<Duration>,
}

/// The settings of a `kind: ssm-port` upstream. Each destination `host:port` gets its own
/// sessions, opened on first use (there is nothing to connect before a destination is known,
/// hence no `lazy`) and shared by later connections to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsmPortUpstream {
    /// A destination's sessions are closed after this long with no stream open.
    pub idle_timeout: Duration,
    /// Sessions a destination's connections are spread over (each session has its own
    /// throughput ceiling).
    pub sessions_per_destination: NonZeroUsize,
}

/// The value of `kind:`, the name of an [`UpstreamKind`] variant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamProtocol {
    #[default]
    Ssh,
    SsmPort,
}

impl fmt::Display for UpstreamProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ssh => "ssh",
            Self::SsmPort => "ssm-port",
        })
    }
}

impl UpstreamKind {
    pub fn protocol(&self) -> UpstreamProtocol {
        match self {
            Self::Ssh(_) => UpstreamProtocol::Ssh,
            Self::SsmPort(_) => UpstreamProtocol::SsmPort,
        }
    }
}

impl Upstream {
    /// The SSH settings, for code that only makes sense for an SSH pool.
    pub fn ssh(&self) -> Option<&SshUpstream> {
        match &self.kind {
            UpstreamKind::Ssh(s) => Some(s),
            UpstreamKind::SsmPort(_) => None,
        }
    }

    pub fn ssh_mut(&mut self) -> Option<&mut SshUpstream> {
        match &mut self.kind {
            UpstreamKind::Ssh(s) => Some(s),
            UpstreamKind::SsmPort(_) => None,
        }
    }

    pub fn protocol(&self) -> UpstreamProtocol {
        self.kind.protocol()
    }
}

/// Validates upstream `name`; `None` (with the issues recorded) when anything is wrong.
pub(super) fn upstream(
    v: &mut Issues,
    name: String,
    mut raw: RawUpstream,
    aws: &AwsDefaults,
    home: Option<&Path>,
) -> Option<Upstream> {
    let p = format!("upstreams.{name}");
    let before = v.count();
    v.check(&p, upstream_name(&name));
    let targets = upstream_targets(v, &p, raw.targets.take().unwrap_or_default());
    let region = match &raw.region {
        Some(r) => v.check(format!("{p}.region"), region(r)),
        None => aws.region.clone(),
    };
    let (profile, credentials) = upstream_auth(v, &p, &raw, aws);
    let kind = match raw.kind.unwrap_or_default() {
        UpstreamProtocol::Ssh => ssh_settings(v, &p, raw, home).map(UpstreamKind::Ssh),
        UpstreamProtocol::SsmPort => port_settings(v, &p, &raw).map(UpstreamKind::SsmPort),
    };
    if matches!(&kind, Some(UpstreamKind::Ssh(s)) if s.instance_connect) {
        instance_connect_targets(v, &p, &targets);
    }
    if v.count() != before {
        return None;
    }
    Some(Upstream {
        name,
        targets,
        profile,
        region,
        credentials,
        kind: kind?,
    })
}

/// The `kind: ssh` keys of upstream `p`; `ssm-port` keys are refused.
fn ssh_settings(
    v: &mut Issues,
    p: &str,
    raw: RawUpstream,
    home: Option<&Path>,
) -> Option<SshUpstream> {
    let others = [
        ("idle_timeout_secs", raw.idle_timeout_secs.is_some()),
        (
            "sessions_per_destination",
            raw.sessions_per_destination.is_some(),
        ),
    ];
    refuse_keys(v, p, &others, UpstreamProtocol::Ssh);
    let user = match raw.user {
        Some(u) => v.check(format!("{p}.user"), user_name(&u)),
        None => {
            v.push(
                format!("{p}.user"),
                "missing; add user: ec2-user (the SSH login on the bastion), or kind: ssm-port for no SSH",
            );
            None
        }
    };
    let ssh_agent = raw.ssh_agent.unwrap_or(false);
    let instance_connect = raw.instance_connect.unwrap_or(false);
    if instance_connect {
        instance_connect_conflicts(v, p, raw.identity_files.is_some(), raw.ssh_agent);
    }
    let identity_files = identity_files(
        v,
        p,
        raw.identity_files.unwrap_or_default(),
        ssh_agent || instance_connect,
        home,
    );
    let port = raw
        .port
        .and_then(|n| v.check(format!("{p}.port"), port(n)))
        .unwrap_or(DEFAULT_SSH_PORT);
    let pool_size = match raw.pool_size {
        Some(n) => v.check(format!("{p}.pool_size"), pool_size(n)),
        None => NonZeroUsize::new(DEFAULT_POOL_SIZE),
    };
    let keepalive = raw.keepalive_secs.map_or(
        Ok(Some(Duration::from_secs(DEFAULT_KEEPALIVE_SECS))),
        keepalive,
    );
    let keepalive = v.check(format!("{p}.keepalive_secs"), keepalive).flatten();
    Some(SshUpstream {
        user: user?,
        identity_files,
        ssh_agent,
        instance_connect,
        port,
        pool_size: pool_size?,
        host_key_policy: raw.host_key_policy.unwrap_or_default(),
        lazy: raw.lazy.unwrap_or(false),
        keepalive,
    })
}

/// The `kind: ssm-port` keys of upstream `p`; SSH and pool keys are refused.
fn port_settings(v: &mut Issues, p: &str, raw: &RawUpstream) -> Option<SsmPortUpstream> {
    let others = [
        ("user", raw.user.is_some()),
        ("identity_files", raw.identity_files.is_some()),
        ("ssh_agent", raw.ssh_agent.is_some()),
        ("instance_connect", raw.instance_connect.is_some()),
        ("port", raw.port.is_some()),
        ("host_key_policy", raw.host_key_policy.is_some()),
        ("keepalive_secs", raw.keepalive_secs.is_some()),
        ("pool_size", raw.pool_size.is_some()),
        ("lazy", raw.lazy.is_some()),
    ];
    refuse_keys(v, p, &others, UpstreamProtocol::SsmPort);
    let idle_timeout = match raw.idle_timeout_secs {
        Some(s) => v.check(format!("{p}.idle_timeout_secs"), port_idle_timeout(s)),
        None => Some(Duration::from_secs(DEFAULT_PORT_IDLE_TIMEOUT_SECS)),
    };
    let default = DEFAULT_SESSIONS_PER_DESTINATION;
    let sessions_per_destination = match raw.sessions_per_destination {
        Some(n) => v.check(
            format!("{p}.sessions_per_destination"),
            sessions(n, default),
        ),
        None => NonZeroUsize::new(default),
    };
    Some(SsmPortUpstream {
        idle_timeout: idle_timeout?,
        sessions_per_destination: sessions_per_destination?,
    })
}

/// `instance_connect: true` brings its own key: own keys are refused rather than silently
/// ignored.
fn instance_connect_conflicts(v: &mut Issues, p: &str, files: bool, agent: Option<bool>) {
    if files {
        v.push(
            format!("{p}.identity_files"),
            "cannot be combined with instance_connect: true (it logs in with a fresh key pushed per connection); remove one",
        );
    }
    if agent == Some(true) {
        v.push(
            format!("{p}.ssh_agent"),
            "cannot be combined with instance_connect: true; remove one",
        );
    }
}

/// `instance_connect: true` needs EC2 targets; `mi-…` ids are refused (names are checked
/// when they resolve).
fn instance_connect_targets(v: &mut Issues, p: &str, targets: &[Target]) {
    for (i, t) in targets.iter().enumerate() {
        if matches!(t, Target::InstanceId(id) if id.starts_with("mi-")) {
            v.push(
                format!("{p}.targets[{i}]"),
                format!("{t} is not an EC2 instance, and instance_connect needs one (i-…); use identity_files for it"),
            );
        }
    }
}

/// One issue per key in `given` that is set but does not apply to an upstream of `kind`.
fn refuse_keys(v: &mut Issues, p: &str, given: &[(&str, bool)], kind: UpstreamProtocol) {
    let why = match kind {
        UpstreamProtocol::Ssh => {
            "applies only to kind: ssm-port upstreams; remove it, or set kind: ssm-port"
        }
        UpstreamProtocol::SsmPort => {
            "does not apply to kind: ssm-port upstreams (no SSH, no pool); remove it"
        }
    };
    for (key, _) in given.iter().filter(|(_, set)| *set) {
        v.push(format!("{p}.{key}"), why);
    }
}

/// Where upstream `p` gets AWS credentials: inline `credentials:` (which then need a region
/// and exclude `profile:`), else its `profile:`, else the file's default profile.
fn upstream_auth(
    v: &mut Issues,
    p: &str,
    raw: &RawUpstream,
    aws: &AwsDefaults,
) -> (Option<String>, Option<InlineCredentials>) {
    let Some(c) = raw.credentials.clone() else {
        return match &raw.profile {
            Some(prof) => (v.check(format!("{p}.profile"), profile(prof)), None),
            None => (aws.profile.clone(), None),
        };
    };
    if let Some(prof) = &raw.profile {
        v.push(
            format!("{p}.credentials"),
            format!("cannot be combined with profile: {prof}; remove one"),
        );
    }
    if raw.region.is_none() && aws.region.is_none() {
        v.push(
            format!("{p}.region"),
            "required when inline credentials are given; add region: <aws-region>",
        );
    }
    check_credentials(v, p, &c);
    (None, Some(c))
}

/// `targets:` of upstream `p`: present, each an instance id or name, none twice.
fn upstream_targets(v: &mut Issues, p: &str, raw: Vec<String>) -> Vec<Target> {
    if raw.is_empty() {
        v.push(
            format!("{p}.targets"),
            "missing; add targets: [i-0123456789abcdef0] (instance ids or SSM instance names)",
        );
    }
    let mut targets: Vec<Target> = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let Some(t) = v.check(format!("{p}.targets[{i}]"), target(t)) else {
            continue;
        };
        if targets.contains(&t) {
            v.push(
                format!("{p}.targets[{i}]"),
                format!("{t} is listed twice; remove one"),
            );
        }
        targets.push(t);
    }
    targets
}

/// `identity_files:` of upstream `p`, absolute; with no agent, at least one is required.
fn identity_files(
    v: &mut Issues,
    p: &str,
    raw: Vec<String>,
    ssh_agent: bool,
    home: Option<&Path>,
) -> Vec<PathBuf> {
    if raw.is_empty() && !ssh_agent {
        v.push(
            p,
            "no SSH authentication; add identity_files: [~/.ssh/id_ed25519] or set ssh_agent: true",
        );
    }
    let mut files = Vec::new();
    for (i, f) in raw.iter().enumerate() {
        files.extend(v.check(format!("{p}.identity_files[{i}]"), abs_path(f, home)));
    }
    files
}

/// Checks the values of credentials that serde already read into their final type.
fn check_credentials(v: &mut Issues, p: &str, c: &InlineCredentials) {
    let p = format!("{p}.credentials");
    let id = &c.access_key_id;
    if !(16..=128).contains(&id.len())
        || !id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        v.push(
            format!("{p}.access_key_id"),
            "does not look like an AWS access key id (16 to 128 capital letters and digits, e.g. AKIA…)",
        );
    }
    if c.secret_access_key.expose().trim().is_empty() {
        v.push(
            format!("{p}.secret_access_key"),
            "empty; paste the secret access key or use a profile",
        );
    }
    if c.session_token
        .as_ref()
        .is_some_and(|t| t.expose().trim().is_empty())
    {
        v.push(
            format!("{p}.session_token"),
            "empty; remove the key if the credentials are not temporary",
        );
    }
}

#[cfg(test)]
mod tests;
