//! One slot's life: connect, serve until the connection dies (or the slot is retired by a
//! resize), back off, reconnect elsewhere; and closing a connection cleanly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{resize, state, unit, Bastion, Conn, ConnectError, Inner, Session};

/// Resolves when the SSM session's driver has stopped (its status sender is dropped).
async fn session_ended(session: &Session) {
    let mut rx = session.status();
    while rx.changed().await.is_ok() {}
}

async fn close(conn: &Conn, session: Session, limit: Duration) {
    let _ = tokio::time::timeout(limit, conn.ssh.disconnect()).await;
    session.request_stop().await;
    if tokio::time::timeout(limit, session.finish()).await.is_err() {
        tracing::debug!(
            "session {} did not finish within {limit:?}",
            conn.session_id
        );
    }
}

/// One slot's life: connect, serve until the connection dies, back off, reconnect elsewhere.
pub(super) async fn run_slot(inner: Arc<Inner>, index: usize) {
    let mut stop = inner.stop.subscribe();
    loop {
        if *stop.borrow() {
            break;
        }
        if inner.retire_if_surplus(index) {
            // The entry is no longer this task's: it may be trimmed or reused already.
            return;
        }
        let Some(target_index) = inner.update(index, |e| {
            e.slot.on_connecting();
            e.slot.target
        }) else {
            break;
        };
        let Some(target_name) = inner.cfg.targets.get(target_index).cloned() else {
            break;
        };
        // Subscribed before the attempt, so a client's nudge during it is not lost.
        let mut nudges = inner.retry_credentials.subscribe();
        let attempt = tokio::time::timeout(
            inner.opts.connect_timeout,
            inner.connect(index, target_name.as_str()),
        );
        // Stopping abandons a connect in progress: waiting for it could hold shutdown for the
        // whole connect timeout. A session started by it expires on the service side.
        let result = tokio::select! {
            r = attempt => r,
            _ = stop.wait_for(|s| *s) => break,
            () = inner.surplus(index) => continue,
        };
        let delay = match result {
            Ok(Ok(bastion)) => match serve(&inner, index, bastion, &mut stop).await {
                Some(delay) => delay,
                // Stopped or retired: the top of the loop tells which.
                None => continue,
            },
            Ok(Err(e)) => inner.connect_failed(index, target_name.as_str(), e),
            Err(_) => {
                let e = ConnectError::Timeout {
                    target: target_name.to_string(),
                    after: inner.opts.connect_timeout,
                };
                inner.connect_failed(index, target_name.as_str(), e)
            }
        };
        let Some(delay) = delay else { break };
        let awaits_credentials = super::lock(&inner.slots)
            .get(index)
            .is_some_and(|e| e.slot.awaits_credentials());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            Ok(()) = nudges.changed(), if awaits_credentials => {}
            _ = stop.wait_for(|s| *s) => break,
            () = inner.surplus(index) => {}
        }
    }
    inner.update(index, |e| {
        // A slot that gave up keeps saying so (and why) in `status`.
        if e.slot.phase != state::Phase::Failed {
            e.slot.on_stopped();
        }
        e.conn = None;
    });
}

/// Serves on a fresh connection until it is lost (`Some(backoff)`), or until the pool stops or
/// retires the slot (`None`).
async fn serve(
    inner: &Arc<Inner>,
    index: usize,
    Bastion { session, ssh }: Bastion,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<Option<Duration>> {
    let name = &inner.cfg.name;
    let instance = ssh.instance().to_owned();
    let conn = Arc::new(Conn::new(ssh, session.session_id.clone(), session.status()));
    inner.update(index, |e| {
        e.conn = Some(conn.clone());
        e.failure = None;
        e.slot.on_up(Instant::now());
    });
    tracing::info!(upstream = %name, "connection {index} up via {instance} (session {})", conn.session_id);
    let why = tokio::select! {
        w = conn.ssh.closed() => Some(w),
        _ = session_ended(&session) => Some("SSM session ended".to_owned()),
        _ = stop.wait_for(|s| *s) => None,
        () = resize::surplus_drained(inner, &conn, index) => None,
    };
    inner.update(index, |e| e.conn = None);
    close(&conn, session, inner.opts.close_timeout).await;
    inner.totals.retire(&conn);
    let why = format!("connection to {instance} lost: {}", why?);
    tracing::warn!(upstream = %name, "connection {index}: {why}; reconnecting");
    let policy = inner.opts.backoff;
    Some(inner.update(index, |e| {
        e.failure = None;
        e.slot.on_lost(Instant::now(), why, &policy, unit())
    }))
}
