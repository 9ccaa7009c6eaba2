//! The driver's own decisions, one step at a time.
#![allow(clippy::unwrap_used)]
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::*;
use crate::sim::memlink::{self, MemLink};
use crate::ssm::channel::{Config, Role};
use crate::ssm::driver::{BoxFuture, ByteStream, Control, Options, Parts, Status, Transport};

struct NoReconnect;

impl Transport<MemLink> for NoReconnect {
    fn reconnect(&mut self, _attempt: u32) -> BoxFuture<Result<MemLink, ReconnectError>> {
        Box::pin(async { Err(ReconnectError::LinkClosed) })
    }
}

/// A paced agent whose last read was at `t0`: its next read slot is `t0 + 1 ms`. A step
/// that holds the read back must also arm the timer for that slot; with two clock
/// readings per step, a slot passing between them left only the 30 s ping to wake a
/// paced transfer (`--pace-ms 1` downloads stalled for ~30 s).
#[tokio::test]
async fn a_read_held_back_by_the_pacer_arms_the_timer_for_its_slot() {
    let (link, _peer) = memlink::pair(8);
    let (_user, app) = tokio::io::duplex(1024);
    let opts = Options {
        pace: Some((Duration::from_millis(1), 1024)),
        ..Options::default()
    };
    let parts = Parts {
        channel: Channel::new(Config::new(Role::Agent), Instant::now()),
        link: Some(link),
        app: ByteStream::ready(app),
        transport: NoReconnect,
        opts,
    };
    let (_tx, commands) = mpsc::channel(1);
    let control = Control {
        commands,
        status: watch::channel(Status::default()).0,
        shutdown: Box::pin(std::future::pending()),
    };
    let mut d = Driver::new(parts, control);
    let t0 = Instant::now();
    d.pacer.as_mut().unwrap().on_read(t0);
    let slot = t0 + Duration::from_millis(1);
    for early in [1, 10, 500, 999] {
        let now = slot - Duration::from_micros(early);
        assert_eq!(d.read_cap(now), 0, "{early} µs before the slot: no read");
        let wake = d.next_deadline(now).unwrap();
        assert!(
            wake <= slot,
            "{early} µs before the slot: woken {wake:?} after it"
        );
    }
}
