//! Maps the error at the top of a command to a process exit code and prints it once. Only
//! `main` calls [`report`]; everything below returns typed errors.
//!
//! The code is decided by the outermost error in the chain whose type this module knows; each
//! known type maps every variant to one code (a variant that wraps another known error takes
//! that error's code, so "credentials expired" is 77 whether it came from `stdio`, a pool or
//! `serve`). Errors of no known type (local files, the runtime) are [`codes::FAILURE`].
//!
//! A closed stdout (`session-proxy status | head -1`) is the one broken pipe that is not a
//! failure. It is recognised by type, never by `io::ErrorKind`: the places that write to stdout
//! turn their write errors into [`StdoutError`], so a `BrokenPipe` from a socket, an SSH channel
//! or the control connection deep in a chain stays the failure it is.

use std::process::ExitCode;

use crate::control::proto::ErrorKind as RemoteKind;
use crate::control::ControlError;
use crate::forward::listen::ListenError;
use crate::serve::ServeError;
use crate::sim::demo::DemoError;
use crate::ssh::host_keys::HostKeyError;
use crate::ssh::SshError;
use crate::ssm::api::ApiError;
use crate::ssm::driver::DriverError;
use crate::ssm::session::OpenError;
use crate::ssm::target::TargetError;
use crate::upstream::pool::ConnectError;
use crate::upstream::{PortRefusal, UpstreamError};

/// Exit codes (sysexits-style). [`HELP`] documents them; keep the two in step.
#[rustfmt::skip]
pub mod codes {
    pub const OK: u8          = 0;   // success, or stdout closed by its reader
    pub const FAILURE: u8     = 1;   // anything not listed below (local files, runtime)
    pub const ARGS: u8        = 2;   // bad arguments (clap exits with this itself)
    pub const USAGE: u8       = 64;  // arguments that parse but do not make sense
    pub const HOST_KEY: u8    = 65;  // SSH host key refused (mismatch, unknown under strict)
    pub const NO_HOST: u8     = 68;  // target or upstream unknown, ambiguous, offline; destination or port refused
    pub const UNAVAILABLE: u8 = 69;  // AWS API error; no master running; the master failed the request
    pub const OS: u8          = 71;  // cannot listen: address or control socket in use or not permitted
    pub const IO: u8          = 74;  // local I/O: writing stdout, the known_hosts file, the control socket
    pub const TEMP: u8        = 75;  // timed out; trying again later may work
    pub const PROTOCOL: u8    = 76;  // data channel, SSH connection or control protocol failed
    pub const NO_PERM: u8     = 77;  // AWS credentials, SSH authentication or a KMS key refused
    pub const CONFIG: u8      = 78;  // bad configuration file; AWS profile not defined; proxy wants credentials
}

/// The exit-code table shown by `--help`, in the man page and (verbatim) in the README.
pub const HELP: &str = "\
Exit codes:
   0  success (also when the reader of stdout goes away, e.g. `| head`)
   1  any other failure (local files, the runtime)
   2  bad arguments
  64  arguments that parse but do not make sense together
  65  SSH host key refused: it does not match known_hosts, or is unknown under strict
  68  target or upstream unknown, ambiguous or not connected; destination or port refused
  69  AWS API error or unreachable (directly or through the proxy); no master running; the master failed the request
  71  cannot listen: address or control socket in use or not permitted
  74  local I/O error (stdout, known_hosts file, control socket)
  75  timed out; trying again later may work
  76  data channel, SSH connection or control protocol failed
  77  AWS credentials missing or expired; SSH authentication or KMS key use refused
  78  bad configuration file; AWS profile not defined; the HTTP proxy wants other credentials
`serve` exits with the code of its first upstream's failure when none can connect; `exec` with the remote command's status; `doctor` with its first failed check's.";

/// A usage or configuration problem found by a command (not by clap).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Config(String),
}

/// Writing our own stdout failed. Raised only where stdout is written, so that [`report`] can
/// tell "the reader went away" (success) from every other broken pipe (failure).
#[derive(Debug, thiserror::Error)]
pub enum StdoutError {
    #[error("stdout was closed by its reader")]
    Closed,
    #[error("cannot write to stdout: {0}")]
    Write(#[source] std::io::Error),
}

impl From<std::io::Error> for StdoutError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Self::Closed
        } else {
            Self::Write(e)
        }
    }
}

/// The exit code for `err`: the first error in its chain of a known type decides.
pub fn code_for(err: &anyhow::Error) -> u8 {
    err.chain().find_map(classify).unwrap_or(codes::FAILURE)
}

