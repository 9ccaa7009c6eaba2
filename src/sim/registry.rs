//! The simulator's shared state: the instances it pretends to manage and the sessions started on
//! them. The SSM API ([`api`](crate::sim::api)) starts, resumes and terminates sessions here; the
//! data-channel side ([`service`](crate::sim::service)) attaches WebSockets to them with a token
//! and reports when they end.
//!
//! Tokens are single-use: StartSession and ResumeSession each issue one, a ResumeSession
//! invalidates the previous one, and the WebSocket that presents it consumes it (§1.2 of the
//! data-channel reference). The lock is a std `Mutex`, held only for map updates, never across
//! an `.await`.
//!
//! Session semantics are AWS's whoever the caller is (the HTTP API, or a test driving the
//! registry directly): errors carry the service's names ([`kind`]); what a document means for
//! the agent comes from [`documents::plan`]; wire field limits are the API layer's.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::sim::aws_error::{kind, ApiError};
pub use crate::sim::destination::DialTarget;
pub use crate::sim::documents::Run;
use crate::sim::documents::{self, CreateDocument, DocumentStore, Plan};
use crate::sim::faults::FaultCounts;
use crate::sim::instances::Instance;
use crate::sim::kms::Kms;
use crate::ssm::channel::Stats;
use crate::ssm::driver::{Status, WsStream};

/// Sessions that may be open at once; a runaway test hits this instead of exhausting memory.
pub const MAX_OPEN_SESSIONS: usize = 1024;
/// Ended sessions remembered (for DoesNotExist answers and stats); the oldest are forgotten.
pub const MAX_ENDED_SESSIONS: usize = 1024;

/// StartSession input after wire-level validation.
#[derive(Debug, Clone, Default)]
pub struct StartSessionRequest {
    pub target: String,
    /// `None` means the service's default shell document (`SSM-SessionManagerRunShell`).
    pub document: Option<String>,
    pub parameters: HashMap<String, Vec<String>>,
    pub reason: Option<String>,
}

/// StartSession / ResumeSession output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartSessionResponse {
    pub session_id: String,
    pub token: String,
    pub stream_url: String,
}

/// What the agent needs when a client attaches.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub session_id: String,
    pub instance_id: String,
    pub agent_version: String,
    /// The document's `sessionType` (`Port`, `Standard_Stream`, `InteractiveCommands`,
    /// `NonInteractiveCommands`).
    pub session_type: String,
    /// The document's `properties` as the agent sees them (§1.1 table).
    pub properties: Value,
    /// What the agent runs: the address it dials, or the shell or command.
    pub run: Run,
    /// Flips to true on TerminateSession.
    pub terminated: watch::Receiver<bool>,
    /// True the first time this session is attached; later attaches are reconnects.
    pub first_attach: bool,
    /// The simulated KMS, which the agent asks to decrypt an encrypted session's key.
    pub kms: Kms,
}

/// Why a WebSocket could not attach to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    #[error("unknown session")]
    UnknownSession,
    #[error("invalid or already used token; call ResumeSession for a new one")]
    BadToken,
    #[error("session is terminated or closed")]
    Terminated,
}

/// One DescribeInstanceInformation filter (`Key`, `Values`); values are OR-ed, filters AND-ed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub key: String,
    pub values: Vec<String>,
}

/// One `InstanceInformationList` entry, serialized exactly as AWS does (absent fields omitted).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceInfo {
    pub instance_id: String,
    /// `Online` or `ConnectionLost`.
    pub ping_status: &'static str,
    /// Epoch seconds, the JSON 1.1 timestamp form.
    pub last_ping_date_time: f64,
    pub agent_version: String,
    pub is_latest_version: bool,
    pub platform_type: &'static str,
    /// `EC2Instance` for `i-…`, `ManagedInstance` for `mi-…`.
    pub resource_type: &'static str,
    #[serde(rename = "IPAddress", skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub computer_name: Option<String>,
    /// AWS fills `Name` only for hybrid (`mi-`) nodes, and so does the simulator (with the
    /// Name tag); an EC2 instance's tag comes from the tagging API (`sim::tagging`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Closed,
    Terminated,
}

/// The running side of a session, registered by the data-channel side on its first attach.
pub struct RelayHandle {
    /// Hands a resuming client's WebSocket to the session's relay.
    pub attach: mpsc::Sender<WsStream>,
    pub status: watch::Receiver<Status>,
    pub faults: Arc<Mutex<FaultCounts>>,
}

