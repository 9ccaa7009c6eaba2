//! Channel-open failures: what a bastion's refusal to open a `direct-tcpip` channel means in
//! SOCKS terms ([`RejectKind`]), and how its description reaches the caller that asked
//! ([`OpenFailures`]). The SSH connection itself lives in the parent module.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use russh::ChannelOpenFailure;

/// Why the bastion would not open a `direct-tcpip` channel, in the terms a SOCKS reply uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectKind {
    /// The destination answered with a reset (nothing listening).
    Refused,
    /// The name did not resolve, or the host did not answer / has no route.
    HostUnreachable,
    /// The bastion has no route to the destination network.
    NetworkUnreachable,
    /// sshd's configuration forbids forwarding there (`AllowTcpForwarding`, `PermitOpen`).
    Prohibited,
    /// Anything else (resource shortage, unknown channel type).
    Other,
}

impl RejectKind {
    /// The RFC 1928 reply code for this failure.
    pub fn socks_reply(self) -> u8 {
        match self {
            Self::Refused => 5,
            Self::HostUnreachable => 4,
            Self::NetworkUnreachable => 3,
            Self::Prohibited => 2,
            Self::Other => 1,
        }
    }

    /// Short human description, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Refused => "connection refused",
            Self::HostUnreachable => "host unreachable",
            Self::NetworkUnreachable => "network unreachable",
            Self::Prohibited => "forwarding not permitted by the bastion's sshd",
            Self::Other => "channel open failed",
        }
    }
}

/// Maps a CHANNEL_OPEN_FAILURE to a kind. OpenSSH reports every connect error as
/// `ConnectFailed` and puts `strerror()` or the resolver's message in the description, so the
/// text is what tells refused from unreachable.
pub fn classify_open_failure(reason: ChannelOpenFailure, description: &str) -> RejectKind {
    let d = description.to_ascii_lowercase();
    match reason {
        ChannelOpenFailure::AdministrativelyProhibited => RejectKind::Prohibited,
        ChannelOpenFailure::ConnectFailed | ChannelOpenFailure::Other { .. } => {
            if d.contains("refused") {
                RejectKind::Refused
            } else if d.contains("network is unreachable") || d.contains("network unreachable") {
                RejectKind::NetworkUnreachable
            } else if matches!(reason, ChannelOpenFailure::Other { .. }) && d.is_empty() {
                RejectKind::Other
            } else {
                // "No route to host", "Connection timed out", "Name or service not known", ...
                RejectKind::HostUnreachable
            }
        }
        ChannelOpenFailure::UnknownChannelType | ChannelOpenFailure::ResourceShortage => {
            RejectKind::Other
        }
    }
}

/// Open failures reported to the handler, waiting to be claimed by the `open` call they
/// belong to. russh returns only the reason code to the caller; the description (which tells
/// "refused" from "unreachable") arrives through the handler, shortly after, without the
/// caller knowing the channel id. So callers claim the oldest failure with their reason code.
/// Two concurrent failures with the same code may swap descriptions; both are failures of
/// the same class, so the worst case is a slightly wrong reply code.
#[derive(Debug, Default)]
pub(super) struct OpenFailures {
    queue: Mutex<VecDeque<(ChannelOpenFailure, String)>>,
    notify: tokio::sync::Notify,
}

impl OpenFailures {
    const CAP: usize = 64;

    pub(super) fn push(&self, reason: ChannelOpenFailure, description: String) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= Self::CAP {
            q.pop_front();
        }
        q.push_back((reason, description));
        drop(q);
        self.notify.notify_waiters();
    }

    fn take(&self, reason: &ChannelOpenFailure) -> Option<String> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let i = q.iter().position(|(r, _)| r == reason)?;
        q.remove(i).map(|(_, d)| d)
    }

    pub(super) async fn claim(&self, reason: ChannelOpenFailure, wait: Duration) -> String {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.notify.notified();
            if let Some(d) = self.take(&reason) {
                return d;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return String::new();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn open_failures_map_to_socks_replies() {
        use ChannelOpenFailure::*;
        let cases = [
            (ConnectFailed, "Connection refused", RejectKind::Refused, 5),
            (
                ConnectFailed,
                "connect failed: Connection refused",
                RejectKind::Refused,
                5,
            ),
            (
                ConnectFailed,
                "No route to host",
                RejectKind::HostUnreachable,
                4,
            ),
            (
                ConnectFailed,
                "Connection timed out",
                RejectKind::HostUnreachable,
                4,
            ),
            (
                ConnectFailed,
                "Name or service not known",
                RejectKind::HostUnreachable,
                4,
            ),
            (ConnectFailed, "", RejectKind::HostUnreachable, 4),
            (
                ConnectFailed,
                "Network is unreachable",
                RejectKind::NetworkUnreachable,
                3,
            ),
            (
                AdministrativelyProhibited,
                "open failed",
                RejectKind::Prohibited,
                2,
            ),
            (ResourceShortage, "", RejectKind::Other, 1),
            (UnknownChannelType, "", RejectKind::Other, 1),
            (
                Other {
                    code: 99,
                    reason: String::new(),
                },
                "",
                RejectKind::Other,
                1,
            ),
        ];
        for (reason, text, kind, reply) in cases {
            let got = classify_open_failure(reason.clone(), text);
            assert_eq!(got, kind, "{reason:?} {text:?}");
            assert_eq!(got.socks_reply(), reply, "{reason:?} {text:?}");
        }
    }

    #[tokio::test]
    async fn open_failure_descriptions_are_claimed_by_reason_in_arrival_order() {
        let f = OpenFailures::default();
        f.push(ChannelOpenFailure::ConnectFailed, "first".into());
        f.push(
            ChannelOpenFailure::AdministrativelyProhibited,
            "admin".into(),
        );
        f.push(ChannelOpenFailure::ConnectFailed, "second".into());
        let wait = Duration::from_millis(10);
        assert_eq!(
            f.claim(ChannelOpenFailure::ConnectFailed, wait).await,
            "first"
        );
        assert_eq!(
            f.claim(ChannelOpenFailure::ConnectFailed, wait).await,
            "second"
        );
        assert_eq!(f.claim(ChannelOpenFailure::ConnectFailed, wait).await, "");
        assert_eq!(
            f.claim(ChannelOpenFailure::AdministrativelyProhibited, wait)
                .await,
            "admin"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_description_arriving_after_the_error_is_still_claimed() {
        let f = Arc::new(OpenFailures::default());
        let f2 = f.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            f2.push(ChannelOpenFailure::ConnectFailed, "late".into());
        });
        let got = f
            .claim(ChannelOpenFailure::ConnectFailed, Duration::from_secs(5))
            .await;
        assert_eq!(got, "late");
    }
}
