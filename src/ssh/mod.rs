//! SSH client over an arbitrary byte stream (in practice an SSM data channel), built on russh.
//!
//! It owns the SSH side of an upstream connection: the handshake with host key verification
//! ([`host_keys`]), public-key authentication from identity files and/or ssh-agent, keepalives
//! that notice a dead bastion, and opening `direct-tcpip` channels whose destination is resolved
//! by the bastion. Pooling, reconnecting and accounting belong to `upstream`.

pub mod host_keys;
mod open_failure;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, DisconnectReason, Handle, Msg};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{cipher, ChannelOpenFailure, ChannelStream, Preferred};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio::sync::watch;

use crate::redact::Redacted;
use crate::ssm::api::{SessionRequest, SsmApi};
use crate::ssm::session::{OpenError, Session, SessionOptions};
pub use host_keys::{HostKeyError, HostKeyPolicy, KnownHosts};
use open_failure::OpenFailures;
pub use open_failure::{classify_open_failure, RejectKind};

/// Size of each direction of the in-memory pipe between the SSM session and russh: large enough
/// to keep a long-RTT data channel busy, small enough that a stalled peer holds little memory.
pub const PIPE_BYTES: usize = 256 * 1024;

/// How many unanswered keepalives mean the connection is dead.
pub const KEEPALIVE_MAX: usize = 3;

/// Ciphers offered to the bastion, best first. AES-256-GCM comes before russh's default first
/// choice, ChaCha20-Poly1305, because its AES-GCM runs on the CPU's AES and carry-less multiply
/// instructions while ChaCha20-Poly1305 is plain software: a master decrypts every byte its
/// SOCKS clients download, so this is per-byte CPU on the busiest path.
const CIPHERS: &[cipher::Name] = &[
    cipher::AES_256_GCM,
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_CTR,
    cipher::AES_192_CTR,
    cipher::AES_128_CTR,
];

/// A `direct-tcpip` channel as a byte stream.
pub type SshStream = ChannelStream<Msg>;

/// How to authenticate and verify one upstream's bastions.
#[derive(Debug, Clone)]
pub struct SshSettings {
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    pub ssh_agent: bool,
    /// An in-memory key pushed with EC2 Instance Connect for this connection; tried first.
    pub pushed_key: Option<Redacted<Arc<PrivateKey>>>,
    pub host_key_policy: HostKeyPolicy,
    pub known_hosts: KnownHosts,
    /// Silence after which a keepalive is sent; [`KEEPALIVE_MAX`] unanswered ones end the link.
    /// Zero turns keepalives off.
    pub keepalive: Duration,
}

/// Why an SSH connection could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("SSM session to {instance} failed: {source}")]
    Session {
        instance: String,
        #[source]
        source: OpenError,
    },
    #[error(transparent)]
    HostKey(#[from] HostKeyError),
    #[error("SSH handshake with {instance} failed: {message}")]
    Handshake { instance: String, message: String },
    #[error("SSH authentication as {user} on {instance} failed; tried: {}", describe_tried(.tried))]
    Auth {
        user: String,
        instance: String,
        tried: Vec<String>,
    },
    #[error("{instance} refused to connect to {host}:{port}: {} ({description})", .kind.describe())]
    Rejected {
        instance: String,
        host: String,
        port: u16,
        kind: RejectKind,
        description: String,
    },
    #[error("SSH connection to {instance} is closed: {message}")]
    Closed { instance: String, message: String },
}

impl SshError {
    /// True when retrying cannot help: the bastion refused our keys or its host key, or the
    /// SSM side failed for good (credentials, profile). Lost connections and handshakes cut
    /// short are worth another try.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Session { source, .. } if source.is_permanent() => true,
            Self::Auth { .. } => true,
            Self::HostKey(h) => !matches!(h, HostKeyError::Io { .. }),
            Self::Session { .. }
            | Self::Handshake { .. }
            | Self::Rejected { .. }
            | Self::Closed { .. } => false,
        }
    }
}

fn describe_tried(tried: &[String]) -> String {
    if tried.is_empty() {
        "no keys (set identity_files, or ssh_agent with keys loaded in the agent)".into()
    } else {
        tried.join("; ")
    }
}

