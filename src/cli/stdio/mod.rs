//! `stdio <target> [-p PORT]`: the OpenSSH `ProxyCommand`. Starts an `AWS-StartSSHSession`
//! session and bridges stdin/stdout to it byte for byte; nothing but session bytes ever goes to
//! stdout. Ends cleanly: stdin EOF keeps delivering output until the service closes the
//! channel; signals send TerminateSession; the session is always terminated on the way out.
//!
//! When a master (`serve`) is running and routes the host to an upstream (or the host names an
//! upstream), the stream goes through the master's pooled SSH connection instead: no new SSM
//! session, so the connection starts at once. Instance ids never take that path.

mod pipe;
mod send_key;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use super::GlobalArgs;
use crate::config::Target;
use crate::control::ControlError;
use crate::control::{self, client::Client, proto::ErrorKind, proto::Request, proto::Response};
use crate::exit::StdoutError;
use crate::ssm::api::{SessionRequest, SsmApi};
use crate::ssm::driver::{End, Status};
use crate::ssm::session::{Session, SessionOptions};
use crate::ssm::target;

#[derive(Debug, Clone, Args)]
pub struct StdioArgs {
    /// Instance id (i-…, mi-…), Name tag, IP address, computer name, or a `hosts:` alias.
    pub target: String,
    /// Port on the instance (portNumber of the session document). Default: the alias's port,
    /// else 22.
    #[arg(short, long)]
    pub port: Option<u16>,
    /// AWS profile (default: the alias's, else AWS_PROFILE or the default profile).
    #[arg(long)]
    pub profile: Option<String>,
    /// AWS region (default: AWS_REGION or the profile's region).
    #[arg(long)]
    pub region: Option<String>,
    /// Session document.
    #[arg(long, default_value = "AWS-StartSSHSession")]
    pub document: String,
    /// Bytes per outgoing data-channel message (a tuning knob for benchmarks, hidden from
    /// `--help`: the agent's own limit is what matters to users).
    #[arg(long, hide = true, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub chunk: u32,
    /// Push a public key with EC2 Instance Connect (SendSSHPublicKey) before connecting, so
    /// the instance accepts it for 60 s. Default key: the first of ~/.ssh/id_ed25519.pub,
    /// id_ecdsa.pub, id_rsa.pub, else the first ssh-agent key. EC2 instances (i-…) only;
    /// always opens its own session (never through a master).
    #[arg(long, value_name = "PUBKEY_FILE", num_args = 0..=1, require_equals = true)]
    pub send_key: Option<Option<std::path::PathBuf>>,
    /// The OS user the pushed key is for: pass ssh's login (`--os-user %r` in a
    /// ProxyCommand). Default: ec2-user.
    #[arg(long, value_name = "USER", requires = "send_key")]
    pub os_user: Option<String>,
}

