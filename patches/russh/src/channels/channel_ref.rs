use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;

use super::WindowSizeRef;
use super::flow::ChannelFlow;
use crate::ChannelMsg;

/// A handle to the [`super::Channel`]'s to be able to transmit messages
/// to it and update it's `window_size`.
#[derive(Debug)]
pub struct ChannelRef {
    pub(super) sender: Sender<ChannelMsg>,
    pub(super) window_size: WindowSizeRef,
    pub(super) flow: Arc<ChannelFlow>,
    /// Messages that did not fit in the channel's queue, oldest first (session-proxy patch).
    /// Bounded by the receive window: data is only accepted within the window, and the window
    /// is only re-opened for bytes the application has taken.
    backlog: VecDeque<ChannelMsg>,
}

impl ChannelRef {
    pub fn new(sender: Sender<ChannelMsg>) -> Self {
        Self::with_flow(sender, WindowSizeRef::new(0), Arc::default())
    }

    pub(super) fn with_flow(
        sender: Sender<ChannelMsg>,
        window_size: WindowSizeRef,
        flow: Arc<ChannelFlow>,
    ) -> Self {
        Self {
            sender,
            window_size,
            flow,
            backlog: VecDeque::new(),
        }
    }

    pub(crate) fn window_size(&self) -> &WindowSizeRef {
        &self.window_size
    }

    pub(crate) fn flow(&self) -> &Arc<ChannelFlow> {
        &self.flow
    }

    /// Hands `msg` to the channel without ever waiting: behind the backlog if there is one,
    /// into the backlog if the channel's queue is full, dropped if the channel is gone.
    pub(crate) fn deliver(&mut self, msg: ChannelMsg) {
        if let ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } = &msg {
            self.flow.delivered(data.len());
        }
        if !self.backlog.is_empty() {
            self.backlog.push_back(msg);
            return;
        }
        if let Err(TrySendError::Full(msg)) = self.sender.try_send(msg) {
            self.backlog.push_back(msg);
        }
    }

    /// Moves backlog into the channel's queue while it has room. True once the backlog is
    /// empty (also when the channel is gone and the backlog was dropped).
    pub(crate) fn drain_backlog(&mut self) -> bool {
        while let Some(msg) = self.backlog.pop_front() {
            match self.sender.try_send(msg) {
                Ok(()) => {}
                Err(TrySendError::Full(msg)) => {
                    self.backlog.push_front(msg);
                    return false;
                }
                Err(TrySendError::Closed(_)) => self.backlog.clear(),
            }
        }
        true
    }

    pub(crate) fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }
}

impl std::ops::Deref for ChannelRef {
    type Target = Sender<ChannelMsg>;

    fn deref(&self) -> &Self::Target {
        &self.sender
    }
}
