//! \[shell\] `connect NAME` / `disconnect NAME` when NAME is a forward rather than an upstream:
//! disconnect stops the forward's listener and terminates its sessions; connect starts it
//! again (on a fresh bind), or restarts a running one (e.g. one whose instance was not found).
//! Upstream names are looked up first; they cannot look like a forward's listen address.

use super::{lock, Master};
use crate::control::proto::{ErrorKind, Response};
use crate::control::server::Exchange;
use crate::serve::forwards::{self, ForwardContext, Lookup};

/// What a name given to `connect`/`disconnect` picks.
enum Named {
    Upstream,
    Forward(usize),
    /// Refused: the error to answer with.
    Answer(ErrorKind, String),
}

impl Master {
    /// What every forward shares with this master.
    pub(super) fn forward_context(&self) -> ForwardContext {
        ForwardContext {
            upstreams: self.upstreams.clone(),
            endpoint_url: self.opts.endpoint_url.clone(),
            proxy: self.opts.proxy.clone(),
            phase: self.phase.subscribe(),
        }
    }

    async fn named(&self, name: &str) -> Named {
        if self.upstreams.read().await.get(name).is_some() {
            return Named::Upstream;
        }
        let (found, names) = {
            let set = lock(&self.forwards);
            (set.find(name), set.names())
        };
        match found {
            Lookup::Found(i) => Named::Forward(i),
            Lookup::Ambiguous(why) => Named::Answer(ErrorKind::Failed, why),
            Lookup::NotFound if names.is_empty() => Named::Upstream,
            Lookup::NotFound => {
                let ups: Vec<String> = self
                    .upstreams
                    .read()
                    .await
                    .names()
                    .map(str::to_owned)
                    .collect();
                let ups = if ups.is_empty() {
                    "none".to_owned()
                } else {
                    ups.join(", ")
                };
                Named::Answer(
                    ErrorKind::UnknownUpstream,
                    format!(
                        "unknown upstream or forward \"{name}\" (upstreams: {ups}; forwards: {})",
                        names.join(", ")
                    ),
                )
            }
        }
    }

    /// `connect NAME`: an upstream's pool, or a forward.
    pub(super) async fn connect_named(&self, name: &str, ex: &mut Exchange) -> Response {
        let i = match self.named(name).await {
            Named::Upstream => return self.connect(name, ex).await,
            Named::Answer(kind, why) => return Response::error(kind, why),
            Named::Forward(i) => i,
        };
        let _admin = self.admin.lock().await;
        let label = lock(&self.forwards).name(i).unwrap_or_default();
        match forwards::restart(&self.forwards, i, &self.forward_context()).await {
            Ok(address) => Response::Done {
                lines: vec![format!(
                    "forward {label} started, listening on {address}; `session-proxy status` shows its sessions"
                )],
            },
            Err(e) => Response::error(ErrorKind::Failed, e.to_string()),
        }
    }

    /// `disconnect NAME`: an upstream's pool, or a forward.
    pub(super) async fn disconnect_named(&self, name: &str) -> Response {
        let i = match self.named(name).await {
            Named::Upstream => return self.disconnect(name).await,
            Named::Answer(kind, why) => return Response::error(kind, why),
            Named::Forward(i) => i,
        };
        let _admin = self.admin.lock().await;
        let label = lock(&self.forwards).name(i).unwrap_or_default();
        let was_running = forwards::stop(&self.forwards, i).await.is_some();
        let what = if was_running {
            "stopped (listener closed, its SSM sessions terminated)"
        } else {
            "was not running"
        };
        Response::Done {
            lines: vec![format!(
                "forward {label} {what}; `session-proxy connect {label}` starts it again"
            )],
        }
    }
}
