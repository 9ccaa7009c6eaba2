//! `status`, `connect`, `disconnect`, `reload`, `stop`: thin clients of the master's control
//! socket. Results go to stdout (a table, or JSON with `status --json`); progress to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::GlobalArgs;
use crate::control::client::{self, Client};
use crate::control::proto::{Request, Response, StatusReport};
use crate::control::{self, ControlError};
use crate::exit::StdoutError;
use crate::upstream::status::{ConnStatus, DestinationStatus, PoolStatus};
use crate::upstream::PoolState;

mod forwards;

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Print the report as JSON (errors in full; the table shortens LAST ERROR).
    #[arg(long)]
    pub json: bool,
}

/// `status` found upstreams that are down (no connection, and failing), so that monitoring can
/// act on the exit code (68) alone. The report is printed first, as usual.
#[derive(Debug, thiserror::Error)]
#[error("{} down: {}; `session-proxy connect NAME` retries one now and says why it fails", if names.len() == 1 { "an upstream is" } else { "upstreams are" }, names.join(", "))]
pub struct UpstreamsDown {
    pub names: Vec<String>,
}

/// The upstreams of `r` that are down. Idle (lazy, unused), connecting, degraded and
/// deliberately disconnected (`stopped`) ones are not.
pub fn down_upstreams(r: &StatusReport) -> Vec<String> {
    r.upstreams
        .iter()
        .filter(|u| matches!(u.state, PoolState::Down | PoolState::CredentialsExpired))
        .map(|u| u.name.clone())
        .collect()
}

#[derive(Debug, Clone, Args)]
pub struct UpstreamArgs {
    /// Upstream name from the config, or a forward's listen address (e.g. 127.0.0.1:15432,
    /// unix:/path.sock; its bound address when several listen on port 0).
    pub upstream: String,
}

/// The control socket for commands: the flag, else the config's key (a config that does not
/// load is ignored here: the master already has its own), else the default.
pub fn socket(g: &GlobalArgs) -> PathBuf {
    let configured = if g.control_socket.is_none() {
        super::load::optional(g)
            .ok()
            .flatten()
            .and_then(|c| c.control_socket)
    } else {
        None
    };
    control::socket_path(g.control_socket.as_deref(), configured.as_deref())
}

fn done(resp: Response) -> anyhow::Result<ExitCode> {
    match resp {
        Response::Done { lines } => {
            let mut out = std::io::stdout().lock();
            for l in lines {
                writeln!(out, "{l}").map_err(StdoutError::from)?;
            }
            out.flush().map_err(StdoutError::from)?;
            Ok(ExitCode::SUCCESS)
        }
        other => Err(ControlError::unexpected("done", other).into()),
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        unit = u;
        if v < 1024.0 || u == "TiB" {
            break;
        }
        v /= 1024.0;
    }
    if unit == "B" {
        format!("{n} B")
    } else {
        format!("{v:.1} {unit}")
    }
}

