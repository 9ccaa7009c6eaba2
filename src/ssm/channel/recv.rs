//! Incoming side: the expected sequence number, a byte-capped reorder buffer for messages that
//! arrived early, and a byte-capped queue of in-order data the application has not read yet.
//!
//! A message is acknowledged only once it is held within these bounds; anything that does not
//! fit is dropped unacknowledged and the peer retransmits it (§10 item 4).

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::ssm::message::{Message, PayloadType};

/// Per-message accounting overhead, so that empty or tiny messages still count against caps.
pub(crate) const ENTRY_OVERHEAD: usize = 128;

pub(crate) fn cost(m: &Message) -> usize {
    m.payload.len() + ENTRY_OVERHEAD
}

#[derive(Debug, Default)]
pub(crate) struct RecvBuffer {
    /// Next in-order sequence number expected from the peer.
    pub(crate) expected: i64,
    reorder: BTreeMap<i64, Message>,
    reorder_bytes: usize,
    /// In-order payloads for the application, with their type: Output, and the few typed
    /// payloads an application also reads (StdErr and ExitCode at a client, Size at an agent).
    ready: VecDeque<(PayloadType, Bytes)>,
    ready_bytes: usize,
}

impl RecvBuffer {
    pub(crate) fn reorder_bytes(&self) -> usize {
        self.reorder_bytes
    }

    pub(crate) fn ready_bytes(&self) -> usize {
        self.ready_bytes
    }

    pub(crate) fn holds_early(&self, seq: i64) -> bool {
        self.reorder.contains_key(&seq)
    }

    /// Stores an early message if it fits under `cap`; false means "drop, do not ack".
    pub(crate) fn store_early(&mut self, m: Message, cap: usize) -> bool {
        let c = cost(&m);
        if self.reorder_bytes + c > cap {
            return false;
        }
        self.reorder_bytes += c;
        self.reorder.insert(m.sequence_number, m);
        true
    }

    /// Takes the message at `expected` out of the reorder buffer, if it is there.
    pub(crate) fn take_next_early(&mut self) -> Option<Message> {
        let m = self.reorder.remove(&self.expected)?;
        self.reorder_bytes -= cost(&m);
        Some(m)
    }

    pub(crate) fn push_ready(&mut self, ptype: PayloadType, data: Bytes) {
        self.ready_bytes += data.len();
        self.ready.push_back((ptype, data));
    }

    /// Copies as much ready data of one payload type (the oldest's) as fits into `buf`:
    /// consecutive chunks of that type are joined, and a chunk of another type waits for the
    /// next call, so the application sees each type in stream order.
    pub(crate) fn read_into(&mut self, buf: &mut [u8]) -> Option<(PayloadType, usize)> {
        let ptype = self.ready.front()?.0;
        let mut n = 0;
        while n < buf.len() {
            let Some((t, front)) = self.ready.front_mut() else {
                break;
            };
            if *t != ptype {
                break;
            }
            let take = front.len().min(buf.len() - n);
            if let (Some(dst), Some(src)) = (buf.get_mut(n..n + take), front.get(..take)) {
                dst.copy_from_slice(src);
            }
            n += take;
            self.ready_bytes -= take;
            if take == front.len() {
                self.ready.pop_front();
            } else {
                let _ = front.split_to(take);
            }
        }
        Some((ptype, n))
    }
}
