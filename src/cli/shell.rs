//! `shell <target>`: an interactive shell on an instance, like `aws ssm start-session`, as a
//! direct session (a master's pooled SSH connections are not used: the shell is the agent's).
//!
//! On a terminal, the terminal goes into raw mode for the session and is restored on every
//! way out (see `shell::terminal`); its size is sent at start and on each SIGWINCH. With stdin
//! not a terminal, stdin is piped to the remote shell as is, and its end is the pty's EOF
//! (`shell::input::eof_keys`), so `session-proxy shell host < script` runs the script and ends.
//! The shell's output is the only thing on stdout; notices go to stderr.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use super::GlobalArgs;
use crate::shell::input::{self, Input};
use crate::shell::notice::{Notice, Notices};
use crate::shell::terminal::{self, RawMode};
use crate::shell::ShellLayer;
use crate::ssm::api::{SessionRequest, SsmApi};
use crate::ssm::driver::{End, Status};
use crate::ssm::session::{Session, SessionOptions};
use crate::ssm::target;

/// The document `aws ssm start-session` uses when none is given: the account's shell
/// preferences (Standard_Stream).
pub const DEFAULT_DOCUMENT: &str = "SSM-SessionManagerRunShell";

const AFTER_HELP: &str = "\
A shell is a direct SSM session: it does not go through a running master.
On a terminal, keys (Ctrl-C, Ctrl-Z, Ctrl-\\ included) go to the remote shell and the terminal
size follows the window. Without one (`session-proxy shell i-… < script`), stdin is sent as is
and its end is sent as Ctrl-D, which ends the remote shell; the remote side is still a pty, so
it echoes the script and shows prompts, as `ssh -tt` does.
Exits 0 when the shell ends; 129, 130, 131 or 143 on SIGHUP, SIGINT, SIGQUIT or SIGTERM (the
session is terminated and the terminal restored first).";

#[derive(Debug, Clone, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ShellArgs {
    /// Instance id (i-…, mi-…), Name tag, IP address, computer name, or a `hosts:` alias.
    pub target: String,
    /// Session document (Standard_Stream or InteractiveCommands), e.g.
    /// AWS-StartInteractiveCommand with --parameter command=….
    #[arg(long, default_value = DEFAULT_DOCUMENT, value_name = "NAME")]
    pub document: String,
    /// A parameter of the document; repeat a key to give it a list of values.
    #[arg(long = "parameter", value_name = "KEY=VALUE", value_parser = parse_parameter)]
    pub parameters: Vec<(String, String)>,
    /// AWS profile (default: the alias's, else AWS_PROFILE or the default profile).
    #[arg(long)]
    pub profile: Option<String>,
    /// AWS region (default: AWS_REGION or the profile's region).
    #[arg(long)]
    pub region: Option<String>,
}

