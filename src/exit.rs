//! Maps the error at the top of a command to a process exit code and prints it once. Only
//! `main` calls this; everything below returns errors.

use std::process::ExitCode;

use crate::ssm::api::ApiError;
use crate::ssm::driver::DriverError;
use crate::ssm::session::OpenError;
use crate::ssm::target::TargetError;

/// Exit codes (sysexits-style), documented in the man page and README.
#[rustfmt::skip]
pub mod codes {
    pub const OK: u8             = 0;
    pub const FAILURE: u8        = 1;
    pub const USAGE: u8          = 64;  // bad arguments
    pub const NO_HOST: u8        = 68;  // target unknown, ambiguous or not connected
    pub const UNAVAILABLE: u8    = 69;  // AWS API error
    pub const PROTOCOL: u8       = 76;  // data-channel failure (handshake, resume gave up)
    pub const NO_PERM: u8        = 77;  // credentials missing or expired
    pub const CONFIG: u8         = 78;  // bad configuration file
}

/// A usage or configuration problem found by a command (not by clap).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Config(String),
}

fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<UsageError>() {
            return match e {
                UsageError::Usage(_) => codes::USAGE,
                UsageError::Config(_) => codes::CONFIG,
            };
        }
        if cause.downcast_ref::<crate::config::ConfigError>().is_some() {
            return codes::CONFIG;
        }
        if let Some(e) = cause.downcast_ref::<TargetError>() {
            return match e {
                TargetError::Api(a) => api_code(a),
                _ => codes::NO_HOST,
            };
        }
        if let Some(e) = cause.downcast_ref::<ApiError>() {
            return api_code(e);
        }
        if let Some(e) = cause.downcast_ref::<OpenError>() {
            return match e {
                OpenError::Api(a) => api_code(a),
                OpenError::Connect { .. } => codes::PROTOCOL,
            };
        }
        if let Some(e) = cause.downcast_ref::<crate::serve::ServeError>() {
            return match e {
                crate::serve::ServeError::Upstreams(_) => codes::UNAVAILABLE,
                crate::serve::ServeError::Bind { .. } => codes::FAILURE,
            };
        }
        if cause.downcast_ref::<DriverError>().is_some() {
            return codes::PROTOCOL;
        }
    }
    codes::FAILURE
}

fn api_code(e: &ApiError) -> u8 {
    match e {
        ApiError::TargetNotConnected { .. } => codes::NO_HOST,
        ApiError::Credentials { .. } => codes::NO_PERM,
        _ => codes::UNAVAILABLE,
    }
}

/// Prints `err` (with its causes) to stderr and returns its exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    // A closed stdout (e.g. `| head`) is not a failure.
    if err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::SUCCESS;
    }
    eprintln!("session-proxy: {err:#}");
    ExitCode::from(code_for(err))
}
