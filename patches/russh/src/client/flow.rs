//! The client session loop's half of per-channel receive flow control (session-proxy patch,
//! see `patches/russh/README.md` and [`crate::channels::ChannelFlow`]): channel messages are
//! delivered without waiting on the application, and a channel's window is re-opened only as
//! its application reads, so one reader that stops reading never parks the connection.

use super::Session;
use crate::session::WindowGrant;
use crate::{ChannelId, ChannelMsg, Error};

impl Session {
    /// Debits received data from the channel's window. False when the peer sent beyond it:
    /// the data is discarded, as RFC 4254 §5.2 allows and OpenSSH does.
    pub(super) fn debit_receive_window(&mut self, id: ChannelId, len: usize) -> bool {
        let Some(enc) = self.common.encrypted.as_mut() else {
            return false;
        };
        let ok = enc.debit_receive_window(id, len);
        if !ok {
            log::debug!("channel {id:?}: peer sent {len} bytes beyond its window; discarded");
        }
        ok
    }

    /// Hands `msg` to channel `id` without waiting; what does not fit waits in its backlog.
    pub(super) fn deliver(&mut self, id: ChannelId, msg: ChannelMsg) {
        if let Some(chan) = self.channels.get_mut(&id) {
            chan.deliver(msg);
            if chan.has_backlog() {
                chan.flow().arm(&self.flow_wake);
                self.throttled.insert(id);
            }
        }
    }

    /// Delivers the peer's close. The channel is forgotten once its backlog has reached the
    /// application, so data queued before the close is not lost.
    pub(super) fn deliver_close(&mut self, id: ChannelId) {
        self.deliver(id, ChannelMsg::Close);
        match self.channels.get(&id) {
            Some(chan) if chan.has_backlog() => {
                self.closing.insert(id);
            }
            _ => {
                self.channels.remove(&id);
            }
        }
    }

    /// Re-opens the peer's window on `id` as far as the application's reading allows; when it
    /// cannot, asks to be woken at the application's next read.
    pub(super) fn replenish_window(&mut self, id: ChannelId) -> Result<(), Error> {
        let Some(flow) = self.channels.get(&id).map(|c| c.flow().clone()) else {
            return Ok(());
        };
        let target = self.common.config.window_size;
        let Some(enc) = self.common.encrypted.as_mut() else {
            return Ok(());
        };
        if enc.grant_receive_window(id, target, flow.queued())? == WindowGrant::Withheld {
            flow.arm(&self.flow_wake);
            self.throttled.insert(id);
            // The application may have read between the look and the arming; look again.
            enc.grant_receive_window(id, target, flow.queued())?;
        }
        Ok(())
    }

    /// An application read from a throttled channel: move its backlog on, re-open its window,
    /// and forget it if the peer closed it and everything has been delivered.
    pub(super) fn resume_throttled(&mut self) -> Result<(), Error> {
        for id in std::mem::take(&mut self.throttled) {
            let Some(chan) = self.channels.get_mut(&id) else {
                continue;
            };
            if !chan.drain_backlog() {
                chan.flow().arm(&self.flow_wake);
                self.throttled.insert(id);
            } else if self.closing.remove(&id) {
                self.channels.remove(&id);
                continue;
            }
            self.replenish_window(id)?;
        }
        Ok(())
    }
}