/// Per-session counters, written to `--stats-file` and printed on exit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionStats {
    pub session_id: String,
    pub instance_id: String,
    /// The session's relay is still running.
    pub open: bool,
    pub client_reconnects: u32,
    /// The agent's channel counters (frames, resends, duplicates...).
    pub agent: Stats,
    pub faults: FaultCounts,
}

/// One session: what the API made of it and, once a client attached, its relay. The
/// simulator's only session table is [`Inner::sessions`] of these.
struct Session {
    spec: SessionSpec,
    token: Option<String>,
    attached_once: bool,
    /// Successful attaches (the first one and every resume).
    attaches: u32,
    end: Option<End>,
    terminate: watch::Sender<bool>,
    relay: Option<RelayHandle>,
    /// False once the relay has ended.
    relay_running: bool,
}

struct Inner {
    instances: Vec<Instance>,
    /// Session documents made with CreateDocument (AWS's own are built in).
    documents: DocumentStore,
    ws_base: String,
    sessions: HashMap<String, Session>,
    /// Session ids in start order, for `session_ids` and forgetting the oldest ended ones.
    order: VecDeque<String>,
    /// The simulated KMS (`sim --kms-key-id`).
    kms: Kms,
    /// IAM actions answered with AccessDenied (`sim --deny`).
    denied: BTreeSet<String>,
}

/// Shared handle to the simulator's state; clones share it.
#[derive(Clone)]
pub struct Registry(Arc<Mutex<Inner>>);

impl Registry {
    /// `ws_base` is the data-channel origin, e.g. `ws://127.0.0.1:PORT`. A repeated instance id
    /// keeps its first definition (callers should reject duplicates with
    /// [`check_unique`](crate::sim::instances::check_unique)).
    pub fn new(instances: Vec<Instance>, ws_base: String) -> Self {
        let mut seen = std::collections::HashSet::new();
        let mut instances = instances;
        instances.retain(|i| {
            let first = seen.insert(i.id.clone());
            if !first {
                tracing::warn!("sim: instance {} is defined twice; keeping the first", i.id);
            }
            first
        });
        let ws_base = ws_base.trim_end_matches('/').to_owned();
        let (sessions, order) = (HashMap::new(), VecDeque::new());
        Self(Arc::new(Mutex::new(Inner {
            instances,
            documents: DocumentStore::default(),
            ws_base,
            sessions,
            order,
            kms: Kms::default(),
            denied: BTreeSet::new(),
        })))
    }

    /// Answers the IAM `actions` (`service:Operation`) with AccessDenied from now on.
    pub fn deny(&self, actions: &[String]) {
        self.lock().denied.extend(actions.iter().cloned());
    }

    /// Whether `action` (`ssm:StartSession`) is denied; names compare case-insensitively,
    /// as IAM compares them.
    pub fn denies(&self, action: &str) -> bool {
        let inner = self.lock();
        inner.denied.iter().any(|d| d.eq_ignore_ascii_case(action))
    }

    /// The simulated KMS (shared: the API answers with it, agents decrypt with it).
    pub fn kms(&self) -> Kms {
        self.lock().kms.clone()
    }

