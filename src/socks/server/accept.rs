//! The accept loop: takes clients off a listener, hands each to a connection task, and keeps
//! going through accept errors. Generic over [`Accept`] so tests can script a listener that
//! fails (EMFILE) without exhausting the test process's descriptors.

use std::future::Future;
use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use super::{log_join, BoxedStream, Server};

/// A source of client streams, with a peer label for the logs.
pub(super) trait Accept {
    fn accept(&self) -> impl Future<Output = io::Result<(BoxedStream, String)>> + Send;
}

/// A bound listener of either kind, for [`Server::serve_until`].
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
    /// A Unix socket whose file this process created: the file goes when the listener closes.
    OwnedUnix(UnixListener, crate::paths::SocketFile),
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        Self::Tcp(l)
    }
}

impl From<UnixListener> for Listener {
    fn from(l: UnixListener) -> Self {
        Self::Unix(l)
    }
}

impl Accept for Listener {
    async fn accept(&self) -> io::Result<(BoxedStream, String)> {
        match self {
            Self::Tcp(l) => {
                let (stream, peer) = l.accept().await?;
                // Latency over batching: SSH keystrokes go through here.
                let _ = stream.set_nodelay(true);
                Ok((Box::new(stream), peer.to_string()))
            }
            Self::Unix(l) | Self::OwnedUnix(l, _) => {
                let (stream, _) = l.accept().await?;
                Ok((Box::new(stream), "unix".to_owned()))
            }
        }
    }
}

impl Server {
    /// Accepts until `shutdown` resolves. Every client is accepted at once: under the cap it
    /// gets a connection task, over it a quick REP 0x01 ([`Server::refuse`]), so nobody waits
    /// unanswered in the kernel backlog. Accept errors pause the loop ([`AcceptBackoff`]).
    pub(super) async fn accept_loop(
        &self,
        listener: &impl Accept,
        shutdown: impl Future<Output = ()>,
        tasks: &mut JoinSet<()>,
    ) {
        tokio::pin!(shutdown);
        let mut backoff = AcceptBackoff::default();
        loop {
            let accepted = tokio::select! {
                biased;
                () = &mut shutdown => break,
                res = listener.accept() => res,
            };
            match accepted {
                Ok((stream, peer)) => self.on_accepted(stream, &peer, tasks),
                Err(e) => {
                    let pause = backoff.on_error(Instant::now());
                    log_accept_error(&e, &pause);
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(pause.delay) => {}
                    }
                }
            }
        }
    }

    fn on_accepted(&self, stream: BoxedStream, peer: &str, tasks: &mut JoinSet<()>) {
        while let Some(done) = tasks.try_join_next() {
            log_join(done);
        }
        let inner = &self.inner;
        inner.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("socks", %peer);
        let this = self.clone();
        match inner.slots.try_take() {
            Ok(slot) => {
                let peer = peer.to_owned();
                tasks.spawn(
                    async move {
                        let _slot = slot;
                        this.serve_client(stream, &peer).await;
                    }
                    .instrument(span),
                );
            }
            Err(full) => {
                inner.stats.over_cap.fetch_add(1, Ordering::Relaxed);
                if full.first {
                    tracing::warn!(
                        "socks: connection cap reached ({} open); new clients are refused (SOCKS REP 0x01, HTTP 503) until some close; raise max_connections for this listener, or set idle_timeout_secs to close idle tunnels",
                        full.max
                    );
                }
                // Past MAX_REFUSALS answers in flight the client is just closed (dropped).
                if let Ok(permit) = inner.refusals.clone().try_acquire_owned() {
                    let peer = peer.to_owned();
                    tasks.spawn(
                        async move {
                            let _permit = permit;
                            this.refuse(stream, &peer).await;
                        }
                        .instrument(span),
                    );
                }
            }
        }
    }
}

fn log_accept_error(e: &io::Error, pause: &Pause) {
    let delay = pause.delay;
    match pause.report {
        Report::First => tracing::warn!(
            error = %e,
            "socks: accept failed; pausing accepts {delay:?}, longer while it lasts (out of file descriptors? raise `ulimit -n` or lower max_connections)"
        ),
        Report::Again { failures } => tracing::warn!(
            error = %e,
            "socks: accept still failing ({failures} failures since the last report); pausing {delay:?}"
        ),
        Report::Quiet => tracing::debug!(error = %e, "socks: accept failed; pausing {delay:?}"),
    }
}

