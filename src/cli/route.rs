//! `route <host[:port]>`: prints where `serve` would send a destination and which rule decided,
//! without connecting anywhere (a `resolve: local` name is looked up, as `serve` would), then
//! which config it judged by. A running master answers for the config it runs, since that is
//! what the proxy will really do; `--config FILE` (or no master) judges a file instead, e.g. to
//! try a config before `reload`.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::GlobalArgs;
use crate::control::proto::{Request, Response};
use crate::control::{client, ControlError};
use crate::exit::{StdoutError, UsageError};
use crate::route::parse_destination;
use crate::serve::route_query;

#[derive(Debug, Clone, Args)]
pub struct RouteArgs {
    /// Destination: an IP address, `[v6]:port`, or a host name, optionally with `:port`.
    pub destination: String,
}

fn print(lines: &[String]) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for l in lines {
        writeln!(out, "{l}").map_err(StdoutError::from)?;
    }
    out.flush().map_err(StdoutError::from)?;
    Ok(ExitCode::SUCCESS)
}

pub async fn run(g: &GlobalArgs, a: RouteArgs) -> anyhow::Result<ExitCode> {
    parse_destination(&a.destination).map_err(|e| UsageError::Usage(e.to_string()))?;
    let socket = super::ctl::socket(g);
    let mut no_master = format!("no master running at {}", socket.display());
    if g.config.is_none() {
        let req = Request::Route {
            destination: a.destination.clone(),
        };
        match client::request(&socket, &req).await {
            Ok(Response::Done { lines }) => return print(&lines),
            // A master from before `route` was a control request: judge the file instead.
            Ok(Response::Error { .. }) => {
                no_master = format!("the master at {} cannot answer it", socket.display());
            }
            Ok(other) => return Err(ControlError::unexpected("done", other).into()),
            Err(ControlError::NotRunning { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let Some(path) = crate::config::discover(g.config.as_deref())? else {
        return Err(UsageError::Config(format!(
            "{no_master} and no config file found (searched {}); routes live in the config file's routes: section",
            crate::config::search_paths()
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    };
    let cfg = crate::config::load(&path)?;
    let path = std::path::absolute(&path).unwrap_or(path);
    let line = route_query::explain(&cfg, &a.destination)
        .await
        .map_err(|e| UsageError::Usage(e.to_string()))?;
    let judged = if g.config.is_some() {
        format!("judged by {} (--config)", path.display())
    } else {
        format!("judged by {} ({no_master})", path.display())
    };
    print(&[line, judged])
}
