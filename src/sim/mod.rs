//! `session-proxy sim`: a local stand-in for the AWS side of Session Manager.
//!
//! One loopback TCP port serves both the SSM JSON API (`POST /`, [`http`] + [`api`]) and the
//! data-channel WebSockets (`GET /v1/data-channel/<id>`, [`service`]); a peek at the request
//! line tells them apart. Each session runs the protocol core in the agent role ([`agent`])
//! behind a relay that plays the service and injects the [`faults`] plan.

pub mod agent;
pub mod api;
pub mod aws_error;
pub mod credentials;
pub mod demo;
pub mod demo_sftp;
pub mod demo_ssh;
pub mod destination;
pub mod documents;
pub mod faults;
pub mod http;
pub mod instance_connect;
pub mod instances;
pub mod kms;
pub mod memlink;
pub mod peers;
pub mod registry;
pub mod service;
pub mod signed_upgrade;
pub mod sts;
pub mod tagging;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::MaybeTlsStream;

use crate::ssm::driver::{ws_config, Status, WsStream};
use agent::AgentKnobs;
use credentials::Minter;
use faults::{FaultCounts, FaultPlan};
use instances::Instance;
pub use registry::SessionStats;
use registry::{Registry, RelayHandle, SessionSpec};
use service::{close_with, read_open_frame, relay, RelayParams};
pub use signed_upgrade::UpgradeCounts;
use signed_upgrade::{Gate, ACCESS_KEY_ID, SECRET_ACCESS_KEY};

/// Path prefix of data-channel WebSockets (the real service's form, §1.4).
pub const DATA_CHANNEL_PATH: &str = "/v1/data-channel/";
/// How long a data-channel client may take over its WebSocket upgrade (request head in, 101
/// out), so a client that starts one and goes quiet does not hold a task and a socket forever.
/// Real clients finish in one round trip.
pub const UPGRADE_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything `sim` can be told.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub instances: Vec<Instance>,
    pub knobs: AgentKnobs,
    pub faults: FaultPlan,
    /// A session whose client is gone this long is closed (the service's idle timeout).
    pub idle_timeout: Duration,
    /// Refuse data-channel upgrades that are not SigV4-signed with the simulator's key.
    pub require_signed_upgrade: bool,
    /// Mint credentials that live this long on `GET /_sim/credentials` and accept only
    /// those ([`credentials`]); `None` accepts any SigV4-shaped call, as before.
    pub credential_lifetime: Option<Duration>,
    /// IAM actions (`tag:GetResources`, `ssm:StartSession`) answered with AccessDenied, as an
    /// account whose policy lacks them would: how tests and `doctor` runs inject a refusal.
    pub deny: Vec<String>,
    /// Keys pushed with EC2 Instance Connect and how long they last; pass the demo's store
    /// so its SSH server honours them.
    pub pushed_keys: instance_connect::PushedKeys,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            instances: Vec::new(),
            knobs: AgentKnobs::default(),
            faults: FaultPlan::default(),
            idle_timeout: Duration::from_secs(20 * 60),
            require_signed_upgrade: false,
            credential_lifetime: None,
            deny: Vec::new(),
            pushed_keys: instance_connect::PushedKeys::default(),
        }
    }
}

