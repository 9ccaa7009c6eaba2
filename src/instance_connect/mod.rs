//! EC2 Instance Connect: pushing an SSH public key to an EC2 instance with
//! `SendSSHPublicKey`, so teams that hand out no SSH keys can still log in. The instance's
//! sshd accepts the key for 60 s (its `AuthorizedKeysCommand` reads it from the instance
//! metadata); the SSH login through Session Manager must start within that window.
//!
//! Used two ways: `stdio --send-key` pushes the user's own public key ([`key::user_public_key`])
//! before OpenSSH authenticates, and `instance_connect: true` upstreams push a fresh in-memory
//! key per pool connection ([`key::ephemeral`]) that never touches the disk.

pub mod key;

use aws_sdk_ec2instanceconnect::error::{ProvideErrorMetadata, SdkError};

use crate::ssm::credentials::{self, Problem};
use crate::ssm::sdk::{self, AwsSettings};

/// The IAM action a push needs; errors name it so the user knows what to ask for.
pub const PERMISSION: &str = "ec2-instance-connect:SendSSHPublicKey";

/// Why a key could not be pushed, worded for the user (the next step included).
#[derive(Debug, thiserror::Error)]
pub enum InstanceConnectError {
    #[error("EC2 Instance Connect needs an EC2 instance (i-…), and {target} is not one (mi-… nodes are on-premises or hybrid servers); drop --send-key / instance_connect and log in with your own key")]
    NotEc2 { target: String },
    #[error("not allowed to push an SSH key to {instance} as {user}: {message}; your IAM identity needs {PERMISSION} on this instance (and the ec2:osuser condition must allow {user})")]
    Denied {
        instance: String,
        user: String,
        message: String,
    },
    #[error("{0}")]
    Credentials(Problem),
    #[error("EC2 Instance Connect found no instance {instance}: {message}; check the instance id, region and profile")]
    NotFound { instance: String, message: String },
    #[error("{instance} cannot take an Instance Connect key now: {message}; the instance must be running")]
    NotRunning { instance: String, message: String },
    #[error("EC2 Instance Connect is throttling requests ({message}); try again in a few seconds")]
    Throttled { message: String },
    #[error("EC2 Instance Connect refused the key for {instance} as {user}: {message}")]
    InvalidArgs {
        instance: String,
        user: String,
        message: String,
    },
    #[error("EC2 Instance Connect SendSSHPublicKey failed ({code}): {message}")]
    Service { code: String, message: String },
    #[error("could not reach EC2 Instance Connect: {message}; check the network, region and any HTTPS proxy")]
    Transport { message: String },
}

impl InstanceConnectError {
    /// True when retrying later may help: throttling and network trouble.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Transport { .. })
    }
}

/// A `SendSSHPublicKey` client built from the one SDK configuration loader.
#[derive(Debug, Clone)]
pub struct InstanceConnect {
    client: aws_sdk_ec2instanceconnect::Client,
    profile: Option<String>,
}

impl InstanceConnect {
    pub async fn new(s: &AwsSettings) -> Self {
        let conf = sdk::load(s).await;
        Self {
            client: aws_sdk_ec2instanceconnect::Client::new(&conf),
            profile: s.profile.clone(),
        }
    }

    /// Pushes `public_key` (one OpenSSH line) for `user` on `instance`; the instance accepts
    /// it for the next 60 s.
    pub async fn send_key(
        &self,
        instance: &str,
        user: &str,
        public_key: &str,
    ) -> Result<(), InstanceConnectError> {
        require_ec2(instance)?;
        let sent = self
            .client
            .send_ssh_public_key()
            .instance_id(instance)
            .instance_os_user(user)
            .ssh_public_key(public_key)
            .send()
            .await;
        match sent {
            Ok(out) if out.success() => Ok(()),
            Ok(_) => Err(InstanceConnectError::Service {
                code: "Unsuccessful".into(),
                message: "the service answered Success: false".into(),
            }),
            Err(e) => Err(self.classify(instance, user, e)),
        }
    }

    fn classify<E>(&self, instance: &str, user: &str, err: SdkError<E>) -> InstanceConnectError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        use InstanceConnectError as E2;
        let text = crate::ssm::api::display_chain(&err);
        let SdkError::ServiceError(se) = &err else {
            let lower = text.to_ascii_lowercase();
            if lower.contains("credential") || lower.contains("sso") {
                return E2::Credentials(self.diagnose(&text));
            }
            let message = text.lines().next().unwrap_or_default().to_owned();
            return E2::Transport { message };
        };
        let code = se.err().code().unwrap_or("Unknown").to_owned();
        let message = se.err().message().unwrap_or(&text).to_owned();
        let (instance, user) = (instance.to_owned(), user.to_owned());
        match code.as_str() {
            "AuthException"
            | "AccessDeniedException"
            | "AccessDenied"
            | "UnauthorizedOperation" => E2::Denied {
                instance,
                user,
                message,
            },
            "ExpiredToken"
            | "ExpiredTokenException"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "InvalidSignatureException" => {
                E2::Credentials(self.diagnose(&format!("{code}: {message}")))
            }
            "EC2InstanceNotFoundException" => E2::NotFound { instance, message },
            "EC2InstanceStateInvalidException" | "EC2InstanceUnavailableException" => {
                E2::NotRunning { instance, message }
            }
            "ThrottlingException" | "TooManyRequestsException" => E2::Throttled { message },
            "InvalidArgsException" => E2::InvalidArgs {
                instance,
                user,
                message,
            },
            _ => E2::Service { code, message },
        }
    }

    fn diagnose(&self, text: &str) -> Problem {
        credentials::diagnose_env(text, self.profile.as_deref())
    }
}

/// Instance Connect reaches EC2 instances only; say so before asking the service.
pub fn require_ec2(instance: &str) -> Result<(), InstanceConnectError> {
    if instance.starts_with("i-") {
        Ok(())
    } else {
        Err(InstanceConnectError::NotEc2 {
            target: instance.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_managed_node_id_is_refused_naming_ec2() {
        let e = require_ec2("mi-0123456789abcdef0").unwrap_err().to_string();
        assert!(
            e.contains("needs an EC2 instance") && e.contains("mi-0123456789abcdef0"),
            "{e}"
        );
        assert!(require_ec2("i-0123456789abcdef0").is_ok());
    }

    #[test]
    fn a_denied_push_names_the_permission() {
        let e = InstanceConnectError::Denied {
            instance: "i-1".into(),
            user: "ec2-user".into(),
            message: "not authorized".into(),
        };
        assert!(e.to_string().contains(PERMISSION), "{e}");
    }
}