/// State shared between the russh handler (inside russh's session task) and [`SshConnection`].
#[derive(Debug)]
struct Shared {
    failures: OpenFailures,
    host_key_error: Mutex<Option<HostKeyError>>,
    /// Why the connection ended, once it has.
    end: watch::Sender<Option<String>>,
}

struct ClientHandler {
    instance: String,
    policy: HostKeyPolicy,
    known_hosts: KnownHosts,
    shared: Arc<Shared>,
}

impl Drop for ClientHandler {
    /// russh drops the handler when its session task ends, however it ends; this is the one
    /// signal that covers EOF from the SSM side, keepalive timeout and protocol errors alike.
    fn drop(&mut self) {
        self.shared.end.send_if_modified(|e| {
            if e.is_none() {
                *e = Some("SSH session ended".into());
                true
            } else {
                false
            }
        });
    }
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // We advertise no host-certificate algorithms (russh's default), so a bastion always
        // proves itself with a plain key; anything else is refused.
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        match self.known_hosts.verify(&self.instance, key, self.policy) {
            Ok(()) => Ok(true),
            Err(e) => {
                *self
                    .shared
                    .host_key_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(e);
                Ok(false)
            }
        }
    }

    async fn channel_open_failure(
        &mut self,
        _channel: russh::ChannelId,
        reason: ChannelOpenFailure,
        description: &str,
        _language: &str,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.shared.failures.push(reason, description.to_owned());
        Ok(())
    }

    async fn disconnected(
        &mut self,
        reason: DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        let (text, result) = match reason {
            DisconnectReason::ReceivedDisconnect(info) => (
                format!(
                    "bastion disconnected ({}): {}",
                    disconnect_reason(info.reason_code),
                    info.message
                ),
                Ok(()),
            ),
            DisconnectReason::Error(e) => (format!("SSH connection lost: {e}"), Err(e)),
        };
        self.shared.end.send_replace(Some(text));
        result
    }
}

/// An authenticated SSH connection to one bastion.
pub struct SshConnection {
    instance: String,
    handle: Handle<ClientHandler>,
    shared: Arc<Shared>,
}