pub async fn run(g: &GlobalArgs, a: StdioArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load::optional(g)?;
    // A `hosts:` alias supplies target, profile, region and port; flags still win.
    let dest = super::alias::destination(
        cfg.as_ref(),
        &a.target,
        a.profile.as_deref(),
        a.region.as_deref(),
    );
    let (name, port) = (dest.name, a.port.or(dest.alias_port).unwrap_or(22));
    // A pushed key is for the instance this process connects to, not for a master's bastion.
    let direct =
        a.send_key.is_some() || matches!(name.parse::<Target>(), Ok(Target::InstanceId(_)));
    if !direct {
        let socket = control::socket_path(
            g.control_socket.as_deref(),
            cfg.as_ref().and_then(|c| c.control_socket.as_deref()),
        );
        if let Some(code) = via_master(&socket, &name, port).await? {
            return Ok(code);
        }
    }
    let settings = dest.settings;
    let api = Arc::new(SsmApi::new(&settings).await);
    let instance = target::resolve(&api, &name).await?;
    if let Some(file) = &a.send_key {
        let user = a.os_user.as_deref().unwrap_or(send_key::DEFAULT_OS_USER);
        send_key::push(&settings, &instance, user, file.as_deref()).await?;
    }
    let mut req = SessionRequest::ssh(&instance, port);
    req.document = a.document.clone();
    let mut opts = SessionOptions::default();
    opts.channel.chunk_size = a.chunk as usize;
    let app = tokio::io::join(pipe::stdin(), pipe::stdout());
    let session = Session::start(api, &req, app, opts)
        .await
        .with_context(|| format!("starting a session to {instance} port {port}"))?;
    tracing::info!(session_id = %session.session_id, "session started");

    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let started = std::time::Instant::now();
    let session_id = session.session_id.clone();
    let mut status = session.status();
    let stopped = tokio::select! {
        _ = sigint.recv() => true,
        _ = sigterm.recv() => true,
        _ = sighup.recv() => true,
        // The driver marks itself disconnected for good when it ends.
        _ = async { while status.changed().await.is_ok() {} } => false,
    };
    if stopped {
        session.request_stop().await;
    }
    let end = session.finish().await;
    // The driver publishes its final counters as it stops.
    let last = status.borrow().clone();
    tracing::info!("{}", summary(&session_id, &last, started.elapsed()));
    let end = end?;
    if let Some(e) = port_failure(&instance, port, &end, last.stats.bytes_delivered) {
        return Err(e.into());
    }
    match end {
        End::ChannelClosed { output } if !output.is_empty() => {
            tracing::info!("session closed: {output}")
        }
        other => tracing::info!("session ended: {other}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Why `stdio` failed after its session started.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    /// The instance could not connect to the port: nothing listens there, or a firewall on
    /// the instance refuses it. Without this, ssh would only say `kex_exchange_identification`.
    #[error("instance {instance} could not connect to its port {port} ({detail}); is sshd (or your service) listening there? Pick the port with -p")]
    PortUnreachable {
        instance: String,
        port: u16,
        detail: String,
    },
}

/// A session that the service closed with a reason before a single byte came from the
/// instance never reached the port: the agent's dial failed.
fn port_failure(instance: &str, port: u16, end: &End, delivered: u64) -> Option<StdioError> {
    let detail = match end {
        End::ChannelClosed { output } if delivered == 0 && !output.trim().is_empty() => {
            output.lines().next().unwrap_or_default().trim().to_owned()
        }
        _ => return None,
    };
    Some(StdioError::PortUnreachable {
        instance: instance.to_owned(),
        port,
        detail,
    })
}

/// The one-line account `stdio -v` gives on exit.
fn summary(session_id: &str, st: &Status, elapsed: std::time::Duration) -> String {
    format!(
        "session {session_id} summary: {} bytes sent, {} bytes received, {} messages sent, {} messages received, {} link reads, {} resumes, {} retransmits, {:.1}s",
        st.stats.bytes_sent,
        st.stats.bytes_delivered,
        st.stats.messages_sent,
        st.stats.messages_received,
        st.link_reads,
        st.reconnects,
        st.stats.retransmits,
        elapsed.as_secs_f64()
    )
}

/// Opens `host:port` through a running master's pooled SSH connection and bridges
/// stdin/stdout to it (OpenSSH `-W` semantics). `Ok(None)`: no master, or it has no route to an
/// upstream for `host`; the caller then takes the direct SSM path.
async fn via_master(
    socket: &std::path::Path,
    host: &str,
    port: u16,
) -> anyhow::Result<Option<ExitCode>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = match Client::connect(socket).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("no master to reuse ({e}); opening a session directly");
            return Ok(None);
        }
    };
    let req = Request::Open {
        host: host.to_owned(),
        port,
        via: None,
    };
    c.send(&req).await?;
    match c.recv(Some(std::time::Duration::from_secs(60))).await? {
        Response::Stream => {}
        Response::Error {
            kind: ErrorKind::NotRouted,
            ..
        } => return Ok(None),
        other => {
            return Err(
                anyhow::Error::from(ControlError::unexpected("a stream", other))
                    .context(format!("through the master at {}", socket.display())),
            )
        }
    }
    tracing::info!(
        "stream to {host}:{port} through the master at {}",
        socket.display()
    );
    let (sock, early) = c.into_parts();
    let (mut rd, mut wr) = sock.into_split();
    let mut stdout = pipe::stdout();
    // Socket errors are the master's connection failing; only stdout's are `StdoutError`.
    let to_stdout = async {
        stdout.write_all(&early).await.map_err(StdoutError::from)?;
        stdout.flush().await.map_err(StdoutError::from)?;
        let mut buf = vec![0u8; crate::relay::BUF_SIZE];
        loop {
            let n = rd.read(&mut buf).await.map_err(ControlError::Io)?;
            if n == 0 {
                return Ok::<(), anyhow::Error>(());
            }
            let chunk = buf.get(..n).unwrap_or_default();
            stdout.write_all(chunk).await.map_err(StdoutError::from)?;
            stdout.flush().await.map_err(StdoutError::from)?;
        }
    };
    let from_stdin = async {
        let mut stdin = pipe::stdin();
        tokio::io::copy(&mut stdin, &mut wr)
            .await
            .map_err(ControlError::Io)?;
        // Half-close: the destination sees EOF and may still answer.
        wr.shutdown().await.map_err(ControlError::Io)?;
        std::future::pending::<anyhow::Result<()>>().await
    };
    tokio::select! {
        r = to_stdout => r?,
        r = from_stdin => r?,
    }
    Ok(Some(ExitCode::SUCCESS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_closed_before_any_byte_with_a_reason_is_a_port_failure() {
        let closed = |o: &str| End::ChannelClosed { output: o.into() };
        let refused = closed("could not open the local side of the session: Connection refused");
        let e = port_failure("i-1", 2222, &refused, 0).unwrap().to_string();
        assert!(
            e.contains("i-1") && e.contains("2222") && e.contains("refused"),
            "{e}"
        );
        // Bytes came through, or the session just ended: a normal end.
        assert!(port_failure("i-1", 22, &refused, 1).is_none());
        assert!(port_failure("i-1", 22, &closed(""), 0).is_none());
        assert!(port_failure("i-1", 22, &End::AppClosed, 0).is_none());
    }

    #[test]
    fn summary_names_bytes_messages_reads_resumes_retransmits_and_duration() {
        let mut st = Status::default();
        st.stats.bytes_sent = 1200;
        st.stats.bytes_delivered = 34_000;
        st.stats.retransmits = 5;
        st.stats.messages_sent = 3;
        st.stats.messages_received = 40;
        st.link_reads = 9;
        st.reconnects = 2;
        let line = summary("s-1", &st, std::time::Duration::from_millis(2500));
        assert_eq!(
            line,
            "session s-1 summary: 1200 bytes sent, 34000 bytes received, 3 messages sent, 40 messages received, 9 link reads, 2 resumes, 5 retransmits, 2.5s"
        );
    }
}
