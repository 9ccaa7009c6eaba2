//! `exec <target> -- <command…>`: one remote command with its output on stdout (and stderr),
//! and its exit status as ours. What the real agent allows decides the modes (§8, §12): only
//! a separate-output document reports stderr and the status; with AWS's
//! `AWS-StartNonInteractiveCommand` the command is wrapped in `sh -c` with an end marker that
//! carries `$?`; stdin reaches a command only through a pty (`-i`, `-t`).

mod install;
mod plan;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use super::GlobalArgs;
use crate::exec::exit_code::{process_code, ExitCodeError};
use crate::exec::layer::{Control, ExecLayer, Input, Outcome, Output};
use crate::exec::marker::MarkerFilter;
use crate::exec::stdin_frame::StdinFramer;
use crate::exit::StdoutError;
use crate::shell::terminal::{self, RawMode};
use crate::ssm::api::{ApiError, SsmApi};
use crate::ssm::session::{OpenError, Session, SessionOptions};
use crate::ssm::target;
use plan::{Plan, Request, Status, Stdin};

/// The limits `--help` states (the real agent's, not ours).
const LIMITS: &str = "\
Limits of Session Manager (what the real agent does):
  With AWS's AWS-StartNonInteractiveCommand the agent runs the command without a shell, merges
  stderr into stdout and reports no exit status. exec therefore runs it as `sh -c` with an end
  marker that carries $? (stripped from the output), so the exit status is the command's;
  stdout and stderr stay merged. --raw sends the command as is (no shell, status unknown: exit 0).
  A separate-output document (--document, or exec.document in the config; create one with
  --install-document) gives separate stdout and stderr and the exit status from the agent.
  The agent gives a non-interactive command no stdin: stdin is not read (like ssh -n) unless -i
  or -t run the command in a pty (AWS-StartInteractiveCommand), where -i sends stdin framed
  (base64 lines, decoded on the target by sed and base64 -d) and delivers EOF exactly. In a pty,
  stdout and stderr are merged.
  Ctrl-C interrupts the remote command; SIGTERM and SIGHUP end the session (exit 128+signal).
  Exit status: the remote command's (a status outside 0-255 exits 255).";

#[derive(Debug, Clone, Args)]
#[command(after_long_help = LIMITS)]
pub struct ExecArgs {
    /// Instance id (i-…, mi-…), Name tag, IP address, computer name, or a `hosts:` alias.
    #[arg(required_unless_present = "install_document")]
    pub target: Option<String>,
    /// The command, after `--`: its words are joined with spaces and run by `sh -c` on the
    /// target, as `ssh host cmd…` does.
    #[arg(
        last = true,
        value_name = "COMMAND",
        required_unless_present = "install_document"
    )]
    pub command: Vec<String>,
    /// A separate-output session document (see --install-document); default: the config's
    /// exec.document, else AWS-StartNonInteractiveCommand (merged output, wrapped).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["tty", "stdin"])]
    pub document: Option<String>,
    /// Send the command as is: no `sh -c`, no end marker (exit status unknown: exit 0).
    #[arg(long, conflicts_with = "stdin")]
    pub raw: bool,
    /// Run the command in a pty on the target (AWS-StartInteractiveCommand), stdin as typed.
    #[arg(short = 't', long = "tty", conflicts_with = "stdin")]
    pub tty: bool,
    /// Forward stdin to the command, with EOF (like `docker exec -i`; the command runs in a
    /// pty, stdout and stderr merged).
    #[arg(short = 'i', long = "stdin")]
    pub stdin: bool,
    /// Create the separate-output session document NAME [default: SessionProxy-Exec] in the
    /// account (ssm:CreateDocument), or confirm it is there, and say how to use it.
    #[arg(long, value_name = "NAME", num_args = 0..=1,
          default_missing_value = crate::exec::document::DEFAULT_NAME,
          conflicts_with_all = ["target", "document", "raw", "tty", "stdin"])]
    pub install_document: Option<String>,
    /// AWS profile (default: the alias's, else AWS_PROFILE or the default profile).
    #[arg(long)]
    pub profile: Option<String>,
    /// AWS region (default: the alias's, else AWS_REGION or the profile's region).
    #[arg(long)]
    pub region: Option<String>,
}

/// Why `exec` failed after its session started, or could not install its document.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("a different session document named {name} already exists in this account and region; pick another name: --install-document OTHER-NAME")]
    DocumentConflict { name: String },
    #[error("starting the command on {instance} with session document {document}{hint}")]
    Start {
        instance: String,
        document: String,
        hint: &'static str,
        #[source]
        source: OpenError,
    },
    #[error("the remote command ended without reporting its exit status (it replaced or killed the wrapper shell, or the session was cut); use --raw to accept that")]
    StatusLost,
    #[error(transparent)]
    BadExitCode(ExitCodeError),
}