fn classify(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    if let Some(e) = e.downcast_ref::<StdoutError>() {
        return Some(match e {
            StdoutError::Closed => codes::OK,
            StdoutError::Write(_) => codes::IO,
        });
    }
    if let Some(e) = e.downcast_ref::<UsageError>() {
        return Some(match e {
            UsageError::Usage(_) => codes::USAGE,
            UsageError::Config(_) => codes::CONFIG,
        });
    }
    if let Some(f) = e.downcast_ref::<crate::doctor::Failed>() {
        return Some(f.code);
    }
    if e.is::<crate::config::ConfigError>() || e.is::<crate::sim::instances::InstanceError>() {
        return Some(codes::CONFIG);
    }
    if let Some(e) = e.downcast_ref::<ServeError>() {
        return Some(serve_code(e));
    }
    if let Some(e) = e.downcast_ref::<DemoError>() {
        return Some(match e {
            DemoError::Bind(_) => codes::OS,
            DemoError::Io { .. } | DemoError::BadKey { .. } => codes::IO,
            DemoError::Generate(_) => codes::FAILURE,
        });
    }
    if e.is::<crate::cli::ssh_config::WriteError>() {
        return Some(codes::IO);
    }
    if let Some(e) = e.downcast_ref::<ControlError>() {
        return Some(control_code(e));
    }
    if let Some(e) = e.downcast_ref::<ListenError>() {
        return Some(match e {
            ListenError::Bind { .. } => codes::OS,
            ListenError::AllInterfaces(_) | ListenError::NotLoopback(_) => codes::USAGE,
        });
    }
    if e.is::<crate::forward::spec::SpecError>() {
        return Some(codes::ARGS);
    }
    if e.is::<crate::cli::ctl::UpstreamsDown>() {
        return Some(codes::NO_HOST);
    }
    if let Some(e) = e.downcast_ref::<UpstreamError>() {
        return Some(upstream_code(e));
    }
    if let Some(e) = e.downcast_ref::<std::sync::Arc<ConnectError>>() {
        return Some(connect_code(e));
    }
    if let Some(e) = e.downcast_ref::<ConnectError>() {
        return Some(connect_code(e));
    }
    if let Some(e) = e.downcast_ref::<SshError>() {
        return Some(ssh_code(e));
    }
    if let Some(e) = e.downcast_ref::<HostKeyError>() {
        return Some(host_key_code(e));
    }
    if let Some(e) = e.downcast_ref::<crate::cli::exec::ExecError>() {
        return Some(exec_code(e));
    }
    if e.is::<crate::cli::stdio::StdioError>() {
        // The destination port refused: like a bastion refusing a SOCKS destination.
        return Some(codes::NO_HOST);
    }
    classify_ssm(e)
}

fn classify_ssm(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    if let Some(e) = e.downcast_ref::<TargetError>() {
        return Some(target_code(e));
    }
    if let Some(e) = e.downcast_ref::<OpenError>() {
        return Some(open_code(e));
    }
    if let Some(e) = e.downcast_ref::<ApiError>() {
        return Some(api_code(e));
    }
    if let Some(DriverError::Kms(k)) = e.downcast_ref::<DriverError>() {
        // Not allowed to use the session's KMS key: a permission, like refused credentials.
        return Some(if k.is_refused() {
            codes::NO_PERM
        } else {
            codes::PROTOCOL
        });
    }
    if e.is::<DriverError>() {
        return Some(codes::PROTOCOL);
    }
    None
}

fn exec_code(e: &crate::cli::exec::ExecError) -> u8 {
    use crate::cli::exec::ExecError;
    match e {
        ExecError::DocumentConflict { .. } => codes::USAGE,
        ExecError::Start { source, .. } => open_code(source),
        ExecError::StatusLost | ExecError::BadExitCode(_) => codes::PROTOCOL,
    }
}

fn serve_code(e: &ServeError) -> u8 {
    match e {
        ServeError::Bind { .. } | ServeError::ForwardBind { .. } => codes::OS,
        ServeError::Upstreams(u) => upstream_code(u),
        ServeError::NoUpstream { first, .. } => upstream_code(first),
        ServeError::MasterExited { status, .. } => status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .filter(|&c| c != codes::OK)
            .unwrap_or(codes::FAILURE),
    }
}