impl SshConnection {
    /// Runs the SSH handshake and authentication over `stream`.
    pub async fn connect<S>(
        stream: S,
        instance: &str,
        settings: &SshSettings,
    ) -> Result<Self, SshError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let config = client::Config {
            keepalive_interval: (!settings.keepalive.is_zero()).then_some(settings.keepalive),
            keepalive_max: KEEPALIVE_MAX,
            preferred: Preferred {
                cipher: Cow::Borrowed(CIPHERS),
                ..Preferred::default()
            },
            ..client::Config::default()
        };
        let (end, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            failures: OpenFailures::default(),
            host_key_error: Mutex::new(None),
            end,
        });
        let handler = ClientHandler {
            instance: instance.to_owned(),
            policy: settings.host_key_policy,
            known_hosts: settings.known_hosts.clone(),
            shared: shared.clone(),
        };
        let handle = match client::connect_stream(Arc::new(config), stream, handler).await {
            Ok(h) => h,
            Err(e) => {
                let hk = shared
                    .host_key_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
                return Err(match hk {
                    Some(hk) => SshError::HostKey(hk),
                    None => SshError::Handshake {
                        instance: instance.to_owned(),
                        message: e.to_string(),
                    },
                });
            }
        };
        let mut conn = Self {
            instance: instance.to_owned(),
            handle,
            shared,
        };
        conn.authenticate(settings).await?;
        Ok(conn)
    }

    /// Tries every identity file, then every agent key, until one is accepted.
    async fn authenticate(&mut self, s: &SshSettings) -> Result<(), SshError> {
        let mut tried = Vec::new();
        if let Some(key) = &s.pushed_key {
            let key = PrivateKeyWithHashAlg::new(key.expose().clone(), None);
            match self.handle.authenticate_publickey(&s.user, key).await {
                Ok(r) if r.success() => return Ok(()),
                Ok(_) => tried.push("the key pushed with EC2 Instance Connect (not accepted: is the instance's AuthorizedKeysCommand set up, ec2-instance-connect installed?)".into()),
                Err(e) => return Err(self.closed_or(e.to_string())),
            }
        }
        for path in &s.identity_files {
            let shown = path.display();
            let key = match russh::keys::load_secret_key(path, None) {
                Ok(k) => k,
                Err(russh::keys::Error::KeyIsEncrypted) => {
                    tried.push(format!(
                        "{shown} (skipped: passphrase-protected; load it into ssh-agent with \
                         `ssh-add {shown}` and enable ssh_agent)"
                    ));
                    continue;
                }
                Err(e) => {
                    tried.push(format!("{shown} (skipped: cannot load: {e})"));
                    continue;
                }
            };
            let hash = self.rsa_hash(key.algorithm().is_rsa()).await;
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            match self.handle.authenticate_publickey(&s.user, key).await {
                Ok(r) if r.success() => return Ok(()),
                Ok(_) => tried.push(format!("{shown} (not accepted)")),
                Err(e) => return Err(self.closed_or(e.to_string())),
            }
        }
        if s.ssh_agent && self.authenticate_agent(&s.user, &mut tried).await? {
            return Ok(());
        }
        Err(SshError::Auth {
            user: s.user.clone(),
            instance: self.instance.clone(),
            tried,
        })
    }

    /// Tries the agent's keys; `Ok(true)` once one is accepted.
    async fn authenticate_agent(
        &mut self,
        user: &str,
        tried: &mut Vec<String>,
    ) -> Result<bool, SshError> {
        let mut agent = match russh::keys::agent::client::AgentClient::connect_env().await {
            Ok(a) => a,
            Err(e) => {
                tried.push(format!(
                    "ssh-agent (unavailable: {e}; is SSH_AUTH_SOCK set?)"
                ));
                return Ok(false);
            }
        };
        let keys = match agent.request_identities().await {
            Ok(k) => k,
            Err(e) => {
                tried.push(format!("ssh-agent (listing keys failed: {e})"));
                return Ok(false);
            }
        };
        if keys.is_empty() {
            tried.push("ssh-agent (no keys loaded)".into());
        }
        for identity in keys {
            // A certificate identity signs with its key pair; the plain key is what we offer.
            let key = identity.public_key().into_owned();
            let label = format!(
                "agent key {} {}",
                key.fingerprint(HashAlg::Sha256),
                identity.comment()
            );
            let hash = self.rsa_hash(key.algorithm().is_rsa()).await;
            match self
                .handle
                .authenticate_publickey_with(user, key, hash, &mut agent)
                .await
            {
                Ok(r) if r.success() => return Ok(true),
                Ok(_) => tried.push(format!("{} (not accepted)", label.trim_end())),
                Err(e) => tried.push(format!("{} (agent failed to sign: {e})", label.trim_end())),
            }
            if self.handle.is_closed() {
                return Err(self.closed_or("closed during authentication".into()));
            }
        }
        Ok(false)
    }

    /// RSA keys need a signature hash the server accepts; other key types ignore it.
    async fn rsa_hash(&self, is_rsa: bool) -> Option<HashAlg> {
        if !is_rsa {
            return None;
        }
        match self.handle.best_supported_rsa_hash().await {
            Ok(Some(h)) => h,
            _ => Some(HashAlg::Sha256),
        }
    }

    fn closed_or(&self, message: String) -> SshError {
        let message = self.shared.end.borrow().clone().unwrap_or(message);
        SshError::Closed {
            instance: self.instance.clone(),
            message,
        }
    }

    /// The instance this connection reaches.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Opens a `direct-tcpip` channel to `host:port` as seen from the bastion. Names are passed
    /// through unresolved so the bastion's (private) DNS applies.
    pub async fn open_direct_tcpip(&self, host: &str, port: u16) -> Result<SshStream, SshError> {
        match self
            .handle
            .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0)
            .await
        {
            Ok(ch) => Ok(ch.into_stream()),
            Err(russh::Error::ChannelOpenFailure(reason)) => {
                let description = self
                    .shared
                    .failures
                    .claim(reason.clone(), Duration::from_millis(250))
                    .await;
                Err(SshError::Rejected {
                    instance: self.instance.clone(),
                    host: host.to_owned(),
                    port,
                    kind: classify_open_failure(reason, &description),
                    description,
                })
            }
            Err(e) => Err(self.closed_or(e.to_string())),
        }
    }

    /// True once the SSH session has ended.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed() || self.shared.end.borrow().is_some()
    }

    /// Resolves when the SSH session ends, with the reason.
    pub async fn closed(&self) -> String {
        let mut rx = self.shared.end.subscribe();
        loop {
            if let Some(why) = rx.borrow_and_update().clone() {
                return why;
            }
            if self.handle.is_closed() {
                return "SSH session ended".into();
            }
            // The sender lives in `shared`, which we hold, so `changed` only fails if the
            // channel closed; poll `is_closed` now and then as a second signal.
            let _ = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
        }
    }

    /// Sends SSH_MSG_DISCONNECT (best effort).
    pub async fn disconnect(&self) {
        let _ = self
            .handle
            .disconnect(
                russh::Disconnect::ByApplication,
                "session-proxy closing",
                "en",
            )
            .await;
    }
}