fn parse_parameter(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

pub async fn run(g: &GlobalArgs, a: ShellArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load::optional(g)?;
    let dest = super::alias::destination(
        cfg.as_ref(),
        &a.target,
        a.profile.as_deref(),
        a.region.as_deref(),
    );
    let api = Arc::new(SsmApi::new(&dest.settings).await);
    let instance = target::resolve(&api, &dest.name).await?;
    let req = SessionRequest {
        target: instance.clone(),
        document: a.document.clone(),
        parameters: a.parameters.clone(),
    };
    // Handlers first: from raw mode on, a signal must find them to restore the terminal.
    let mut signals = Signals::install()?;
    let (tx, rx) = mpsc::channel(input::QUEUE);
    let layer = ShellLayer::new(rx, tokio::io::stdout(), tokio::io::stderr());
    let session = Session::start_layer(api, &req, layer, SessionOptions::default())
        .await
        .with_context(|| {
            format!(
                "starting a shell on {instance} with document {}",
                a.document
            )
        })?;
    tracing::info!(session_id = %session.session_id, "shell session started");
    let raw = match start_input(tx) {
        Ok(raw) => raw,
        Err(e) => {
            session.request_stop().await;
            let _ = session.finish().await;
            return Err(e);
        }
    };
    let stopped = watch_session(&session, &mut signals).await;
    if stopped.is_some() {
        session.request_stop().await;
    }
    let end = session.finish().await;
    drop(raw);
    if let Some(signo) = stopped {
        return Ok(ExitCode::from(128u8.saturating_add(signo)));
    }
    match end? {
        End::ChannelClosed { output } => say(&Notice::Closed(output)),
        other => tracing::info!("session ended: {other}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Raw mode (on a terminal, with the size watcher) and the stdin reader.
fn start_input(tx: mpsc::Sender<Input>) -> anyhow::Result<Option<RawMode>> {
    let raw = if terminal::stdin_is_tty() {
        let raw = RawMode::enable()?;
        input::spawn_resize_watcher(tx.clone()).context("watching the terminal size")?;
        Some(raw)
    } else {
        None
    };
    input::spawn_stdin_reader(tx).context("starting the stdin reader")?;
    Ok(raw)
}

/// Prints one notice on stderr (in raw mode too).
fn say(n: &Notice) {
    eprint!("{}", terminal::line(&n.to_string()));
}

/// Follows the session until it ends (None) or a signal stops it (Some(signo)), printing
/// notices on the way.
async fn watch_session(session: &Session, signals: &mut Signals) -> Option<u8> {
    let mut status = session.status();
    let mut notices = Notices::default();
    // The driver also reports "disconnected" as it ends; "connection lost" is only said when
    // the session is still there a moment later, i.e. when it is resuming.
    let mut lost_since: Option<tokio::time::Instant> = None;
    loop {
        let lost_deadline = lost_since.map(|t| t + LOST_GRACE);
        tokio::select! {
            signo = signals.recv() => return Some(signo),
            changed = status.changed() => {
                if changed.is_err() {
                    return None;
                }
                let st: Status = status.borrow_and_update().clone();
                for n in notices.observe(&st) {
                    match n {
                        Notice::Lost => lost_since = Some(tokio::time::Instant::now()),
                        Notice::Resumed if lost_since.take().is_some() => {
                            say(&Notice::Lost);
                            say(&n);
                        }
                        n => say(&n),
                    }
                }
            }
            () = sleep_until(lost_deadline) => {
                lost_since = None;
                say(&Notice::Lost);
            }
        }
    }
}

/// How long a disconnect must last before it is announced (the end of a session also reads
/// as a disconnect, for an instant).
const LOST_GRACE: Duration = Duration::from_millis(300);

async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The signals that end a shell: SIGINT only arrives when stdin is not a terminal (raw mode
/// turns Ctrl-C into a byte for the remote side).
struct Signals(Vec<(u8, Signal)>);

impl Signals {
    fn install() -> anyhow::Result<Self> {
        let mut v = vec![];
        for (signo, kind) in [
            (libc::SIGHUP, SignalKind::hangup()),
            (libc::SIGINT, SignalKind::interrupt()),
            (libc::SIGQUIT, SignalKind::quit()),
            (libc::SIGTERM, SignalKind::terminate()),
        ] {
            let s =
                signal(kind).with_context(|| format!("installing a handler for signal {signo}"))?;
            v.push((u8::try_from(signo).unwrap_or(0), s));
        }
        Ok(Self(v))
    }

    /// The number of the next signal received.
    async fn recv(&mut self) -> u8 {
        let waits = self.0.iter_mut().map(|(n, s)| {
            let n = *n;
            Box::pin(async move {
                s.recv().await;
                n
            })
        });
        futures_util::future::select_all(waits).await.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_key_equals_value_and_the_value_may_hold_equals_signs() {
        assert_eq!(
            parse_parameter("command=env A=1 top"),
            Ok(("command".into(), "env A=1 top".into()))
        );
        assert!(parse_parameter("novalue").is_err());
        assert!(parse_parameter("=x").is_err());
    }
}
