//! The Session Manager data channel: wire codec, typed payloads, the sans-IO channel state
//! machine, and the tokio shell that drives it over a WebSocket.

pub mod api;
pub mod channel;
pub mod credentials;
pub mod dial;
pub mod driver;
pub mod identity_cache;
pub mod kms;
pub mod message;
pub mod name_tags;
pub mod payload;
pub mod sdk;
pub mod session;
pub mod target;
