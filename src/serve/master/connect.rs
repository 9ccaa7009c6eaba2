//! \[shell\] `connect <upstream>`: (re)starts a pool and reports its progress until it is up,
//! gives up on an error that will not fix itself, or the connect timeout passes.
//!
//! Progress goes out when the pool's state or last error changes, not on a timer, so a
//! non-terminal client prints one line per change; a heartbeat repeats the current line every
//! few seconds (the client prints a repeat only on a terminal, as a new elapsed time).

use std::time::{Duration, Instant};

use super::Master;
use crate::control::proto::{ErrorKind, Response};
use crate::control::server::Exchange;
use crate::exit::{self, codes};
use crate::upstream::{PoolState, PoolStatus, UpstreamError, UpstreamHandle};

/// How often the pool is looked at for a change worth reporting.
const POLL: Duration = Duration::from_millis(200);
/// The current line is sent again after this long without a change: it keeps the client's
/// per-answer timeout from firing, refreshes the elapsed time a terminal shows, and lets a
/// failed send notice a client that went away (which frees the admin lock).
const HEARTBEAT: Duration = Duration::from_secs(2);

impl Master {
    pub(super) async fn connect(&self, name: &str, ex: &mut Exchange) -> Response {
        let _admin = self.admin.lock().await;
        let Some(pool) = self.startable_pool(name).await else {
            return self.unknown_upstream(name).await;
        };
        if let UpstreamHandle::Port(p) = &pool {
            let per = p.sessions_per_destination();
            return Response::Done {
                lines: vec![format!(
                    "upstream {name} (kind: ssm-port) is ready: each destination gets {per} port session(s) on its first connection"
                )],
            };
        }
        let started = Instant::now();
        pool.start();
        ex.send(&Response::Progress {
            message: format!(
                "connecting upstream {name} ({} connections)",
                pool.pool_size()
            ),
        })
        .await;
        let wait = pool.wait_ready(self.opts.connect_timeout);
        tokio::pin!(wait);
        let mut tick = tokio::time::interval(POLL);
        let (mut last, mut sent_at) = (String::new(), Instant::now());
        let result = loop {
            tokio::select! {
                r = &mut wait => break r,
                _ = tick.tick() => {
                    let line = progress_line(name, &pool.snapshot());
                    if line != last || sent_at.elapsed() >= HEARTBEAT {
                        let sent = ex.send(&Response::Progress { message: line.clone() }).await;
                        if !sent {
                            // The client went away (Ctrl-C): stop holding the admin lock.
                            return Response::error(ErrorKind::Failed, "the client went away");
                        }
                        (last, sent_at) = (line, Instant::now());
                    }
                }
            }
        };
        let took = started.elapsed().as_secs_f64();
        match result {
            Ok(()) => {
                let s = pool.snapshot();
                Response::Done {
                    lines: vec![format!(
                        "upstream {name} is {}: {}/{} connections up ({}) after {took:.1}s",
                        s.state,
                        s.connections_up,
                        s.connections_total,
                        s.instances.join(", ")
                    )],
                }
            }
            Err(e) => failure(e),
        }
    }

    /// The pool called `name`, rebuilt from its settings when it cannot start again: stopped
    /// by `disconnect`, or given up on an error the user may since have fixed.
    async fn startable_pool(&self, name: &str) -> Option<UpstreamHandle> {
        let pool = self.upstreams.read().await.get(name)?;
        if pool.snapshot().state != PoolState::Stopped && !pool.gave_up() {
            return Some(pool);
        }
        let cfg = pool.config().clone();
        let mut ups = self.upstreams.write().await;
        // The old pool's tasks have ended; dropping it is all that is left to do. Its config
        // ran as a pool before, so it is one a pool can run again.
        ups.replace(cfg, &self.opts).ok()?;
        ups.get(name)
    }

    /// The answer to a request naming an upstream that is not configured: which ones are.
    pub(super) async fn unknown_upstream(&self, name: &str) -> Response {
        let ups = self.upstreams.read().await;
        let known: Vec<&str> = ups.names().collect();
        let listed = if known.is_empty() {
            "no upstreams are configured".to_owned()
        } else {
            format!("configured: {}", known.join(", "))
        };
        Response::error(
            ErrorKind::UnknownUpstream,
            format!("unknown upstream \"{name}\" ({listed})"),
        )
    }
}

/// One progress line: state, connections up, and the most recent error.
fn progress_line(name: &str, s: &PoolStatus) -> String {
    let mut line = format!(
        "upstream {name}: {}, {}/{} connections up",
        s.state, s.connections_up, s.connections_total
    );
    if let Some(e) = &s.last_error {
        line.push_str("; last error: ");
        line.push_str(e);
    }
    line
}

/// The error answer; refused credentials or keys keep their exit code (77) at the client.
fn failure(e: UpstreamError) -> Response {
    let e = anyhow::Error::from(e);
    let kind = match exit::code_for(&e) {
        codes::NO_PERM => ErrorKind::PermissionDenied,
        _ => ErrorKind::Failed,
    };
    Response::error(kind, exit::render(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_names_state_connections_and_last_error() {
        let mut s = crate::upstream::Pool::new(
            crate::config::Upstream {
                name: "u".into(),
                targets: vec![crate::config::Target::InstanceId(
                    "i-0123456789abcdef0".into(),
                )],
                profile: None,
                region: None,
                credentials: None,
                kind: crate::config::UpstreamKind::Ssh(crate::config::SshUpstream {
                    user: "ec2-user".into(),
                    identity_files: vec![],
                    ssh_agent: true,
                    instance_connect: false,
                    port: 22,
                    pool_size: std::num::NonZeroUsize::MIN,
                    host_key_policy: crate::config::HostKeyPolicy::AcceptNew,
                    lazy: true,
                    keepalive: None,
                }),
            },
            crate::upstream::PoolOptions::new(std::path::Path::new("/nonexistent")),
        )
        .unwrap()
        .snapshot();
        assert_eq!(
            progress_line("u", &s),
            "upstream u: idle, 0/1 connections up"
        );
        s.last_error = Some("boom".into());
        assert!(progress_line("u", &s).ends_with("; last error: boom"));
    }
}
