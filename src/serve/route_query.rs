//! \[shell\] What `session-proxy route` prints: where a destination goes under a config, decided
//! as `serve`'s connector decides (a `resolve: local` name is looked up here, then routed by
//! address), without connecting anywhere. The running master answers it for the config it runs
//! (`route` asks it first), so the answer is what the proxy will really do; without a master,
//! the command judges the config file itself. Both say which config they judged by.

use crate::config::Config;
use crate::route::{parse_destination, HostRef, RouteError};

/// How long a `resolve: local` lookup may take before the answer says it could not resolve.
const RESOLVE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The one-line decision for `destination` (`host[:port]`) under `cfg`.
pub async fn explain(cfg: &Config, destination: &str) -> Result<String, RouteError> {
    let (host, _port) = parse_destination(destination)?;
    let mut d = cfg.routes.decide(&host, &cfg.default);
    if let (true, HostRef::Domain(name)) = (d.resolve_locally, host) {
        let lookup = tokio::net::lookup_host((name, 0u16));
        match tokio::time::timeout(RESOLVE_LIMIT, lookup).await {
            Ok(Ok(addrs)) => {
                let addrs: Vec<_> = addrs.map(|a| a.ip()).collect();
                d = cfg.routes.decide_resolved(name, &d, &addrs);
            }
            Ok(Err(e)) => {
                return Ok(format!(
                    "{} (resolve: local; cannot resolve it here: {e})",
                    d.explanation
                ))
            }
            Err(_) => {
                return Ok(format!(
                    "{} (resolve: local; no answer from the resolver in {}s)",
                    d.explanation,
                    RESOLVE_LIMIT.as_secs()
                ))
            }
        }
    }
    Ok(d.explanation)
}