    /// A poisoned lock only means another thread panicked mid-update of plain maps; the data is
    /// still consistent enough for a simulator, so carry on rather than cascade the panic.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn start_session(
        &self,
        req: StartSessionRequest,
    ) -> Result<StartSessionResponse, ApiError> {
        let mut inner = self.lock();
        let inst = inner
            .instances
            .iter()
            .find(|i| i.id == req.target && i.online)
            .cloned()
            // AWS answers an unknown id exactly like an offline one.
            .ok_or_else(|| ApiError::target_not_connected(&req.target))?;
        let custom = |name: &str| inner.documents.session_doc(name);
        let plan = documents::plan(&inst, req.document.as_deref(), &req.parameters, &custom)?;
        inner.forget_oldest_ended();
        if inner.sessions.values().filter(|s| s.end.is_none()).count() >= MAX_OPEN_SESSIONS {
            let msg =
                format!("the simulator allows {MAX_OPEN_SESSIONS} open sessions; terminate some");
            return Err(ApiError::new(kind::QUOTA_EXCEEDED, msg));
        }
        let session_id = loop {
            let id = new_session_id();
            if !inner.sessions.contains_key(&id) {
                break id;
            }
        };
        let token = new_token();
        let (terminate, terminated) = watch::channel(false);
        let Plan {
            session_type,
            properties,
            run,
        } = plan;
        let spec = SessionSpec {
            session_id: session_id.clone(),
            instance_id: inst.id.clone(),
            agent_version: inst.agent_version.clone(),
            session_type,
            properties,
            run,
            terminated,
            first_attach: true,
            kms: inner.kms.clone(),
        };
        let session = Session {
            spec,
            token: None,
            attached_once: false,
            attaches: 0,
            end: None,
            terminate,
            relay: None,
            relay_running: false,
        };
        inner.sessions.insert(
            session_id.clone(),
            Session {
                token: Some(token.clone()),
                ..session
            },
        );
        inner.order.push_back(session_id.clone());
        tracing::debug!(session_id, target = inst.id, "sim: session started");
        let stream_url = inner.stream_url(&session_id);
        Ok(StartSessionResponse {
            session_id,
            token,
            stream_url,
        })
    }

    /// Issues a new token (the previous one stops working) for a session that is still open.
    pub fn resume_session(&self, session_id: &str) -> Result<StartSessionResponse, ApiError> {
        let mut inner = self.lock();
        let stream_url = inner.stream_url(session_id);
        let Some(s) = inner
            .sessions
            .get_mut(session_id)
            .filter(|s| s.end.is_none())
        else {
            let msg = format!("Session with id {session_id} does not exist.");
            return Err(ApiError::new(kind::DOES_NOT_EXIST, msg));
        };
        let token = new_token();
        s.token = Some(token.clone());
        Ok(StartSessionResponse {
            session_id: session_id.to_owned(),
            token,
            stream_url,
        })
    }

    /// Ends a session for good and tells its task; unknown ids are ignored (AWS is idempotent).
    pub fn terminate_session(&self, session_id: &str) {
        let mut inner = self.lock();
        if let Some(s) = inner.sessions.get_mut(session_id) {
            s.token = None;
            if s.end != Some(End::Terminated) {
                s.end = Some(End::Terminated);
                s.terminate.send_replace(true);
                tracing::debug!(session_id, "sim: session terminated");
            }
        }
    }

    /// CreateDocument: the new document's `DocumentDescription`.
    pub fn create_document(&self, req: CreateDocument) -> Result<Value, ApiError> {
        self.lock().documents.create(req)
    }

    /// DescribeDocument: a document's `DocumentDescription`.
    pub fn describe_document(&self, name: &str) -> Result<Value, ApiError> {
        self.lock().documents.describe(name)
    }

    /// GetDocument: a document with its content.
    pub fn get_document(&self, name: &str) -> Result<Value, ApiError> {
        self.lock().documents.get(name)
    }

    /// Instances matching every filter, in definition order.
    pub fn describe(&self, filters: &[Filter]) -> Vec<InstanceInfo> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let inner = self.lock();
        let matching = inner
            .instances
            .iter()
            .filter(|i| filters.iter().all(|f| matches(f, i)));
        matching.map(|i| info(i, now)).collect()
    }

    /// `(instance id, Name tag)` of every named instance, in definition order: what the
    /// tagging API reports (DescribeInstanceInformation shows the tag for `mi-` nodes only).
    pub fn name_tags(&self) -> Vec<(String, String)> {
        let inner = self.lock();
        let named = inner.instances.iter();
        named
            .filter_map(|i| Some((i.id.clone(), i.name.clone()?)))
            .collect()
    }

    /// Called by the WebSocket side when a client presents `token` for `session_id` in its first
    /// frame. Succeeds once per token (a token is consumed by use); returns what the agent needs.
    pub fn attach(&self, session_id: &str, token: &str) -> Result<SessionSpec, AttachError> {
        let mut inner = self.lock();
        let s = inner
            .sessions
            .get_mut(session_id)
            .ok_or(AttachError::UnknownSession)?;
        if s.end.is_some() {
            return Err(AttachError::Terminated);
        }
        if token.is_empty() || s.token.as_deref() != Some(token) {
            return Err(AttachError::BadToken);
        }
        s.token = None;
        let mut spec = s.spec.clone();
        spec.first_attach = !s.attached_once;
        spec.terminated = s.terminate.subscribe();
        s.attached_once = true;
        s.attaches = s.attaches.saturating_add(1);
        Ok(spec)
    }

    /// Records the relay of a session whose first client just attached; returns how many
    /// sessions have had a relay (a salt for the fault plan).
    pub fn start_relay(&self, session_id: &str, relay: RelayHandle) -> usize {
        let mut inner = self.lock();
        if let Some(s) = inner.sessions.get_mut(session_id) {
            s.relay = Some(relay);
            s.relay_running = true;
        }
        inner
            .sessions
            .values()
            .filter(|s| s.relay.is_some())
            .count()
    }

    /// Where a resuming client's WebSocket goes: the running relay of `session_id`.
    pub fn relay_for(&self, session_id: &str) -> Option<mpsc::Sender<WsStream>> {
        let inner = self.lock();
        let s = inner.sessions.get(session_id).filter(|s| s.relay_running)?;
        s.relay.as_ref().map(|r| r.attach.clone())
    }

    /// Counters of every remembered session that had a relay, by session id.
    pub fn stats(&self) -> Vec<SessionStats> {
        let inner = self.lock();
        let mut v: Vec<SessionStats> = inner
            .sessions
            .iter()
            .filter_map(|(id, s)| {
                let r = s.relay.as_ref()?;
                Some(SessionStats {
                    session_id: id.clone(),
                    instance_id: s.spec.instance_id.clone(),
                    open: s.relay_running,
                    client_reconnects: s.attaches.saturating_sub(1),
                    agent: r.status.borrow().stats.clone(),
                    faults: r.faults.lock().map(|f| f.clone()).unwrap_or_default(),
                })
            })
            .collect();
        v.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        v
    }

    /// The WebSocket side reports the session has ended for good (channel_closed sent, its
    /// relay finished).
    pub fn mark_closed(&self, session_id: &str) {
        if let Some(s) = self.lock().sessions.get_mut(session_id) {
            s.token = None;
            s.end.get_or_insert(End::Closed);
            s.relay_running = false;
        }
    }

    /// Sessions started and not closed or terminated.
    pub fn open_session_count(&self) -> usize {
        self.lock()
            .sessions
            .values()
            .filter(|s| s.end.is_none())
            .count()
    }

    /// Every remembered session (open ones and the latest ended ones), oldest first.
    pub fn session_ids(&self) -> Vec<String> {
        self.lock().order.iter().cloned().collect()
    }
}