fn control_code(e: &ControlError) -> u8 {
    match e {
        ControlError::NotRunning { .. } => codes::UNAVAILABLE,
        ControlError::AlreadyRunning { .. } | ControlError::Socket { .. } => codes::OS,
        ControlError::Timeout(_) | ControlError::NotStopped(_) => codes::TEMP,
        ControlError::Proto(_) | ControlError::Closed | ControlError::Unexpected { .. } => {
            codes::PROTOCOL
        }
        ControlError::Io(_) => codes::IO,
        ControlError::Remote { kind, .. } => match kind {
            RemoteKind::BadRequest => codes::PROTOCOL,
            RemoteKind::UnknownUpstream | RemoteKind::NotRouted => codes::NO_HOST,
            RemoteKind::Failed => codes::UNAVAILABLE,
            RemoteKind::PermissionDenied => codes::NO_PERM,
        },
    }
}

fn upstream_code(e: &UpstreamError) -> u8 {
    match e {
        UpstreamError::Unknown(_) | UpstreamError::Rejected { .. } => codes::NO_HOST,
        UpstreamError::NotReady { cause, .. } => cause.as_deref().map_or(codes::TEMP, connect_code),
        UpstreamError::GaveUp { cause, .. } => connect_code(cause),
        UpstreamError::ConnectionsLost { cause, .. } => {
            cause.as_deref().map_or(codes::PROTOCOL, ssh_code)
        }
        UpstreamError::ShutDown { .. } => codes::UNAVAILABLE,
        UpstreamError::Unsupported { .. } => codes::CONFIG,
        UpstreamError::Port { why, .. } => match why {
            PortRefusal::Refused | PortRefusal::Forbidden { .. } => codes::NO_HOST,
            PortRefusal::NoSession {
                permanent: true, ..
            } => codes::UNAVAILABLE,
            PortRefusal::NoSession { .. } | PortRefusal::Full => codes::TEMP,
        },
    }
}

fn connect_code(e: &ConnectError) -> u8 {
    match e {
        ConnectError::Target(t) => target_code(t),
        ConnectError::Ssh(s) => ssh_code(s),
        ConnectError::Timeout { .. } => codes::TEMP,
    }
}

fn ssh_code(e: &SshError) -> u8 {
    match e {
        SshError::Session { source, .. } => open_code(source),
        SshError::HostKey(h) => host_key_code(h),
        SshError::Auth { .. } => codes::NO_PERM,
        SshError::Rejected { .. } => codes::NO_HOST,
        SshError::Handshake { .. } | SshError::Closed { .. } => codes::PROTOCOL,
    }
}

fn host_key_code(e: &HostKeyError) -> u8 {
    match e {
        HostKeyError::Mismatch { .. }
        | HostKeyError::Unknown { .. }
        | HostKeyError::Malformed { .. } => codes::HOST_KEY,
        HostKeyError::Io { .. } => codes::IO,
    }
}

fn target_code(e: &TargetError) -> u8 {
    match e {
        TargetError::Api(a) => api_code(a),
        TargetError::NotFound { .. }
        | TargetError::Ambiguous { .. }
        | TargetError::Offline { .. }
        | TargetError::UnknownInstance { .. } => codes::NO_HOST,
    }
}

fn open_code(e: &OpenError) -> u8 {
    match e {
        OpenError::Api(a) => api_code(a),
        OpenError::Connect { .. } => codes::PROTOCOL,
        OpenError::UpgradeRefused {
            source: crate::ssm::dial::DialError::Proxy(_),
            ..
        } => codes::CONFIG,
        OpenError::UpgradeRefused { .. } => codes::NO_PERM,
    }
}

fn api_code(e: &ApiError) -> u8 {
    match e {
        ApiError::TargetNotConnected { .. } => codes::NO_HOST,
        ApiError::Credentials(p) if p.is_config() => codes::CONFIG,
        ApiError::Credentials(_) => codes::NO_PERM,
        ApiError::InvalidDocument(_)
        | ApiError::SessionGone(_)
        | ApiError::Service { .. }
        | ApiError::Transport { .. } => codes::UNAVAILABLE,
        ApiError::Proxy(p) if p.is_auth() => codes::CONFIG,
        ApiError::Proxy(_) => codes::UNAVAILABLE,
    }
}

/// `err` and its causes on one line, leaving out a cause whose text the line already holds
/// (many errors quote their source in their own message for the control socket's sake).
pub fn render(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Prints `err` (with its causes) to stderr and returns its exit code; a closed stdout is a
/// quiet success.
pub fn report(err: &anyhow::Error) -> ExitCode {
    let code = code_for(err);
    if code != codes::OK {
        eprintln!("session-proxy: {}", render(err));
    }
    ExitCode::from(code)
}

#[cfg(test)]
mod tests;
