//! Who connected to the simulator: connections per peer IP address. Tests that put an HTTP
//! proxy in front of the simulator bind the proxy's outgoing side to its own loopback address,
//! so this table shows whether any connection bypassed the proxy.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Most distinct addresses remembered; connections from further ones are not recorded.
pub const MAX_PEERS: usize = 256;

/// Connections accepted, per peer IP address.
#[derive(Debug, Clone, Default)]
pub struct Peers(Arc<Mutex<BTreeMap<IpAddr, u64>>>);

impl Peers {
    pub fn record(&self, ip: IpAddr) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() < MAX_PEERS || m.contains_key(&ip) {
            *m.entry(ip).or_default() += 1;
        }
    }

    /// A copy of the table.
    pub fn snapshot(&self) -> BTreeMap<IpAddr, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_count_connections_per_address_and_stay_bounded() {
        let p = Peers::default();
        let a: IpAddr = [127, 0, 0, 3].into();
        p.record(a);
        p.record(a);
        for i in 0..(MAX_PEERS as u32 + 10) {
            p.record(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        }
        let s = p.snapshot();
        assert_eq!(s.len(), MAX_PEERS);
        assert_eq!(s.get(&a), Some(&2));
    }
}
