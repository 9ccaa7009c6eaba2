//! `serve`: the multiplexer. Builds upstream pools from the config, connects the eager ones
//! (failing fast when none can), binds the SOCKS5 listeners and serves until shutdown, then
//! closes every pool (TerminateSession on every SSM session).

pub mod connector;
pub mod forwards;
pub mod listeners;
pub mod master;
pub mod route_query;

use std::future::Future;
use std::sync::Arc;

use crate::config::Config;
use crate::control::server::ControlListener;
use crate::upstream::pool::PoolOptions;
use crate::upstream::{UpstreamError, Upstreams};
pub use listeners::Bound;
use master::Master;

/// Why `serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The OS error is part of the message and deliberately not a `source`, so that no
    /// rendering of the error chain prints it twice.
    #[error(
        "cannot listen on {what}: {error}; is another proxy using it? pick another with --listen"
    )]
    Bind { what: String, error: std::io::Error },
    /// A forward's listener could not be bound (`why` carries the OS error, as for `Bind`).
    #[error("cannot start forward {forward}: {why}; free the address or change its listen: under forwards: in the config")]
    ForwardBind { forward: String, why: String },
    /// The pools could not be built (a config the upstream layer refuses).
    #[error(transparent)]
    Upstreams(#[from] UpstreamError),
    /// The detached master (`serve` without `--foreground`) exited before it was ready; the
    /// command exits with the master's code, so both forms of `serve` report failures alike.
    /// `reason` is the master's own one-line error when its log has one, so both forms of
    /// `serve` say the same thing; otherwise the last lines of its log.
    #[error("{reason} (master log: {})", log.display())]
    MasterExited {
        status: std::process::ExitStatus,
        log: std::path::PathBuf,
        reason: String,
    },
    /// Every eager upstream failed to connect. `first` is the first failure (its type picks
    /// the exit code); `summary` lists them all.
    #[error("no upstream could connect: {summary}{hint}")]
    NoUpstream {
        summary: String,
        /// What to check, when the failures do not say it themselves.
        hint: &'static str,
        #[source]
        first: UpstreamError,
    },
}

/// Binds every SOCKS listener and every forward's listener of `cfg`, in config order.
pub async fn bind(cfg: &Config) -> Result<Bound, ServeError> {
    let mut bound = listeners::bind(&cfg.listeners).await?;
    bound.forwards = forwards::bind(&cfg.forwards).await?;
    Ok(bound)
}

/// Builds and starts the pools, waiting (bounded) until each eager upstream has a connection.
pub async fn start_upstreams(cfg: &Config, opts: &PoolOptions) -> Result<Upstreams, ServeError> {
    let ups = Upstreams::new(&cfg.upstreams, opts)?;
    ups.start();
    let mut failures = Vec::new();
    let mut eager = 0;
    for u in cfg
        .upstreams
        .iter()
        .filter(|u| u.ssh().is_some_and(|s| !s.lazy))
    {
        eager += 1;
        if let Some(pool) = ups.get(&u.name) {
            if let Err(e) = pool.wait_ready(opts.connect_timeout).await {
                failures.push(e);
            }
        }
    }
    if eager > 0 && failures.len() == eager {
        let summary = failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        // Errors that gave up already name their fix; timeouts and lost connections do not.
        let hint = if failures
            .iter()
            .all(|f| matches!(f, UpstreamError::GaveUp { .. }))
        {
            ""
        } else {
            "; check the instances, AWS credentials and SSH keys (or mark upstreams lazy: true)"
        };
        let mut all = failures.into_iter();
        if let Some(first) = all.next() {
            ups.shutdown().await;
            return Err(ServeError::NoUpstream {
                summary,
                hint,
                first,
            });
        }
        failures = all.collect();
    }
    for f in failures {
        tracing::warn!("{f}; serving the other upstreams, this one keeps retrying");
    }
    Ok(ups)
}

/// Serves the bound listeners and the control socket until `shutdown` resolves or a `stop`
/// arrives, then drains ([`Master::drain`]: streams in flight finish within the grace period)
/// and closes every pool (TerminateSession for each SSM session). The control socket keeps
/// answering during the drain, so `status` shows it and a second `stop` cuts it short.
/// SIGHUP-style reloads come in through `reload` (each item triggers `Master::reload`).
pub async fn serve(
    bound: Bound,
    master: Arc<Master>,
    control: Option<&ControlListener>,
    mut reload: impl futures_util::Stream<Item = ()> + Unpin + Send,
    shutdown: impl Future<Output = ()> + Send,
) {
    use futures_util::StreamExt;
    master.start_listeners(bound);
    let control_loop = async {
        if let Some(c) = control {
            let handler: Arc<dyn crate::control::server::Handler> = master.clone();
            c.run(handler, master.closing()).await;
        }
    };
    let lifecycle = async {
        let reloads = async {
            while reload.next().await.is_some() {
                match master.reload().await {
                    Ok(lines) => eprintln!("session-proxy: reloaded: {}", lines.join("; ")),
                    Err(e) => eprintln!("session-proxy: {e}"),
                }
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            () = shutdown => {
                master.request_stop();
            }
            () = master.stopped() => {}
            () = reloads => {}
        }
        master.drain().await;
    };
    tokio::join!(control_loop, lifecycle);
    master.upstreams.read().await.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12 point 16: every rendering of a busy-port error names the OS error once.
    #[test]
    fn the_address_in_use_message_names_the_os_error_once() {
        let e = anyhow::Error::from(ServeError::Bind {
            what: "127.0.0.1:1080".into(),
            error: std::io::Error::from_raw_os_error(libc::EADDRINUSE),
        });
        let os = std::io::Error::from_raw_os_error(libc::EADDRINUSE).to_string();
        for text in [
            e.to_string(),
            format!("{e:#}"),
            format!("{e:?}"),
            crate::exit::render(&e),
        ] {
            assert_eq!(text.matches(&os).count(), 1, "{text}");
        }
    }
}
