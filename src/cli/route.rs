//! `route <host[:port]>`: prints where `serve` would send a destination and which rule decided,
//! without connecting anywhere (a `resolve: local` name is looked up, as `serve` would).

use std::net::ToSocketAddrs;
use std::process::ExitCode;

use clap::Args;

use super::GlobalArgs;
use crate::exit::UsageError;
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
    if let (true, HostRef::Domain(name)) = (d.resolve_locally, host) {
        // What `serve` would do: resolve here, then route the addresses by CIDR.
        let addrs: Vec<_> = match (name, 0u16).to_socket_addrs() {
            Ok(a) => a.map(|a| a.ip()).collect(),
            Err(e) => {
                println!(
                    "{} (resolve: local; cannot resolve it here: {e})",
                    d.explanation
                );
                return Ok(ExitCode::SUCCESS);
            }
        };
        d = cfg.routes.decide_resolved(name, &d, &addrs);
    }
    println!("{}", d.explanation);
    Ok(ExitCode::SUCCESS)
}
