//! One log line per SOCKS connection, at info so that `serve`'s default filter shows it. It is
//! written once, when the connection closes or is refused, and carries client, destination,
//! route, upstream, result, bytes each way and duration as tracing fields, and `proto` (socks5
//! or http) for the listener's protocol (`key=value`,
//! values through `Display`, never `Debug`). A watcher greps one line per connection instead
//! of stitching together a handshake, a routing and a relay line.

use std::fmt;
use std::io;
use std::time::Duration;

use super::{ConnectError, Via};
use crate::relay::RelayCounters;
use crate::socks::proto::{Destination, Reply};

/// Seconds with millisecond precision, e.g. `2.031s`.
struct Secs(Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.0.as_secs_f64())
    }
}

/// The route and upstream fields, `-` when the connector did not say.
fn via_fields(via: Option<&Via>) -> (&str, &str) {
    via.map_or(("-", "-"), |v| (v.route.as_str(), v.upstream.as_str()))
}

/// How a relay ended, as the `result` field says it.
fn outcome(result: &io::Result<()>) -> String {
    match result {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("error: {e}"),
    }
}

/// What the closing line needs, gathered once the stream is connected.
pub(super) struct Closed<'a> {
    proto: &'static str,
    peer: &'a str,
    dest: &'a Destination,
    route: &'a str,
    upstream: &'a str,
}

impl<'a> Closed<'a> {
    pub(super) fn new(
        proto: &'static str,
        peer: &'a str,
        dest: &'a Destination,
        via: Option<&'a Via>,
    ) -> Self {
        let (route, upstream) = via_fields(via);
        Self {
            proto,
            peer,
            dest,
            route,
            upstream,
        }
    }

    /// The line for a connection that was relayed (or lost before the relay began).
    pub(super) fn log(&self, result: &io::Result<()>, own: &RelayCounters, elapsed: Duration) {
        tracing::info!(
            proto = %self.proto,
            client = %self.peer,
            destination = %self.dest,
            route = %self.route,
            upstream = %self.upstream,
            result = %outcome(result),
            bytes_up = own.a_to_b(),
            bytes_down = own.b_to_a(),
            duration = %Secs(elapsed),
            "socks: connection closed"
        );
    }
}

/// The line for a CONNECT that was refused by a rule (`result=rejected`) or could not be
/// opened (`result=failed`), with the reply the client got and why.
pub(super) fn refused(
    proto: &'static str,
    peer: &str,
    dest: &Destination,
    e: &ConnectError,
    elapsed: Duration,
) {
    let (route, upstream) = via_fields(e.via.as_ref());
    let result = if e.reply == Reply::NotAllowed {
        "rejected"
    } else {
        "failed"
    };
    tracing::info!(
        proto = %proto,
        client = %peer,
        destination = %dest,
        route = %route,
        upstream = %upstream,
        result = %result,
        reply = %e.reply,
        duration = %Secs(elapsed),
        reason = %e.message,
        "socks: connection refused"
    );
}

/// The line for a client turned away because the listener is at `max_connections`.
pub(super) fn over_cap(proto: &'static str, peer: &str, dest: &Destination, max: usize) {
    tracing::info!(
        proto = %proto,
        client = %peer,
        destination = %dest,
        result = "refused",
        reply = %Reply::GeneralFailure,
        reason = %format_args!("{max} connections open, the listener's max_connections"),
        "socks: connection refused"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_seconds_with_milliseconds() {
        assert_eq!(Secs(Duration::from_millis(2031)).to_string(), "2.031s");
        assert_eq!(Secs(Duration::from_micros(1750)).to_string(), "0.002s");
    }

    #[test]
    fn a_relay_error_is_named_in_plain_words() {
        let e = io::Error::new(io::ErrorKind::TimedOut, "relay idle for 5s");
        assert_eq!(outcome(&Err(e)), "error: relay idle for 5s");
        assert_eq!(outcome(&Ok(())), "ok");
    }
}
