//! Why a driver stops for good, and why a transport could not produce a new link. Each error
//! keeps its typed cause as `source`, so `exit.rs` can walk the chain and the CLI prints the
//! whole story once (`{:#}`); the top lines name what the user can do next.

use std::time::Duration;

use crate::ssm::api::ApiError;
use crate::ssm::channel::{EncryptionFailure, HandshakeFailure};
use crate::ssm::kms::KmsError;

/// Why the driver stopped for good. Every variant maps to the data-channel exit code (76),
/// except a refused KMS call (77, like refused credentials).
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The WebSocket dropped and no new one could be had.
    #[error("data channel lost and could not be resumed")]
    ResumeFailed(#[source] ResumeError),
    /// Agent role: the client's handshake never came or refused what the agent asked.
    #[error("session handshake failed")]
    Handshake(#[source] HandshakeFailure),
    /// Client role: the KMS data key of an encrypted session could not be had.
    #[error("could not set up the KMS-encrypted session")]
    Kms(#[source] KmsError),
    /// Client role: an encrypted payload from the agent did not decrypt.
    #[error("the encrypted session broke")]
    Encryption(#[source] EncryptionFailure),
    /// The local side (the agent's target, or a client's stream) could not be opened.
    #[error("could not open the local side of the session")]
    AppConnect(#[source] std::io::Error),
    /// The task running the driver panicked or was cancelled.
    #[error("the session task stopped unexpectedly; this is a bug, please report it")]
    TaskFailed(#[source] tokio::task::JoinError),
}

/// Why resuming a dropped data channel stopped.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// The transport said trying again cannot help (session terminated or expired).
    #[error("the session cannot be resumed")]
    Fatal(#[source] ReconnectError),
    /// Every attempt within the reconnect budget failed; `last` is the final attempt's cause.
    #[error("gave up after {attempts} attempts over {}s; check the network path to the SSM endpoints", elapsed.as_secs())]
    BudgetExhausted {
        attempts: u32,
        elapsed: Duration,
        #[source]
        last: ReconnectError,
    },
}

/// What a [`Transport`](super::Transport) says when it cannot produce a new link.
#[derive(Debug, thiserror::Error)]
pub enum ReconnectError {
    /// ResumeSession failed; retried unless the session is gone.
    #[error("ResumeSession failed")]
    Api(#[source] ApiError),
    /// The WebSocket to the stream URL could not be opened.
    #[error("could not reopen the data channel WebSocket")]
    Dial(#[source] crate::ssm::dial::DialError),
    /// The session ended on the service side (terminated, expired, token refused).
    #[error("session {session_id} timed out or was terminated; start a new one")]
    SessionGone { session_id: String },
    /// The link cannot come back by design (the simulator's agent side).
    #[error("the link to the peer closed and does not reconnect")]
    LinkClosed,
}

impl ReconnectError {
    /// True when another attempt cannot help.
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::SessionGone { .. } | Self::LinkClosed => true,
            Self::Api(e) => matches!(e, ApiError::SessionGone(_)),
            // A refused signature stays refused: stop rather than spend the whole budget.
            Self::Dial(e) => e.is_refused(),
        }
    }
}
