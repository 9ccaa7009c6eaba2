//! The KMS side of encrypted sessions (reference §5): the [`KeyService`] a driver asks when
//! the channel needs a data key, its errors, and the client's implementation over
//! aws-sdk-kms (GenerateDataKey with the session's encryption context).
//!
//! The KMS client is built from the same AWS settings as the SSM client (profile, region,
//! credentials, endpoint override), so with the simulator KMS calls reach the same port.

use std::fmt;
use std::sync::Arc;

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};

use crate::ssm::channel::{DataKey, KeyRequest, DATA_KEY_LEN};
use crate::ssm::driver::BoxFuture;

/// Encryption-context keys of a session data key (§5).
pub const CONTEXT_SESSION_ID: &str = "aws:ssm:SessionId";
pub const CONTEXT_TARGET_ID: &str = "aws:ssm:TargetId";
pub const CONTEXT_CHALLENGE: &str = "aws:ssm:RandomChallenge";

/// Why a KMS call for a session key failed, phrased for the user: the first words name the
/// permission or the setting to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    /// AccessDenied: the credentials (or the key policy) do not allow the call.
    #[error("{operation} on key {key_id} was refused: {message}")]
    Refused {
        operation: &'static str,
        key_id: String,
        message: String,
    },
    #[error("KMS key {key_id} was not found ({operation}): {message}; check the KMS key in the Session Manager preferences")]
    NotFound {
        operation: &'static str,
        key_id: String,
        message: String,
    },
    #[error("{operation} on key {key_id} failed: {code}: {message}")]
    Service {
        operation: &'static str,
        key_id: String,
        code: String,
        message: String,
    },
    #[error("could not reach KMS for {operation}: {message}")]
    Transport {
        operation: &'static str,
        message: String,
    },
    #[error("KMS answered {operation} with an unusable data key: {message}")]
    Malformed {
        operation: &'static str,
        message: String,
    },
    /// This end has no way to call KMS (a session started without a key service).
    #[error("the agent asked for a KMS-encrypted session, which this session cannot set up")]
    Unavailable,
}

impl KmsError {
    /// True when the credentials or the key policy refused the call (exit code 77).
    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }

    /// The error for a service answer of `code` to `operation` on `key_id`.
    pub fn from_code(operation: &'static str, key_id: &str, code: &str, message: &str) -> Self {
        let (key_id, message) = (key_id.to_owned(), message.to_owned());
        match code {
            c if c.contains("AccessDenied") => Self::Refused {
                operation,
                key_id,
                message,
            },
            "NotFoundException" => Self::NotFound {
                operation,
                key_id,
                message,
            },
            _ => Self::Service {
                operation,
                key_id,
                code: code.to_owned(),
                message,
            },
        }
    }
}

/// Runs the KMS call a channel waits for (GenerateDataKey at a client, Decrypt at an agent).
pub trait KeyService: Send + Sync + 'static {
    fn fetch(&self, req: KeyRequest) -> BoxFuture<Result<DataKey, KmsError>>;
}

/// A shared [`KeyService`], as the driver's options hold it.
#[derive(Clone)]
pub struct KeyProvider(pub Arc<dyn KeyService>);

impl KeyProvider {
    pub fn new(service: impl KeyService) -> Self {
        Self(Arc::new(service))
    }
}

impl fmt::Debug for KeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyProvider")
    }
}

/// The client's key service: GenerateDataKey under the agent's key with the context
/// `{aws:ssm:SessionId, aws:ssm:TargetId}` (plus the challenge when acknowledged).
#[derive(Clone)]
pub struct AwsKeyService {
    client: aws_sdk_kms::Client,
    session_id: String,
    target_id: String,
}

impl AwsKeyService {
    /// `target_id` must be what the agent calls itself (the StartSession target).
    pub fn new(client: aws_sdk_kms::Client, session_id: &str, target_id: &str) -> Self {
        Self {
            client,
            session_id: session_id.to_owned(),
            target_id: target_id.to_owned(),
        }
    }

    async fn generate(
        self,
        key_id: String,
        challenge: Option<String>,
    ) -> Result<DataKey, KmsError> {
        const OP: &str = "kms:GenerateDataKey";
        let mut call = self
            .client
            .generate_data_key()
            .key_id(&key_id)
            .number_of_bytes(DATA_KEY_LEN as i32)
            .encryption_context(CONTEXT_SESSION_ID, &self.session_id)
            .encryption_context(CONTEXT_TARGET_ID, &self.target_id);
        if let Some(c) = challenge {
            call = call.encryption_context(CONTEXT_CHALLENGE, c);
        }
        let out = call.send().await.map_err(|e| classify(OP, &key_id, e))?;
        let malformed = |message: String| KmsError::Malformed {
            operation: OP,
            message,
        };
        let plaintext = out
            .plaintext()
            .ok_or_else(|| malformed("no Plaintext".into()))?;
        let blob = out
            .ciphertext_blob()
            .ok_or_else(|| malformed("no CiphertextBlob".into()))?;
        DataKey::new(plaintext.as_ref(), blob.as_ref().to_vec())
            .map_err(|e| malformed(e.to_string()))
    }
}

impl KeyService for AwsKeyService {
    fn fetch(&self, req: KeyRequest) -> BoxFuture<Result<DataKey, KmsError>> {
        let this = self.clone();
        Box::pin(async move {
            match req {
                KeyRequest::Generate { key_id, challenge } => {
                    this.generate(key_id, challenge).await
                }
                // A client is never asked to decrypt; only an agent is.
                KeyRequest::Decrypt { .. } => Err(KmsError::Unavailable),
            }
        })
    }
}

/// A KMS SDK failure as a [`KmsError`] (service answers by code, the rest as transport).
fn classify<E>(operation: &'static str, key_id: &str, err: SdkError<E>) -> KmsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(se) = &err {
        let e = se.err();
        let code = e.code().unwrap_or("Unknown");
        return KmsError::from_code(operation, key_id, code, e.message().unwrap_or_default());
    }
    let message = crate::ssm::api::display_chain(&err);
    KmsError::Transport { operation, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_names_the_permission_and_the_key_and_exits_77() {
        let e = KmsError::from_code(
            "kms:GenerateDataKey",
            "arn:aws:kms:us-east-1:1:key/k",
            "AccessDeniedException",
            "User is not authorized",
        );
        assert!(e.is_refused());
        assert_eq!(
            e.to_string(),
            "kms:GenerateDataKey on key arn:aws:kms:us-east-1:1:key/k was refused: User is not authorized"
        );
        let driver = crate::ssm::driver::DriverError::Kms(e);
        let err = anyhow::Error::new(driver).context("session failed");
        assert_eq!(crate::exit::code_for(&err), crate::exit::codes::NO_PERM);
        let nf = KmsError::from_code("kms:GenerateDataKey", "k", "NotFoundException", "gone");
        assert!(!nf.is_refused());
        assert!(nf.to_string().contains("not found"));
    }
}
