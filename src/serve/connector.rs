//! The SOCKS connector of `serve`: routes each destination (CIDR / domain glob → upstream,
//! direct or reject) and opens the stream accordingly. Routing tables can be swapped at run
//! time (reload) without touching connections already open.

use std::sync::{Arc, RwLock};

use crate::route::{Action, HostRef, Router};
use crate::socks::proto::{Destination, Host, Reply};
use crate::socks::server::{
    direct_connect, ConnectError, ConnectFuture, Connected, Connector, Via,
};
use crate::upstream::Upstreams;

#[cfg(test)]
mod tests;

/// Routes and the default action, replaced as a whole on reload.
#[derive(Debug, Clone)]
pub struct Routing {
    pub router: Router,
    pub default: Action,
}

/// Connector that consults the routing table for every request.
pub struct RoutingConnector {
    routing: RwLock<Arc<Routing>>,
    upstreams: Arc<tokio::sync::RwLock<Upstreams>>,
}

impl RoutingConnector {
    pub fn new(routing: Routing, upstreams: Arc<tokio::sync::RwLock<Upstreams>>) -> Self {
        Self {
            routing: RwLock::new(Arc::new(routing)),
            upstreams,
        }
    }

    pub fn set_routing(&self, r: Routing) {
        if let Ok(mut g) = self.routing.write() {
            *g = Arc::new(r);
        }
    }

    fn routing(&self) -> Arc<Routing> {
        self.routing
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

/// `resolve: local`: this machine's resolver, bounded so a dead DNS server cannot hold the
/// SOCKS client past its own patience.
async fn resolve_here(name: &str, port: u16) -> Result<Vec<std::net::IpAddr>, ConnectError> {
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(10);
    let failed = |why: String| {
        ConnectError::new(
            Reply::HostUnreachable,
            format!(
                "cannot resolve {} here (resolve: local): {why}",
                crate::printable::Printable(name)
            ),
        )
    };
    match tokio::time::timeout(LIMIT, tokio::net::lookup_host((name, port))).await {
        Ok(Ok(addrs)) => Ok(addrs.map(|a| a.ip()).collect()),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed(format!("no answer in {}s", LIMIT.as_secs()))),
    }
}

/// The route and upstream of `decision`, for the connection's log line.
fn via(decision: &crate::route::Decision) -> Via {
    Via {
        route: decision
            .rule
            .map_or_else(|| "default".to_owned(), |i| format!("routes[{i}]")),
        upstream: match &decision.action {
            Action::Upstream(name) => name.clone(),
            Action::Direct => "direct".to_owned(),
            Action::Reject => "reject".to_owned(),
        },
    }
}

fn reply_from_code(code: u8) -> Reply {
    Reply::from_code(code).unwrap_or(Reply::GeneralFailure)
}

impl Connector for RoutingConnector {
    fn connect(&self, dest: Destination) -> ConnectFuture<'_> {
        Box::pin(async move {
            let routing = self.routing();
            let host_ref = match &dest.host {
                Host::Ip(ip) => HostRef::Ip(*ip),
                Host::Domain(d) => HostRef::Domain(d),
            };
            let mut decision = routing.router.decide(&host_ref, &routing.default);
            if let (true, Host::Domain(name)) = (decision.resolve_locally, &dest.host) {
                let addrs = resolve_here(name, dest.port).await?;
                decision = routing.router.decide_resolved(name, &decision, &addrs);
            }
            tracing::debug!(destination = %dest, "{}", decision.explanation);
            let via = via(&decision);
            // Dial what was routed: a name that spells an address becomes that address.
            let dest = match decision.ip {
                Some(ip) => Destination {
                    host: Host::Ip(ip),
                    port: dest.port,
                },
                None => dest,
            };
            let host_text = dest.host.dial_text();
            let result = match decision.action {
                Action::Reject => Err(ConnectError::new(Reply::NotAllowed, decision.explanation)),
                Action::Direct => direct_connect(dest).await,
                Action::Upstream(name) => {
                    // Hold the registry lock only to find the pool, not while dialling.
                    let pool = self.upstreams.read().await.get(&name);
                    match pool {
                        None => Err(ConnectError::new(
                            Reply::HostUnreachable,
                            format!("upstream {name} is not configured"),
                        )),
                        Some(pool) => match pool.open_stream(&host_text, dest.port).await {
                            Ok(s) => Ok(Connected::new(s)),
                            Err(e) => Err(ConnectError::new(
                                reply_from_code(e.socks_reply()),
                                e.to_string(),
                            )),
                        },
                    }
                }
            };
            match result {
                Ok(c) => Ok(c.with_via(via)),
                Err(e) => Err(e.with_via(via)),
            }
        })
    }
}
