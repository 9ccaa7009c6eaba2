//! Counters kept by a channel, read by tests, benchmarks, the simulator and `status`.

/// Monotonic counters and high-water marks of one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Stream messages transmitted for the first time.
    pub messages_sent: u64,
    /// Payload bytes of those messages.
    pub bytes_sent: u64,
    /// Stream messages transmitted again (ack gap, timeout or reconnect).
    pub retransmits: u64,
    /// Of those, resent because no acknowledge came for a whole RTO.
    pub timeout_retransmits: u64,
    /// Largest round-trip sample (send to acknowledge of a message sent once), in ms: shows
    /// how late the peer acknowledges.
    pub peak_rtt_ms: u64,
    pub acks_sent: u64,
    pub acks_received: u64,
    /// Stream messages received in order and delivered.
    pub messages_received: u64,
    pub bytes_delivered: u64,
    /// Stream messages that arrived below the expected sequence (re-acknowledged, not delivered).
    pub duplicates_received: u64,
    /// Stream messages that arrived early and were held in the reorder buffer.
    pub reordered: u64,
    /// Stream messages dropped unacknowledged because a buffer was full.
    pub dropped_no_room: u64,
    /// Frames that failed to decode.
    pub decode_errors: u64,
    /// Client data the agent role discarded because it came before the handshake finished.
    pub discarded_before_handshake: u64,
    /// Payloads sent sealed with the session's KMS data key (§5).
    pub encrypted_sent: u64,
    /// Sealed payloads received and opened.
    pub decrypted_received: u64,
    /// Sealed payloads that failed to open (each ends the session).
    pub decrypt_failures: u64,
    pub peak_send_buffer_bytes: u64,
    pub peak_reorder_bytes: u64,
    pub peak_ready_bytes: u64,
}
