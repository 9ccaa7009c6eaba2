//! The lines a shell prints on stderr about its session, never into the shell's stream: the
//! service's CustomerMessage (once), a lost and a resumed connection, and the close. Pure: the
//! CLI feeds it each [`Status`] the driver publishes and prints what comes out.

use std::fmt;

use crate::printable::Printable;
use crate::ssm::driver::Status;

/// One line for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// HandshakeComplete's CustomerMessage ("This session is encrypted using AWS KMS.").
    Customer(String),
    /// The WebSocket dropped; the driver is resuming the same session.
    Lost,
    /// The session was resumed: the same shell, its state and scrollback intact.
    Resumed,
    /// The service closed the channel (the shell exited), with its reason if it gave one.
    Closed(String),
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Customer(m) => write!(f, "{}", Printable(m)),
            Self::Lost => f.write_str("session-proxy: connection lost; resuming session …"),
            Self::Resumed => f.write_str("session-proxy: resumed"),
            Self::Closed(why) if why.trim().is_empty() => {
                f.write_str("session-proxy: session closed")
            }
            Self::Closed(why) => write!(
                f,
                "session-proxy: session closed: {}",
                Printable(why.trim())
            ),
        }
    }
}

/// What has been said so far.
#[derive(Debug, Default)]
pub struct Notices {
    customer_shown: bool,
    connected: bool,
    reconnects: u32,
}

impl Notices {
    /// The notices a new status calls for, in order.
    pub fn observe(&mut self, st: &Status) -> Vec<Notice> {
        let mut out = vec![];
        if let Some(s) = &st.session {
            if !self.customer_shown && !s.customer_message.trim().is_empty() {
                self.customer_shown = true;
                out.push(Notice::Customer(s.customer_message.clone()));
            }
        }
        if self.connected && !st.connected {
            out.push(Notice::Lost);
        }
        if st.reconnects > self.reconnects && st.connected {
            self.reconnects = st.reconnects;
            out.push(Notice::Resumed);
        }
        self.connected = st.connected;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssm::channel::SessionInfo;

    fn status(connected: bool, reconnects: u32, message: &str) -> Status {
        Status {
            connected,
            ready: true,
            reconnects,
            session: Some(SessionInfo {
                customer_message: message.into(),
                ..SessionInfo::default()
            }),
            ..Status::default()
        }
    }

    #[test]
    fn customer_message_once_then_lost_and_resumed_once_each() {
        let mut n = Notices::default();
        let kms = "This session is encrypted using AWS KMS.";
        assert_eq!(
            n.observe(&status(true, 0, kms)),
            vec![Notice::Customer(kms.into())]
        );
        assert_eq!(n.observe(&status(true, 0, kms)), vec![]);
        assert_eq!(n.observe(&status(false, 0, kms)), vec![Notice::Lost]);
        assert_eq!(n.observe(&status(false, 0, kms)), vec![]);
        assert_eq!(n.observe(&status(true, 1, kms)), vec![Notice::Resumed]);
        assert_eq!(n.observe(&status(true, 1, kms)), vec![]);
    }

    #[test]
    fn closed_line_carries_the_services_reason_if_any() {
        assert_eq!(
            Notice::Closed(String::new()).to_string(),
            "session-proxy: session closed"
        );
        assert_eq!(
            Notice::Closed("exit status 1\n".into()).to_string(),
            "session-proxy: session closed: exit status 1"
        );
    }
}