pub async fn run(g: &GlobalArgs, a: ExecArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load::optional(g)?;
    let dest = super::alias::destination(
        cfg.as_ref(),
        a.target.as_deref().unwrap_or_default(),
        a.profile.as_deref(),
        a.region.as_deref(),
    );
    let api = Arc::new(SsmApi::new(&dest.settings).await);
    if let Some(name) = &a.install_document {
        let line = install::install(&api, name).await?;
        println!("{line}");
        eprintln!("{}", crate::exec::document::usage(name));
        return Ok(ExitCode::SUCCESS);
    }
    let name = dest.name;
    let instance = target::resolve(&api, &name).await?;
    let document = a
        .document
        .clone()
        .or_else(|| cfg.as_ref().and_then(|c| c.exec_document.clone()))
        .filter(|_| !a.tty && !a.stdin);
    if let Some(d) = &document {
        crate::exec::document::check_name(d).map_err(crate::exit::UsageError::Usage)?;
    }
    let req = Request {
        words: a.command.clone(),
        // Only a wrapped command needs a POSIX `sh` on the target.
        posix: a.raw || is_posix(&api, &instance, g.quiet).await,
        document,
        raw: a.raw,
        tty: a.tty,
        stdin: a.stdin,
        size: (a.tty && terminal::stdin_is_tty())
            .then(terminal::size)
            .and_then(Result::ok),
    };
    let plan = Plan::new(&req);
    if plan.merged && plan.stdin == Stdin::None && !g.quiet {
        eprintln!("session-proxy: stdout and stderr are merged into stdout; for separate streams and the agent's own exit status, install a document once with `session-proxy exec --install-document` and use --document SessionProxy-Exec (or exec.document in the config)");
    }
    execute(g, &api, &instance, &plan).await
}

/// False when the target reports a platform other than Linux (no POSIX `sh` to wrap in);
/// true when it is Linux or cannot be asked.
async fn is_posix(api: &SsmApi, instance: &str, quiet: bool) -> bool {
    match api.platform(instance).await {
        Ok(Some(p)) if p != "Linux" => {
            if !quiet {
                eprintln!("session-proxy: {instance} runs {p}, not Linux: the command is sent as is, without `sh -c` (like --raw)");
            }
            false
        }
        Ok(_) => true,
        Err(e) => {
            tracing::debug!("platform of {instance} unknown ({e}); assuming Linux");
            true
        }
    }
}

/// The layer's stdin and output side for `plan`.
fn layer_parts(plan: &Plan) -> (Input, Output) {
    let input = match plan.stdin {
        Stdin::None => Input::None,
        Stdin::Raw => Input::Raw(Box::pin(tokio::io::stdin())),
        Stdin::Framed => Input::Framed(Box::pin(tokio::io::stdin()), StdinFramer::new(&plan.token)),
    };
    let output = match plan.status {
        Status::Marker(le) => Output::Marked(MarkerFilter::new(&plan.token, le)),
        Status::Payload | Status::Unknown => Output::Plain,
    };
    (input, output)
}

/// Runs the session of `plan` to its end and turns what it reported into our exit code.
async fn execute(
    g: &GlobalArgs,
    api: &Arc<SsmApi>,
    instance: &str,
    plan: &Plan,
) -> anyhow::Result<ExitCode> {
    let (input, output) = layer_parts(plan);
    let (control_tx, control_rx) = mpsc::channel(8);
    let (outcome_tx, outcome) = watch::channel(Outcome::Unknown);
    let layer = ExecLayer::new(
        input,
        output,
        Box::pin(tokio::io::stdout()),
        Box::pin(tokio::io::stderr()),
        control_rx,
        outcome_tx,
    );
    // Handlers first: from raw mode on, a signal must find them to restore the terminal.
    let mut signals = Signals::install()?;
    let req = plan.request(instance);
    let session = Session::start_layer(api.clone(), &req, layer, SessionOptions::default())
        .await
        .map_err(|source| start_error(instance, &plan.document, source))?;
    tracing::info!(session_id = %session.session_id, "session started");
    let raw = match terminal_for(plan, &control_tx) {
        Ok(raw) => raw,
        Err(e) => {
            session.request_stop().await;
            let _ = session.finish().await;
            return Err(e);
        }
    };
    let ended = wait(&session, plan, &mut signals, &control_tx, outcome.clone()).await;
    let end = session.finish().await;
    drop(raw);
    let result = outcome.borrow().clone();
    if let Ended::Signal(signo) = ended {
        return Ok(ExitCode::from(128 + signo));
    }
    if result == Outcome::StdoutClosed {
        return Err(StdoutError::Closed.into());
    }
    end.context("running the remote command")?;
    if ended == Ended::Interrupted && result == Outcome::Unknown {
        // Ctrl-C killed the wrapper too: the shell's answer to SIGINT.
        return Ok(ExitCode::from(128 + SIGINT));
    }
    exit_code(g, plan, result)
}

