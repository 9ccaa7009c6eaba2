//! One connect attempt of a pool slot: SSM session plus SSH login to one instance, and the
//! typed error that says whether trying again can help.

use std::sync::Arc;
use std::time::Duration;

use crate::instance_connect::{key, InstanceConnect, InstanceConnectError};
use crate::redact::Redacted;
use crate::ssh::{self, Bastion, SshError, SshSettings};
use crate::ssm::api::{ApiError, SsmApi};
use crate::ssm::credentials::Problem;
use crate::ssm::session::{OpenError, SessionOptions};
use crate::ssm::target;

/// Why one connect attempt of a slot failed; kept typed so that `serve` and `connect` report
/// the cause's exit code (credentials, host key, ...) and not just its text.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Target(#[from] target::TargetError),
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("connecting to {target} timed out after {}s", .after.as_secs())]
    Timeout { target: String, after: Duration },
    /// `instance_connect: true`: the ephemeral key could not be pushed.
    #[error(transparent)]
    InstanceConnect(#[from] crate::instance_connect::InstanceConnectError),
}

impl ConnectError {
    /// True when retrying cannot help (see [`super::state::Slot::on_permanent_failure`]): an unknown
    /// target, unusable credentials or profile, keys or host key refused. Network errors, an
    /// offline instance, throttling and timeouts are transient.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Target(t) => t.is_permanent(),
            Self::Ssh(s) => s.is_permanent(),
            Self::Timeout { .. } => false,
            Self::InstanceConnect(i) => !i.is_transient(),
        }
    }

    /// The credential problem behind this failure when a human must fix it (log in again,
    /// MFA, a failing `credential_process`, expired keys) and then the slot can retry: not
    /// an unknown profile, which is a configuration error.
    pub fn credentials_problem(&self) -> Option<&Problem> {
        let api = match self {
            Self::Target(target::TargetError::Api(a)) => a,
            Self::Ssh(SshError::Session {
                source: OpenError::Api(a),
                ..
            }) => a,
            _ => return None,
        };
        match api {
            ApiError::Credentials(p) if !p.is_config() => Some(p),
            _ => None,
        }
    }
}

/// Connects to `instance:port` through SSM and logs in. "Not connected" is also how SSM
/// answers an id it has never heard of; only the latter is worth giving up on, so that answer
/// is checked against DescribeInstanceInformation.
pub(super) async fn dial(
    api: Arc<SsmApi>,
    instance: &str,
    port: u16,
    settings: &SshSettings,
    session: SessionOptions,
) -> Result<Bastion, ConnectError> {
    match ssh::connect_via_ssm(api.clone(), instance, port, settings, session).await {
        Ok(b) => Ok(b),
        Err(
            e @ SshError::Session {
                source: OpenError::Api(ApiError::TargetNotConnected { .. }),
                ..
            },
        ) => {
            target::check_registered(&api, instance).await?;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// `instance_connect: true`: a fresh ed25519 key for this one connection, its public half
/// pushed for the upstream's user. Returns `settings` logging in with it; the private half
/// lives only in memory (never written, never logged) and is dropped once the login is done
/// with these settings.
pub(super) async fn push_ephemeral_key(
    eic: &InstanceConnect,
    instance: &str,
    settings: &SshSettings,
) -> Result<SshSettings, ConnectError> {
    let key = key::ephemeral();
    let public = key::openssh_line(key.public_key()).map_err(|message| {
        ConnectError::InstanceConnect(InstanceConnectError::InvalidArgs {
            instance: instance.to_owned(),
            user: settings.user.clone(),
            message,
        })
    })?;
    eic.send_key(instance, &settings.user, &public).await?;
    tracing::debug!(
        instance,
        user = settings.user,
        "pushed an ephemeral key with EC2 Instance Connect"
    );
    Ok(SshSettings {
        pushed_key: Some(Redacted::new(Arc::new(key))),
        ..settings.clone()
    })
}
