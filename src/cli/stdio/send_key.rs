//! `stdio --send-key`: pushes the user's public key with EC2 Instance Connect right before the
//! session starts, so OpenSSH's authentication lands inside the key's 60 s window.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::instance_connect::{key, InstanceConnect};
use crate::ssm::sdk::AwsSettings;

/// The OS user when `--os-user` is not given: Amazon Linux's login, the most common one.
/// Generated ssh configs always pass ssh's own (`--os-user %r`).
pub(super) const DEFAULT_OS_USER: &str = "ec2-user";

/// Finds the key (`file`, else the defaults) and pushes it for `user` on `instance`.
pub(super) async fn push(
    settings: &AwsSettings,
    instance: &str,
    user: &str,
    file: Option<&Path>,
) -> anyhow::Result<()> {
    crate::instance_connect::require_ec2(instance)?;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let found = key::user_public_key(file, home.as_deref()).await?;
    InstanceConnect::new(settings)
        .await
        .send_key(instance, user, &found.openssh)
        .await
        .with_context(|| format!("pushing the key from {} to {instance}", found.source))?;
    tracing::info!(
        "pushed {} for {user} to {instance} with EC2 Instance Connect (valid 60 s)",
        found.source
    );
    Ok(())
}