/// First pause after an accept error.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
/// Longest pause between accepts while errors go on.
const MAX_PAUSE: Duration = Duration::from_secs(2);
/// An error this long after the previous one starts a new episode (first pause, logged).
const CALM: Duration = Duration::from_secs(10);
/// While errors go on, one summary line at most this often.
const REPORT_EVERY: Duration = Duration::from_secs(30);

/// \[core\] How long to pause after an accept error, and whether to log it. Out of file
/// descriptors, accepts fail and succeed in turn (each closed connection lets one more in), so
/// a success does not reset the pause: only [`CALM`] without errors does. The pause doubles
/// from [`FIRST_PAUSE`] to [`MAX_PAUSE`]; the first error of an episode is logged, then one
/// summary per [`REPORT_EVERY`].
#[derive(Debug, Default)]
pub(super) struct AcceptBackoff {
    pause: Duration,
    last_error: Option<Instant>,
    last_report: Option<Instant>,
    unreported: u64,
}

/// What to do after one accept error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pause {
    pub(super) delay: Duration,
    pub(super) report: Report,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Report {
    /// First error of an episode: log it with the likely cause.
    First,
    /// A summary of the errors since the last line.
    Again { failures: u64 },
    /// Not worth a line of its own (debug only).
    Quiet,
}

impl AcceptBackoff {
    pub(super) fn on_error(&mut self, now: Instant) -> Pause {
        let calm = self
            .last_error
            .is_none_or(|t| now.saturating_duration_since(t) >= CALM);
        self.last_error = Some(now);
        if calm {
            self.pause = FIRST_PAUSE;
            self.last_report = Some(now);
            self.unreported = 0;
            return Pause {
                delay: self.pause,
                report: Report::First,
            };
        }
        self.pause = (self.pause * 2).clamp(FIRST_PAUSE, MAX_PAUSE);
        self.unreported += 1;
        let due = self
            .last_report
            .is_none_or(|t| now.saturating_duration_since(t) >= REPORT_EVERY);
        let report = if due {
            self.last_report = Some(now);
            Report::Again {
                failures: std::mem::take(&mut self.unreported),
            }
        } else {
            Report::Quiet
        };
        Pause {
            delay: self.pause,
            report,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds errors as the loop would (each after the previous pause, plus `gap`) for `span`.
    fn run(span: Duration, gap: Duration) -> Vec<Pause> {
        let start = Instant::now();
        let mut b = AcceptBackoff::default();
        let mut now = start;
        let mut out = Vec::new();
        while now < start + span {
            let p = b.on_error(now);
            now += p.delay + gap;
            out.push(p);
        }
        out
    }

    #[test]
    fn pauses_double_up_to_the_cap_while_errors_go_on() {
        let pauses = run(Duration::from_secs(10), Duration::ZERO);
        let ms: Vec<u128> = pauses.iter().map(|p| p.delay.as_millis()).collect();
        assert_eq!(
            ms.get(..8),
            Some(&[50, 100, 200, 400, 800, 1600, 2000, 2000][..])
        );
    }

    #[test]
    fn forty_seconds_of_failing_accepts_cost_two_log_lines() {
        // Successful accepts in between (the `gap`) do not restart the schedule.
        let pauses = run(Duration::from_secs(40), Duration::from_millis(1));
        let logged: Vec<Report> = pauses
            .iter()
            .map(|p| p.report)
            .filter(|r| *r != Report::Quiet)
            .collect();
        assert!(pauses.len() < 30, "{} errors in 40 s", pauses.len());
        assert_eq!(logged.len(), 2, "{logged:?}");
        assert_eq!(logged.first(), Some(&Report::First));
        assert!(matches!(logged.get(1), Some(Report::Again { failures }) if *failures > 10));
    }

    #[test]
    fn a_calm_spell_starts_a_new_logged_episode_at_the_first_pause() {
        let t0 = Instant::now();
        let mut b = AcceptBackoff::default();
        for i in 0..6 {
            b.on_error(t0 + Duration::from_millis(i * 500));
        }
        let later = b.on_error(t0 + Duration::from_secs(30));
        assert_eq!(
            later,
            Pause {
                delay: FIRST_PAUSE,
                report: Report::First
            }
        );
    }
}