const SIGINT: u8 = 2;

/// How the wait for the session's end ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The session closed (or the hang guard after the status closed it).
    Closed,
    /// It closed after Ctrl-C was forwarded.
    Interrupted,
    /// SIGTERM, SIGHUP (or SIGINT with framed stdin) ended it: exit 128+signo.
    Signal(u8),
}

fn start_error(instance: &str, document: &str, source: OpenError) -> ExecError {
    let missing = matches!(&source, OpenError::Api(ApiError::InvalidDocument(_)));
    let hint = if missing && !document.starts_with("AWS-") {
        "; create it with `session-proxy exec --install-document NAME`"
    } else {
        ""
    };
    ExecError::Start {
        instance: instance.to_owned(),
        document: document.to_owned(),
        hint,
        source,
    }
}

/// The signals `exec` handles.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        let on = |k: SignalKind| signal(k).context("installing a signal handler");
        Ok(Self {
            int: on(SignalKind::interrupt())?,
            term: on(SignalKind::terminate())?,
            hup: on(SignalKind::hangup())?,
        })
    }
}

/// `-t` on a terminal: raw mode (keys such as Ctrl-C go to the remote pty as bytes), and the
/// terminal size now and on every SIGWINCH.
fn terminal_for(plan: &Plan, control: &mpsc::Sender<Control>) -> anyhow::Result<Option<RawMode>> {
    if plan.stdin != Stdin::Raw || !terminal::stdin_is_tty() {
        return Ok(None);
    }
    let mut winch = signal(SignalKind::window_change()).context("watching the terminal size")?;
    let raw = RawMode::enable()?;
    let control = control.clone();
    tokio::spawn(async move {
        loop {
            if let Ok((cols, rows)) = terminal::size() {
                if control.send(Control::Size { cols, rows }).await.is_err() {
                    return;
                }
            }
            if winch.recv().await.is_none() {
                return;
            }
        }
    });
    Ok(Some(raw))
}

/// Waits for the session to end, forwarding Ctrl-C.
async fn wait(
    session: &Session,
    plan: &Plan,
    signals: &mut Signals,
    control: &mpsc::Sender<Control>,
    mut outcome: watch::Receiver<Outcome>,
) -> Ended {
    let mut status = session.status();
    let ended = async { while status.changed().await.is_ok() {} };
    tokio::pin!(ended);
    // Once the status is known, the session has this long to close by itself (a hang guard
    // against a background process that keeps the pty open).
    // When stdout's reader is gone, nothing the command still prints can be shown: stop now.
    let exited = async {
        loop {
            let o = outcome.borrow_and_update().clone();
            match o {
                Outcome::Exited(_) => break,
                Outcome::StdoutClosed => return,
                _ => {}
            }
            if outcome.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    };
    tokio::pin!(exited);
    let mut closed = Ended::Closed;
    loop {
        let signo = tokio::select! {
            _ = signals.int.recv() => {
                // Framed stdin has no byte for an interrupt: end the session instead.
                if plan.stdin == Stdin::Framed {
                    libc::SIGINT
                } else {
                    let _ = control.try_send(Control::Interrupt);
                    closed = Ended::Interrupted;
                    continue;
                }
            }
            _ = signals.term.recv() => libc::SIGTERM,
            _ = signals.hup.recv() => libc::SIGHUP,
            _ = &mut exited => {
                session.request_stop().await;
                return closed;
            }
            _ = &mut ended => return closed,
        };
        session.request_stop().await;
        return Ended::Signal(u8::try_from(signo).unwrap_or(0));
    }
}

/// Our exit code from what the session reported.
fn exit_code(g: &GlobalArgs, plan: &Plan, outcome: Outcome) -> anyhow::Result<ExitCode> {
    match outcome {
        Outcome::Exited(n) => Ok(ExitCode::from(process_code(n))),
        Outcome::BadExitCode(e) => Err(ExecError::BadExitCode(e).into()),
        Outcome::Unknown if plan.status == Status::Unknown => {
            if !g.quiet {
                eprintln!("session-proxy: the remote command's exit status is unknown (--raw or a non-Linux target); exiting 0");
            }
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Unknown => Err(ExecError::StatusLost.into()),
        Outcome::StdoutClosed => Err(StdoutError::Closed.into()),
    }
}