impl Inner {
    fn stream_url(&self, session_id: &str) -> String {
        format!(
            "{}/v1/data-channel/{session_id}?role=publish_subscribe",
            self.ws_base
        )
    }

    fn forget_oldest_ended(&mut self) {
        let mut ended = self.sessions.values().filter(|s| s.end.is_some()).count();
        let sessions = &mut self.sessions;
        self.order.retain(|id| {
            if ended <= MAX_ENDED_SESSIONS || sessions.get(id).is_some_and(|s| s.end.is_none()) {
                return true;
            }
            sessions.remove(id);
            ended -= 1;
            false
        });
    }
}

/// `<user>-<17 hex digits>`, the shape of real session ids (the user is the IAM caller).
fn new_session_id() -> String {
    let n: u128 = rand::thread_rng().gen::<u128>() & ((1u128 << 68) - 1);
    format!("sim-user-{n:017x}")
}

/// 64 random bytes as 128 hex digits: opaque and within the 300-character limit.
fn new_token() -> String {
    let mut bytes = [0u8; 64];
    rand::thread_rng().fill(bytes.as_mut_slice());
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn info(i: &Instance, now: Duration) -> InstanceInfo {
    // An offline agent last checked in a while ago.
    let last_ping = if i.online {
        now
    } else {
        now.saturating_sub(Duration::from_secs(3600))
    };
    InstanceInfo {
        instance_id: i.id.clone(),
        ping_status: ping_status(i),
        last_ping_date_time: (last_ping.as_millis() as f64) / 1000.0,
        agent_version: i.agent_version.clone(),
        is_latest_version: true,
        platform_type: "Linux",
        resource_type: resource_type(i),
        ip_address: i.ip_address.clone(),
        computer_name: i.computer_name.clone(),
        name: i.name.clone().filter(|_| i.id.starts_with("mi-")),
    }
}

fn ping_status(i: &Instance) -> &'static str {
    if i.online {
        "Online"
    } else {
        "ConnectionLost"
    }
}

fn resource_type(i: &Instance) -> &'static str {
    if i.id.starts_with("mi-") {
        "ManagedInstance"
    } else {
        "EC2Instance"
    }
}

fn matches(f: &Filter, i: &Instance) -> bool {
    let any = |v: &str| f.values.iter().any(|x| x == v);
    match f.key.as_str() {
        "InstanceIds" => any(&i.id),
        "PingStatus" => any(ping_status(i)),
        "AgentVersion" => any(&i.agent_version),
        "PlatformTypes" => any("Linux"),
        "ResourceType" => any(resource_type(i)),
        "tag:Name" => i.name.as_deref().is_some_and(any),
        "tag-key" => i.name.is_some() && any("Name"),
        // Other tags, IamRole, ActivationIds, AssociationStatus: simulated instances have none.
        _ => false,
    }
}

#[cfg(test)]
mod tests;