fn uptime(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Columns padded to their widest cell, two spaces apart, trailing blanks trimmed.
fn table(rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        widths.resize(widths.len().max(row.len()), 0);
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn or_dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".into())
}

/// Characters of an error the table shows; `status --json` has the whole text.
const LAST_ERROR_WIDTH: usize = 60;

/// `e` on one line, cut to [`LAST_ERROR_WIDTH`] characters with `…` when longer.
fn shorten(e: &str) -> String {
    let flat = e.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= LAST_ERROR_WIDTH {
        return flat;
    }
    let mut cut: String = flat.chars().take(LAST_ERROR_WIDTH - 1).collect();
    cut.push('…');
    cut
}

/// "message (3m05s ago)", given the Unix time of the error and of now; the message shortened
/// so that one long error does not push the table off the screen.
fn last_error(error: Option<&str>, at: Option<u64>, now_unix: u64) -> String {
    match (error.map(shorten), at) {
        (Some(e), Some(at)) => format!("{e} ({} ago)", uptime(now_unix.saturating_sub(at))),
        (Some(e), None) => e,
        (None, _) => "-".into(),
    }
}

fn header(r: &StatusReport) -> String {
    let s = &r.socks;
    let refused: u64 = s.replies.iter().skip(1).sum();
    format!(
        "master pid {}, up {}, {}, listening on {}\nsocks: {} accepted, {} active, {} connected, {} refused, {} failed handshakes ({} bad credentials), {} up, {} down\n\n",
        r.pid,
        uptime(r.uptime_secs),
        r.phase,
        if r.listeners.is_empty() { "-".into() } else { r.listeners.join(", ") },
        s.accepted,
        s.active,
        s.replies.first().copied().unwrap_or(0),
        refused,
        s.handshake_failures,
        s.auth_failures,
        human_bytes(s.bytes_client_to_upstream),
        human_bytes(s.bytes_upstream_to_client),
    )
}

const UPSTREAM_COLUMNS: [&str; 12] = [
    "UPSTREAM",
    "STATE",
    "INSTANCES",
    "CONN",
    "UPTIME",
    "STREAMS",
    "IN",
    "OUT",
    "RECONNECTS",
    "RESUMES",
    "RETRANSMITS",
    "LAST ERROR",
];

const CONNECTION_COLUMNS: [&str; 12] = [
    "CONNECTION",
    "PHASE",
    "INSTANCE",
    "SSM SESSION",
    "UPTIME",
    "STREAMS",
    "IN",
    "OUT",
    "RECONNECTS",
    "RESUMES",
    "RETRANSMITS",
    "LAST ERROR",
];

fn upstream_row(u: &PoolStatus, now_unix: u64) -> Vec<String> {
    vec![
        u.name.clone(),
        u.state.to_string(),
        if u.instances.is_empty() {
            "-".into()
        } else {
            u.instances.join(",")
        },
        format!("{}/{}", u.connections_up, u.connections_total),
        or_dash(u.uptime_secs.map(uptime)),
        format!("{}/{}", u.open_streams, u.streams_total),
        human_bytes(u.bytes_in),
        human_bytes(u.bytes_out),
        u.reconnects.to_string(),
        u.resumes.to_string(),
        u.retransmits.to_string(),
        last_error(u.last_error.as_deref(), u.last_error_at, now_unix),
    ]
}

fn connection_row(name: &str, c: &ConnStatus, now_unix: u64) -> Vec<String> {
    vec![
        format!("{name}#{}", c.slot),
        c.phase.clone(),
        or_dash(c.instance.clone()),
        or_dash(c.session_id.clone()),
        or_dash(c.uptime_secs.map(uptime)),
        format!("{}/{}", c.open_streams, c.streams_total),
        human_bytes(c.bytes_in),
        human_bytes(c.bytes_out),
        c.reconnects.to_string(),
        c.resumes.to_string(),
        c.retransmits.to_string(),
        last_error(c.last_error.as_deref(), c.last_error_at, now_unix),
    ]
}

/// An `ssm-port` upstream's destination, in the connection table: its port sessions.
fn destination_row(name: &str, d: &DestinationStatus) -> Vec<String> {
    let phase = match (d.sessions_up, &d.last_error) {
        (0, Some(_)) => "down".to_owned(),
        (0, None) => "connecting".to_owned(),
        (up, _) => format!("up {up}/{}", d.sessions_total),
    };
    vec![
        format!("{name}→{}", d.destination),
        phase,
        d.instance.clone(),
        if d.session_ids.is_empty() {
            "-".into()
        } else {
            d.session_ids.join(",")
        },
        or_dash(d.idle_secs.map(|s| format!("idle {}", uptime(s)))),
        format!("{}/{}", d.open_streams, d.streams_total),
        human_bytes(d.bytes_in),
        human_bytes(d.bytes_out),
        "-".into(),
        "-".into(),
        "-".into(),
        or_dash(d.last_error.as_deref().map(shorten)),
    ]
}

/// The human form of a status report: a header with the SOCKS counters, one row per
/// upstream, then one row per connection. `now_unix` dates the last errors.
pub fn render_table(r: &StatusReport, now_unix: u64) -> String {
    let columns = |c: &[&str]| c.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut upstreams = vec![columns(&UPSTREAM_COLUMNS)];
    let mut connections = vec![columns(&CONNECTION_COLUMNS)];
    for u in &r.upstreams {
        upstreams.push(upstream_row(u, now_unix));
        for c in &u.connections {
            connections.push(connection_row(&u.name, c, now_unix));
        }
        for d in &u.destinations {
            connections.push(destination_row(&u.name, d));
        }
    }
    let mut out = header(r);
    out.push_str(&table(&upstreams));
    if connections.len() > 1 {
        out.push('\n');
        out.push_str(&table(&connections));
    }
    out.push_str(&forwards::render(&r.forwards, now_unix));
    // The table cuts errors short; the command that renews credentials must show in full.
    for u in &r.upstreams {
        if let (PoolState::CredentialsExpired, Some(e)) = (u.state, &u.last_error) {
            out.push_str(&format!(
                "\nupstream {}: credentials expired: {e}\n",
                u.name
            ));
        }
    }
    out
}

pub async fn status(g: &GlobalArgs, a: StatusArgs) -> anyhow::Result<ExitCode> {
    let resp = client::request(&socket(g), &Request::Status).await?;
    let Response::Status(report) = resp else {
        return Err(ControlError::unexpected("a status report", resp).into());
    };
    let text = if a.json {
        let mut t = serde_json::to_string_pretty(&report)?;
        t.push('\n');
        t
    } else {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        render_table(&report, now)
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).map_err(StdoutError::from)?;
    out.flush().map_err(StdoutError::from)?;
    let names = down_upstreams(&report);
    if !names.is_empty() {
        return Err(UpstreamsDown { names }.into());
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn connect(g: &GlobalArgs, a: UpstreamArgs) -> anyhow::Result<ExitCode> {
    let mut c = Client::connect(&socket(g)).await?;
    let mut line = ProgressLine::new(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // The master sends a line per change, and repeats it every 2 s.
    let resp = c
        .call(
            &Request::Connect {
                upstream: a.upstream,
            },
            Duration::from_secs(30),
            |m| line.show(m),
        )
        .await;
    line.finish();
    done(resp?)
}

/// The width of the terminal on stderr (80 when it cannot be told).
fn terminal_columns() -> usize {
    // SAFETY: TIOCGWINSZ fills the zero-initialised winsize struct we pass; no other memory
    // is touched, and a failure leaves it zeroed, which falls back to 80 below.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) };
    if rc == 0 && ws.ws_col > 0 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}

/// `line` cut to fit `columns` (with an ellipsis when cut), so it never wraps.
fn fit(line: &str, columns: usize) -> String {
    let max = columns.saturating_sub(1).max(10);
    if line.chars().count() <= max {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// `connect`'s progress on stderr: on a terminal one line rewritten in place (with the time
/// so far), otherwise a new line only when the text changes, so logs get one line per state.
struct ProgressLine {
    tty: bool,
    last: String,
    started: std::time::Instant,
}

impl ProgressLine {
    fn new(tty: bool) -> Self {
        Self {
            tty,
            last: String::new(),
            started: std::time::Instant::now(),
        }
    }

    fn show(&mut self, message: &str) {
        if self.tty {
            let secs = self.started.elapsed().as_secs();
            let line = format!("session-proxy: {message} [{secs}s]");
            // A wrapped line could not be rewritten in place: keep it within the terminal.
            eprint!("\r\x1b[2K{}", fit(&line, terminal_columns()));
            let _ = std::io::stderr().flush();
        } else if message != self.last {
            eprintln!("session-proxy: {message}");
        }
        message.clone_into(&mut self.last);
    }

    /// Clears the in-place line, so the result (stdout) or error starts on a clean line.
    fn finish(&self) {
        if self.tty && !self.last.is_empty() {
            eprint!("\r\x1b[2K");
        }
    }
}

pub async fn disconnect(g: &GlobalArgs, a: UpstreamArgs) -> anyhow::Result<ExitCode> {
    let mut c = Client::connect(&socket(g)).await?;
    let resp = c
        .call(
            &Request::Disconnect {
                upstream: a.upstream,
            },
            Duration::from_secs(60),
            |_| {},
        )
        .await?;
    done(resp)
}

pub async fn reload(g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let mut c = Client::connect(&socket(g)).await?;
    let resp = c
        .call(&Request::Reload, Duration::from_secs(60), |_| {})
        .await?;
    done(resp)
}

/// How long `stop` waits for the master to finish: the longest drain it can be configured
/// with, plus time to terminate its SSM sessions.
const STOP_WAIT: Duration = Duration::from_secs(crate::config::MAX_DRAIN_TIMEOUT_SECS + 60);

/// Asks the master to stop and waits until its socket is gone (streams drained, sessions
/// terminated). A `stop` while one is draining cuts the drain short.
pub async fn stop(g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let path = socket(g);
    let resp = client::request(&path, &Request::Stop).await?;
    let code = done(resp)?;
    let started = tokio::time::Instant::now();
    let mut told = false;
    while path.exists() && started.elapsed() < STOP_WAIT {
        if !told && started.elapsed() > Duration::from_secs(2) {
            eprintln!("session-proxy: waiting for streams in flight to finish (`session-proxy stop` again closes them now)");
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if path.exists() {
        return Err(ControlError::NotStopped(STOP_WAIT).into());
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::PoolState;

    fn pool(name: &str, state: PoolState, error: Option<&str>) -> PoolStatus {
        PoolStatus {
            name: name.into(),
            state,
            instances: Vec::new(),
            connections_up: 0,
            connections_total: 1,
            session_ids: Vec::new(),
            uptime_secs: None,
            open_streams: 0,
            streams_total: 0,
            bytes_in: 0,
            bytes_out: 0,
            reconnects: 0,
            resumes: 0,
            retransmits: 0,
            last_error: error.map(str::to_owned),
            last_error_at: Some(1_000),
            connections: Vec::new(),
            kind: "ssh".into(),
            destinations: Vec::new(),
        }
    }

    fn report(upstreams: Vec<PoolStatus>) -> StatusReport {
        StatusReport {
            pid: 1,
            uptime_secs: 5,
            listeners: vec!["socks5://127.0.0.1:1080".into()],
            phase: Default::default(),
            socks: Default::default(),
            upstreams,
            forwards: Vec::new(),
        }
    }

    #[test]
    fn an_ssm_port_upstream_lists_each_destination_with_its_sessions_and_streams() {
        let mut ports = pool("ports", PoolState::Up, None);
        ports.kind = "ssm-port".into();
        ports.destinations = vec![DestinationStatus {
            destination: "10.0.0.5:5432".into(),
            instance: "i-1".into(),
            sessions_up: 1,
            sessions_total: 2,
            session_ids: vec!["s-1".into()],
            open_streams: 3,
            streams_total: 7,
            bytes_in: 2048,
            bytes_out: 0,
            idle_secs: None,
            last_error: Some("session ended".into()),
        }];
        let table = render_table(&report(vec![ports]), 2_000);
        let row = table
            .lines()
            .find(|l| l.starts_with("ports→10.0.0.5:5432"))
            .unwrap_or_else(|| panic!("no destination row:\n{table}"));
        for want in ["up 1/2", "i-1", "s-1", "3/7", "session ended"] {
            assert!(row.contains(want), "{want}: {row}");
        }
    }

    #[test]
    fn the_table_shortens_a_long_last_error_to_one_line() {
        let long = format!("credentials\nexpired: {}", "x".repeat(300));
        let r = report(vec![pool("prod", PoolState::Down, Some(&long))]);
        let table = render_table(&r, 1_065);
        let row = table.lines().find(|l| l.starts_with("prod ")).unwrap();
        assert!(row.contains("credentials expired: xxx"), "{row}");
        assert!(row.contains("… (1m05s ago)"), "{row}");
        assert!(row.chars().count() < 200, "{row}");
        let short = shorten("no route to host");
        assert_eq!(short, "no route to host");
        assert_eq!(shorten(&long).chars().count(), LAST_ERROR_WIDTH);
    }

    #[test]
    fn only_failing_upstreams_count_as_down() {
        let r = report(vec![
            pool("a", PoolState::Down, Some("refused")),
            pool("b", PoolState::Idle, None),
            pool("c", PoolState::Stopped, None),
            pool("d", PoolState::Degraded, Some("lost")),
            pool("e", PoolState::Down, None),
        ]);
        assert_eq!(down_upstreams(&r), ["a", "e"]);
        let e = UpstreamsDown {
            names: down_upstreams(&r),
        };
        assert_eq!(
            e.to_string(),
            "upstreams are down: a, e; `session-proxy connect NAME` retries one now and says why it fails"
        );
    }

    #[test]
    fn a_progress_line_is_cut_to_the_terminal_so_it_can_be_rewritten_in_place() {
        assert_eq!(fit("short", 80), "short");
        let long = "x".repeat(200);
        let cut = fit(&long, 80);
        assert_eq!(cut.chars().count(), 79);
        assert!(cut.ends_with('…'));
        // A silly width still leaves something readable.
        assert_eq!(fit(&long, 0).chars().count(), 10);
    }
}
