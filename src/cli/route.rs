//! `route <host[:port]>`: prints where `serve` would send a destination and which rule decided,
//! without connecting anywhere (a `resolve: local` name is looked up, as `serve` would).

use std::io::Write;
use std::net::ToSocketAddrs;
use std::process::ExitCode;

use clap::Args;

use super::GlobalArgs;
use crate::exit::{StdoutError, UsageError};
use crate::route::{parse_destination, HostRef};

#[derive(Debug, Clone, Args)]
pub struct RouteArgs {
    /// Destination: an IP address, `[v6]:port`, or a host name, optionally with `:port`.
    pub destination: String,
}

pub fn run(g: &GlobalArgs, a: RouteArgs) -> anyhow::Result<ExitCode> {
    let Some(cfg) = super::load::optional(g)? else {
        return Err(UsageError::Config(format!(
            "no config file found (searched {}); routes live in the config file's routes: section",
            crate::config::search_paths()
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    };
    let (host, _port) =
        parse_destination(&a.destination).map_err(|e| UsageError::Usage(e.to_string()))?;
    let mut d = cfg.routes.decide(&host, &cfg.default);
    let mut note = String::new();
    if let (true, HostRef::Domain(name)) = (d.resolve_locally, host) {
        // What `serve` would do: resolve here, then route the addresses by CIDR.
        match (name, 0u16).to_socket_addrs() {
            Ok(a) => {
                let addrs: Vec<_> = a.map(|a| a.ip()).collect();
                d = cfg.routes.decide_resolved(name, &d, &addrs);
            }
            Err(e) => note = format!(" (resolve: local; cannot resolve it here: {e})"),
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}{note}", d.explanation)
        .and_then(|()| out.flush())
        .map_err(StdoutError::from)?;
    Ok(ExitCode::SUCCESS)
}
