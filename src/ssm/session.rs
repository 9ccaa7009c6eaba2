//! Client sessions: StartSession → data-channel WebSocket → driver, with a transport that
//! resumes (ResumeSession + reconnect) when the WebSocket drops, and TerminateSession at the end.
//! This is the one entry point `stdio` and the upstream pools use.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::ssm::api::{ApiError, SessionRequest, SessionTicket, SsmApi};
use crate::ssm::channel::{Channel, Config, Role};
use crate::ssm::dial::{self, DialError};
use crate::ssm::driver::{
    self, AppLayer, BoxFuture, ByteStream, Command, Control, DriverError, End, Options, Parts,
    ReconnectError, Status, Transport, WsStream,
};
use crate::ssm::kms::{AwsKeyService, KeyProvider};

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("could not open the data channel WebSocket for session {session_id}: {message}")]
    Connect { session_id: String, message: String },
    /// The endpoint refused the (signed) upgrade: the credentials, not the network.
    #[error("could not open the data channel of session {session_id}: {source}")]
    UpgradeRefused {
        session_id: String,
        #[source]
        source: DialError,
    },
}

impl OpenError {
    /// True when retrying cannot help until the user changes something: the API said so, or
    /// the endpoint refused the signed upgrade (the credentials).
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Api(a) => a.is_permanent(),
            Self::UpgradeRefused { .. } => true,
            Self::Connect { .. } => false,
        }
    }
}

/// Client-side session tunables.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub channel: Config,
    pub driver: Options,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            channel: Config::new(Role::Client),
            driver: Options::default(),
        }
    }
}

/// Reconnects a dropped data channel: ResumeSession for a new token, then dial (§9.3).
struct Resumer {
    api: Arc<SsmApi>,
    session_id: String,
    original_url: String,
    client_id: String,
    client_version: String,
}

impl Transport<WsStream> for Resumer {
    fn reconnect(&mut self, _attempt: u32) -> BoxFuture<Result<WsStream, ReconnectError>> {
        let api = self.api.clone();
        let id = self.session_id.clone();
        let original = self.original_url.clone();
        let client_id = self.client_id.clone();
        let version = self.client_version.clone();
        Box::pin(async move {
            let t = match api.resume_session(&id).await {
                Ok(t) => t,
                Err(ApiError::SessionGone(_)) => {
                    return Err(ReconnectError::SessionGone { session_id: id })
                }
                Err(e) => return Err(ReconnectError::Api(e)),
            };
            // Prefer the URL ResumeSession returns; the plugin always reuses the original (§9.3).
            let mut urls = vec![];
            if !t.stream_url.is_empty() {
                urls.push(t.stream_url.clone());
            }
            if t.stream_url != original {
                urls.push(original);
            }
            let mut last = None;
            for url in urls {
                let client = dial::Client {
                    client_id: &client_id,
                    client_version: &version,
                };
                let signer = api.upgrade_signer();
                match dial::open(&url, t.token.expose(), &client, signer, api.proxies()).await {
                    Ok(ws) => return Ok(ws),
                    Err(e) => last = Some(e),
                }
            }
            Err(match last {
                Some(e) => ReconnectError::Dial(e),
                // No URL at all: the service gave an empty one and the original was empty too.
                None => ReconnectError::SessionGone { session_id: id },
            })
        })
    }
}

/// A running client session.
pub struct Session {
    pub session_id: String,
    api: Arc<SsmApi>,
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<Status>,
    task: JoinHandle<Result<End, DriverError>>,
}

impl Session {
    /// Starts a session and runs its data channel in the background, bridged to `app`.
    pub async fn start<A>(
        api: Arc<SsmApi>,
        req: &SessionRequest,
        app: A,
        opts: SessionOptions,
    ) -> Result<Self, OpenError>
    where
        A: AsyncRead + AsyncWrite + Send + 'static,
    {
        let ticket = api.start_session(req).await?;
        let opts = with_key_service(opts, &api, &ticket, &req.target);
        Self::attach(api, ticket, app, opts).await
    }

    /// Opens the data channel of an already started session.
    pub async fn attach<A>(
        api: Arc<SsmApi>,
        ticket: SessionTicket,
        app: A,
        opts: SessionOptions,
    ) -> Result<Self, OpenError>
    where
        A: AsyncRead + AsyncWrite + Send + 'static,
    {
        Self::attach_layer(api, ticket, ByteStream::ready(app), opts).await
    }