/// A running simulator.
pub struct Sim {
    addr: SocketAddr,
    registry: Registry,
    gate: Arc<Gate>,
    minter: Option<Arc<Minter>>,
    peers: peers::Peers,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Sim {
    /// Serves on `listener` (the caller binds, e.g. `127.0.0.1:0`).
    pub fn start(listener: TcpListener, opts: SimOptions) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let registry = Registry::new(opts.instances.clone(), format!("ws://{addr}"));
        if let Some(key) = &opts.knobs.kms_key_id {
            registry.kms().add_key(key);
        }
        registry.deny(&opts.deny);
        registry.use_pushed_keys(opts.pushed_keys.clone());
        let (shutdown, mut stop) = watch::channel(false);
        let minter = opts.credential_lifetime.map(|l| Arc::new(Minter::new(l)));
        let gate = Arc::new(Gate::new(opts.require_signed_upgrade, minter.clone()));
        let ctx = Arc::new(Ctx {
            registry: registry.clone(),
            gate: gate.clone(),
            minter: minter.clone(),
            opts,
        });
        let peers = peers::Peers::default();
        let seen = peers.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = async { let _ = stop.wait_for(|s| *s).await; } => break,
                    acc = listener.accept() => match acc {
                        Ok((stream, from)) => {
                            seen.record(from.ip());
                            let ctx = ctx.clone();
                            tokio::spawn(async move { ctx.serve(stream).await });
                        }
                        Err(e) => {
                            tracing::warn!("sim accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        });
        Ok(Self {
            addr,
            registry,
            gate,
            minter,
            peers,
            shutdown,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The SSM endpoint URL to give the AWS SDK (`AWS_ENDPOINT_URL`).
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Sessions started and not yet closed or terminated.
    pub fn open_sessions(&self) -> usize {
        self.registry.open_session_count()
    }

    /// Shell lines a user can `eval` to point AWS tools at this simulator.
    pub fn env_lines(&self) -> String {
        format!(
            "export AWS_ENDPOINT_URL={}\nexport AWS_ACCESS_KEY_ID={ACCESS_KEY_ID}\nexport AWS_SECRET_ACCESS_KEY={SECRET_ACCESS_KEY}\nexport AWS_REGION=us-east-1\nexport AWS_EC2_METADATA_DISABLED=true\n",
            self.endpoint_url()
        )
    }

    /// Data-channel upgrades seen so far: signed, unsigned, refused.
    pub fn upgrades(&self) -> UpgradeCounts {
        self.gate.counts()
    }

    /// How many credentials `GET /_sim/credentials` handed out (0 without a lifetime).
    pub fn credentials_issued(&self) -> u64 {
        self.minter.as_ref().map_or(0, |m| m.issued())
    }

    /// Connections accepted so far (API calls and data channels), per peer IP address.
    pub fn peers(&self) -> std::collections::BTreeMap<std::net::IpAddr, u64> {
        self.peers.snapshot()
    }

    /// Per-session counters, from the registry's session table.
    pub fn stats(&self) -> Vec<SessionStats> {
        self.registry.stats()
    }

    /// Stops accepting; running sessions end when their tasks notice (process exit ends all).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

struct Ctx {
    registry: Registry,
    gate: Arc<Gate>,
    minter: Option<Arc<Minter>>,
    opts: SimOptions,
}

impl Ctx {
    async fn serve(self: Arc<Self>, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        match sniff_websocket(&stream).await {
            Some(true) => self.serve_websocket(stream).await,
            Some(false) => {
                let (registry, minter) = (self.registry.clone(), self.minter.clone());
                http::serve_checked_api_connection(stream, registry, minter).await
            }
            None => {}
        }
    }

    /// One data-channel connection: upgrade, check the open frame's token, then either hand the
    /// WebSocket to the session's running relay (a resume) or start the agent and its relay.
    async fn serve_websocket(self: Arc<Self>, stream: TcpStream) {
        let Some((mut ws, session_id)) = upgrade(stream, &self.gate).await else {
            return;
        };
        let open = match read_open_frame(&mut ws).await {
            Ok(o) => o,
            Err(msg) => {
                close_with(&mut ws, CloseCode::Policy, &msg).await;
                return;
            }
        };
        let spec = match self.registry.attach(&session_id, &open.token_value) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("sim: refused data channel for {session_id}: {e}");
                close_with(&mut ws, CloseCode::Policy, &e.to_string()).await;
                return;
            }
        };
        if spec.first_attach {
            self.run_session(spec, session_id, ws).await;
        } else {
            self.resume(&session_id, ws).await;
        }
    }

    /// A resume: the session's relay takes over the new WebSocket.
    async fn resume(&self, session_id: &str, mut ws: WsStream) {
        match self.registry.relay_for(session_id) {
            Some(tx) => {
                if let Err(mpsc::error::SendError(mut ws)) = tx.send(ws).await {
                    close_with(&mut ws, CloseCode::Away, "session is over").await;
                }
            }
            None => close_with(&mut ws, CloseCode::Away, "session is over").await,
        }
    }

    /// A first attach: the simulated agent on one end of an in-memory link, the relay (faults,
    /// recycles, resumes) between the other end and the client's WebSocket.
    async fn run_session(&self, spec: SessionSpec, session_id: String, ws: WsStream) {
        let (agent_link, service_link) = memlink::pair(1024);
        let (attach_tx, attach_rx) = mpsc::channel(4);
        let (status_tx, status_rx) = watch::channel(Status::default());
        let counts = Arc::new(Mutex::new(FaultCounts::default()));
        let (out_tx, out_rx) = oneshot::channel();
        let relays = self.registry.start_relay(
            &session_id,
            RelayHandle {
                attach: attach_tx,
                status: status_rx,
                faults: counts.clone(),
            },
        );
        let knobs = self.opts.knobs.clone();
        let terminated = spec.terminated.clone();
        tokio::spawn(async move {
            let out = agent::run(&spec, &knobs, agent_link, status_tx).await;
            let _ = out_tx.send(out);
        });
        let params = RelayParams {
            session_id: session_id.clone(),
            plan: self.opts.faults.clone(),
            idle_timeout: self.opts.idle_timeout,
            salt: relays as u64,
        };
        let end = relay(
            params,
            ws,
            service_link,
            attach_rx,
            terminated,
            counts,
            out_rx,
        )
        .await;
        tracing::debug!("sim: session {session_id} ended: {end:?}");
        self.registry.mark_closed(&session_id);
    }
}

/// The WebSocket upgrade, bounded by [`UPGRADE_TIMEOUT`] so a client that sends half a request
/// head cannot hold a task and a socket forever; `gate` refuses badly signed upgrades with a 403
/// naming the reason. Returns the socket and the session id from the
/// request path.
#[allow(clippy::result_large_err)] // the handshake callback's signature is tungstenite's
async fn upgrade(stream: TcpStream, gate: &Gate) -> Option<(WsStream, String)> {
    let mut path = None;
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if let Err(body) = gate.admit(req) {
            tracing::debug!("sim: {body}");
            let mut refusal = ErrorResponse::new(Some(body));
            *refusal.status_mut() = StatusCode::FORBIDDEN;
            return Err(refusal);
        }
        path = Some(req.uri().path().to_owned());
        Ok(resp)
    };
    let upgrade = tokio_tungstenite::accept_hdr_async_with_config(
        MaybeTlsStream::Plain(stream),
        callback,
        Some(ws_config()),
    );
    let ws = match tokio::time::timeout(UPGRADE_TIMEOUT, upgrade).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!("sim: WebSocket upgrade failed: {e}");
            return None;
        }
        Err(_) => {
            tracing::debug!(
                "sim: WebSocket upgrade not finished within {UPGRADE_TIMEOUT:?}; dropped"
            );
            return None;
        }
    };
    let session_id = path
        .as_deref()
        .and_then(|p| p.strip_prefix(DATA_CHANNEL_PATH))
        .unwrap_or_default()
        .to_owned();
    Some((ws, session_id))
}

/// Peeks at the request line: `Some(true)` for a data-channel WebSocket, `Some(false)` for
/// anything else HTTP, `None` if the peer sent nothing usable within a few seconds.
async fn sniff_websocket(stream: &TcpStream) -> Option<bool> {
    let mut buf = [0u8; 64];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        let head = buf.get(..n).unwrap_or_default();
        let prefix = format!("GET {DATA_CHANNEL_PATH}");
        if n >= prefix.len() || head.contains(&b'\n') {
            return Some(head.starts_with(prefix.as_bytes()));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
