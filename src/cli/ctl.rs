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

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct UpstreamArgs {
    /// Upstream name from the config.
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

/// The human form of a status report.
pub fn render_table(r: &StatusReport) -> String {
    let mut rows = vec![[
        "UPSTREAM",
        "STATE",
        "INSTANCES",
        "CONN",
        "STREAMS",
        "IN",
        "OUT",
        "LAST ERROR",
    ]
    .map(String::from)];
    for u in &r.upstreams {
        rows.push([
            u.name.clone(),
            u.state.clone(),
            if u.instances.is_empty() {
                "-".into()
            } else {
                u.instances.join(",")
            },
            format!("{}/{}", u.connections_up, u.connections_total),
            u.open_streams.to_string(),
            human_bytes(u.bytes_in),
            human_bytes(u.bytes_out),
            u.last_error.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = format!(
        "master pid {}, up {}, listening on {}\n",
        r.pid,
        uptime(r.uptime_secs),
        if r.listeners.is_empty() {
            "-".into()
        } else {
            r.listeners.join(", ")
        }
    );
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
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
        render_table(&report)
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(StdoutError::from)?;
    Ok(ExitCode::SUCCESS)
}

pub async fn connect(g: &GlobalArgs, a: UpstreamArgs) -> anyhow::Result<ExitCode> {
    let mut c = Client::connect(&socket(g)).await?;
    // Progress lines come at least every few seconds while the pool connects.
    let resp = c
        .call(
            &Request::Connect {
                upstream: a.upstream,
            },
            Duration::from_secs(30),
            |m| eprintln!("session-proxy: {m}"),
        )
        .await?;
    done(resp)
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

/// Asks the master to stop and waits until its socket is gone (sessions terminated).
pub async fn stop(g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let path = socket(g);
    let resp = client::request(&path, &Request::Stop).await?;
    let code = done(resp)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while path.exists() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if path.exists() {
        return Err(ControlError::NotStopped(Duration::from_secs(60)).into());
    }
    Ok(code)
}