    /// Like [`Session::start`], with any application layer (a port session's smux layer).
    pub async fn start_layer<P: AppLayer>(
        api: Arc<SsmApi>,
        req: &SessionRequest,
        app: P,
        opts: SessionOptions,
    ) -> Result<Self, OpenError> {
        let ticket = api.start_session(req).await?;
        let opts = with_key_service(opts, &api, &ticket, &req.target);
        Self::attach_layer(api, ticket, app, opts).await
    }

    /// Like [`Session::attach`], with any application layer.
    pub async fn attach_layer<P: AppLayer>(
        api: Arc<SsmApi>,
        ticket: SessionTicket,
        app: P,
        opts: SessionOptions,
    ) -> Result<Self, OpenError> {
        let client_id = uuid::Uuid::new_v4().to_string();
        let version = opts.channel.client_version.clone();
        let ws = first_dial(&api, &ticket, &client_id, &version).await?;
        let mut cfg = opts.channel;
        cfg.role = Role::Client;
        cfg.id_seed = rand::random();
        cfg.unix_ms_at_start = driver::unix_ms();
        let ch = Channel::new(cfg, Instant::now());
        let transport = Resumer {
            api: api.clone(),
            session_id: ticket.session_id.clone(),
            original_url: ticket.stream_url.clone(),
            client_id,
            client_version: version,
        };
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let (status_tx, status_rx) = watch::channel(Status::default());
        let parts = Parts {
            channel: ch,
            link: Some(ws),
            app,
            transport,
            opts: opts.driver,
        };
        let control = Control {
            commands: cmd_rx,
            status: status_tx,
            shutdown: Box::pin(std::future::pending()),
        };
        // The driver's lines (resumes above all) name their session, which `status` shows.
        let span = tracing::info_span!("ssm", session = %ticket.session_id);
        let task = tokio::spawn(tracing::Instrument::instrument(
            async move {
                let (end, ws) = driver::run(parts, control).await;
                if let Some(mut ws) = ws {
                    let _ = tokio::time::timeout(
                        Duration::from_millis(500),
                        futures_util::SinkExt::close(&mut ws),
                    )
                    .await;
                }
                end
            },
            span,
        ));
        Ok(Self {
            session_id: ticket.session_id,
            api,
            commands: cmd_tx,
            status: status_rx,
            task,
        })
    }

    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Asks the driver to stop (TerminateSession flag, brief wait for its acknowledge).
    pub async fn request_stop(&self) {
        let _ = self.commands.send(Command::Terminate).await;
    }

    /// Waits for the data channel to end, then terminates the session on the service side so
    /// nothing is left open (a no-op for sessions that already ended there).
    pub async fn finish(self) -> Result<End, DriverError> {
        let end = match self.task.await {
            Ok(r) => r,
            Err(e) => Err(DriverError::TaskFailed(e)),
        };
        if let Err(e) = self.api.terminate_session(&self.session_id).await {
            tracing::debug!("TerminateSession {}: {e}", self.session_id);
        }
        end
    }
}

/// Gives the driver a KMS key service for this session unless the caller chose one: an agent
/// with KMS encryption on asks for a data key bound to the session id and the target (§5).
fn with_key_service(
    mut opts: SessionOptions,
    api: &SsmApi,
    ticket: &SessionTicket,
    target: &str,
) -> SessionOptions {
    if opts.driver.keys.is_none() {
        let service = AwsKeyService::new(api.kms_client(), &ticket.session_id, target);
        opts.driver.keys = Some(KeyProvider::new(service));
    }
    opts
}

/// Opens the data channel of `ticket`, retrying the first dial with the same token as the
/// plugin does (§9.3 item 5), except after a refused upgrade (credentials: retrying cannot
/// help). When every try fails the session is terminated, not leaked.
async fn first_dial(
    api: &SsmApi,
    ticket: &SessionTicket,
    client_id: &str,
    client_version: &str,
) -> Result<driver::WsStream, OpenError> {
    let client = dial::Client {
        client_id,
        client_version,
    };
    let mut last = String::new();
    for attempt in 0..4u32 {
        let token = ticket.token.expose();
        let (signer, proxies) = (api.upgrade_signer(), api.proxies());
        match dial::open(&ticket.stream_url, token, &client, signer, proxies).await {
            Ok(ws) => return Ok(ws),
            Err(e) if e.is_refused() => {
                let _ = api.terminate_session(&ticket.session_id).await;
                return Err(OpenError::UpgradeRefused {
                    session_id: ticket.session_id.clone(),
                    source: e,
                });
            }
            Err(e) => {
                last = e.to_string();
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
        }
    }
    let _ = api.terminate_session(&ticket.session_id).await;
    Err(OpenError::Connect {
        session_id: ticket.session_id.clone(),
        message: last,
    })
}