/// A connected bastion: the SSM session carrying SSH, and the SSH connection over it.
pub struct Bastion {
    pub session: Session,
    pub ssh: SshConnection,
}

/// Starts an `AWS-StartSSHSession` session to `instance:port` and runs SSH over it through an
/// in-memory pipe. On an SSH failure the session is stopped and terminated before returning.
pub async fn connect_via_ssm(
    api: Arc<SsmApi>,
    instance: &str,
    port: u16,
    settings: &SshSettings,
    session_options: SessionOptions,
) -> Result<Bastion, SshError> {
    let (ssm_end, ssh_end): (DuplexStream, DuplexStream) = tokio::io::duplex(PIPE_BYTES);
    let req = SessionRequest::ssh(instance, port);
    let session = Session::start(api, &req, ssm_end, session_options)
        .await
        .map_err(|source| SshError::Session {
            instance: instance.to_owned(),
            source,
        })?;
    match SshConnection::connect(ssh_end, instance, settings).await {
        Ok(ssh) => Ok(Bastion { session, ssh }),
        Err(e) => {
            session.request_stop().await;
            let _ = tokio::time::timeout(Duration::from_secs(5), session.finish()).await;
            Err(e)
        }
    }
}

/// The RFC 4253 §11.1 reason of an SSH disconnect, in words (not the enum's `Debug` name).
fn disconnect_reason(reason: russh::Disconnect) -> &'static str {
    use russh::Disconnect as D;
    match reason {
        D::HostNotAllowedToConnect => "host not allowed to connect",
        D::ProtocolError => "protocol error",
        D::KeyExchangeFailed => "key exchange failed",
        D::Reserved => "reserved reason",
        D::MACError => "MAC error",
        D::CompressionError => "compression error",
        D::ServiceNotAvailable => "service not available",
        D::ProtocolVersionNotSupported => "protocol version not supported",
        D::HostKeyNotVerifiable => "host key not verifiable",
        D::ConnectionLost => "connection lost",
        D::ByApplication => "closed by the application",
        D::TooManyConnections => "too many connections",
        D::AuthCancelledByUser => "authentication cancelled",
        D::NoMoreAuthMethodsAvailable => "no more authentication methods",
        D::IllegalUserName => "illegal user name",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_error_names_user_instance_and_every_key_tried() {
        let e = SshError::Auth {
            user: "ec2-user".into(),
            instance: "i-0123456789abcdef0".into(),
            tried: vec![
                "/k/id_ed25519 (not accepted)".into(),
                "ssh-agent (no keys loaded)".into(),
            ],
        };
        let m = e.to_string();
        for want in [
            "ec2-user",
            "i-0123456789abcdef0",
            "/k/id_ed25519",
            "ssh-agent",
        ] {
            assert!(m.contains(want), "{m}");
        }
        let none = SshError::Auth {
            user: "u".into(),
            instance: "i".into(),
            tried: vec![],
        };
        assert!(none.to_string().contains("identity_files"), "{none}");
    }
}
