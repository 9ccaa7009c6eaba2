//! session-proxy: SSH `ProxyCommand` and SOCKS5 multiplexer over AWS Systems Manager Session
//! Manager.
//!
//! ```text
//!  ssh ──stdin/stdout──▶ cli::stdio ─┐
//!  curl ──SOCKS5──▶ socks::server ──▶ route ──▶ upstream::pool ──russh──┐
//!                                                                      ▼
//!                         ssm::driver (WebSocket) ◀── ssm::channel (sans-IO core)
//!                                  │                        ▲
//!                                  ▼                        │ (same core, agent role)
//!                     AWS data channel  /  sim::service ── sim::agent ──▶ TCP target
//! ```
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod ssh;
pub mod ssm;
pub mod upstream;

pub mod cli;
pub mod config;
pub mod control;
pub mod doctor;
pub mod exec;
pub mod exit;
pub mod forward;
pub mod http_connect;
pub mod logging;
pub mod paths;
pub mod port;
pub mod printable;
pub mod proxy;
pub mod redact;
pub mod relay;
pub mod route;
pub mod serve;
pub mod shell;
pub mod sim;
pub mod smux;
pub mod socks;
