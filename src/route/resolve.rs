//! `resolve: local`: CIDR rules for names, by deciding again on the addresses a name has here.

use std::net::IpAddr;

use super::{Action, Decision, Router};

impl Router {
    /// Decides where `name` goes once this machine resolved it to `addrs` (for a `decision`
    /// whose `resolve_locally` is set). Any address that a `reject` rule covers refuses the
    /// whole name, so a second record cannot smuggle a rejected address in. Otherwise the
    /// first address is dialled, through the CIDR rule that covers it or, with none, through
    /// the name's own decision.
    pub fn decide_resolved(&self, name: &str, decision: &Decision, addrs: &[IpAddr]) -> Decision {
        let Some(&first) = addrs.first() else {
            return Decision {
                action: Action::Reject,
                rule: None,
                explanation: format!("{name} has no address here (resolve: local)"),
                ip: None,
                resolve_locally: false,
            };
        };
        let covered = |ip: IpAddr| {
            self.lookup_ip(ip)
                .and_then(|i| self.rules.get(i).map(|r| (i, r, ip)))
        };
        let rejected = addrs
            .iter()
            .filter_map(|&ip| covered(ip))
            .find(|(_, r, _)| r.action == Action::Reject);
        if let Some((index, rule, ip)) = rejected.or_else(|| covered(first)) {
            return Decision {
                action: rule.action.clone(),
                rule: Some(index),
                explanation: format!(
                    "{name} resolved here to {ip}, which matched routes[{index}] ({}) → {}",
                    rule.matcher, rule.action
                ),
                ip: Some(ip),
                resolve_locally: false,
            };
        }
        Decision {
            action: decision.action.clone(),
            rule: decision.rule,
            explanation: format!("{}; resolved here to {first}", decision.explanation),
            ip: Some(first),
            resolve_locally: false,
        }
    }
}
