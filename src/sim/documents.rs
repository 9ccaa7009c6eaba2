//! The session documents the simulator runs and what each means on an instance ([`Plan`]):
//! the session type and `properties` the agent sees (§1.1 of the data-channel reference), and
//! what it runs: the address it dials for a port session ([`DialTarget`], from the instance's
//! `hosts` map for a remote host it names), or the shell or command of a shell-kind document
//! ([`session`]). Errors are the service's (`InvalidDocument`, `InvalidParameters`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use serde_json::{json, Value};

use crate::sim::aws_error::{kind, ApiError};
use crate::sim::destination::DialTarget;
use crate::sim::instances::Instance;

pub mod session;
pub mod store;

pub use session::{SessionDocument, SHELL_DOCUMENT};
pub use store::{CreateDocument, DocumentStore};

/// The port documents the simulator runs (the shell ones are in [`session::BUILTIN`]).
pub const DOCUMENTS: [&str; 3] = [
    "AWS-StartSSHSession",
    "AWS-StartPortForwardingSession",
    "AWS-StartPortForwardingSessionToRemoteHost",
];

/// What a session of a document means for the agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `Port`, `Standard_Stream`, `InteractiveCommands` or `NonInteractiveCommands`.
    pub session_type: String,
    /// The `properties` of the agent's HandshakeRequest (null for NonInteractiveCommands).
    pub properties: Value,
    pub run: Run,
}

/// What the agent runs for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    /// A port session: the address the agent dials.
    Dial(DialTarget),
    /// Standard_Stream: the instance's shell in a pty, with the document's `shellProfile`
    /// typed into it first.
    Shell { profile: Option<String> },
    /// InteractiveCommands: `sh -c <command>` in a pty.
    Interactive { command: String },
    /// NonInteractiveCommands: the command without a shell or a pty.
    Command(CommandPlan),
}

/// A NonInteractiveCommands command as the document gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandPlan {
    /// Split with shlex by the agent; run without a shell.
    pub command: String,
    /// `separateOutputStream`: stdout as Output and stderr as StdErr, then an ExitCode.
    pub separate: Option<Separators>,
}

/// `stdOutSeparatorPrefix` / `stdErrSeparatorPrefix` of a separate-output document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Separators {
    pub stdout_prefix: String,
    pub stderr_prefix: String,
}

/// What a session of `document` (no name: [`SHELL_DOCUMENT`]) runs on `inst`. `custom` finds
/// documents created with CreateDocument. Errors are the service's: `InvalidDocument`,
/// `InvalidParameters`.
pub fn plan(
    inst: &Instance,
    document: Option<&str>,
    params: &HashMap<String, Vec<String>>,
    custom: &dyn Fn(&str) -> Option<SessionDocument>,
) -> Result<Plan, ApiError> {
    let name = document.unwrap_or(SHELL_DOCUMENT);
    if let Some(doc) = session::builtin(name).or_else(|| custom(name)) {
        return doc.plan(params);
    }
    let (properties, dial) = port_plan(inst, name, params)?;
    Ok(Plan {
        session_type: "Port".to_owned(),
        properties,
        run: Run::Dial(dial),
    })
}

/// The `properties` the agent sees and the address it dials for a port session of `document`
/// on `inst`, with the documents' defaults (`portNumber` 22 for SSH, 80 for port forwarding;
/// `localPortNumber` 0). Errors are the service's: `InvalidDocument`, `InvalidParameters`.
fn port_plan(
    inst: &Instance,
    document: &str,
    params: &HashMap<String, Vec<String>>,
) -> Result<(Value, DialTarget), ApiError> {
    let allowed = allowed_params(document)?;
    let doc = document;
    let mut names: Vec<&String> = params.keys().collect();
    names.sort();
    if let Some(bad) = names.iter().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid_parameters(format!(
            "Document {doc} does not take parameter {bad}; it takes {}",
            allowed.join(", ")
        )));
    }
    let one = |name: &str| -> Result<Option<&str>, ApiError> {
        match params.get(name).map(Vec::as_slice) {
            None => Ok(None),
            Some([v]) => Ok(Some(v.as_str())),
            Some(_) => Err(ApiError::invalid_parameters(format!(
                "Parameter {name} takes exactly one value"
            ))),
        }
    };
    let default_port = if doc == "AWS-StartSSHSession" {
        "22"
    } else {
        "80"
    };
    let port = port_param(one("portNumber")?.unwrap_or(default_port))?;
    let dial_local = DialTarget::Addr(inst.dial_addr(port));
    if doc == "AWS-StartSSHSession" {
        return Ok((json!({ "portNumber": port.to_string() }), dial_local));
    }
    let local = one("localPortNumber")?.unwrap_or("0");
    if parse_port(local).is_none() {
        return Err(ApiError::invalid_parameters(format!(
            "localPortNumber {local:?} is not a port number (0-65535)"
        )));
    }
    let mut props = json!({ "portNumber": port.to_string(), "type": "LocalPortForwarding", "localPortNumber": local });
    if doc == "AWS-StartPortForwardingSession" {
        return Ok((props, dial_local));
    }
    let host = host_param(one("host")?, doc)?;
    if let Some(m) = props.as_object_mut() {
        m.insert("host".to_owned(), json!(host));
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Ok((props, remote_target(inst, bare, port)))
}

/// The remote host as the instance reaches it: a name from its `hosts` map, an IP literal, or
/// a name for the system resolver. Denied destinations are planned like any other: the
/// service starts the session, and the agent refuses it when it dials.
fn remote_target(inst: &Instance, host: &str, port: u16) -> DialTarget {
    match inst.host_ip(host).or_else(|| host.parse::<IpAddr>().ok()) {
        Some(ip) => DialTarget::Addr(SocketAddr::new(ip, port)),
        None => DialTarget::Host(host.to_owned(), port),
    }
}

/// The parameters `document` takes; the service's `InvalidDocument` for documents that do
/// not exist (neither AWS's nor created in the simulator).
fn allowed_params(document: &str) -> Result<&'static [&'static str], ApiError> {
    match document {
        "AWS-StartSSHSession" => Ok(&["portNumber"]),
        "AWS-StartPortForwardingSession" => Ok(&["portNumber", "localPortNumber"]),
        "AWS-StartPortForwardingSessionToRemoteHost" => {
            Ok(&["host", "portNumber", "localPortNumber"])
        }
        other => {
            let builtin = session::BUILTIN.iter().map(|(n, _)| *n);
            let supported: Vec<&str> = DOCUMENTS.iter().copied().chain(builtin).collect();
            let msg = format!(
                "Document {other} does not exist in the simulator; it runs {} and documents created with CreateDocument",
                supported.join(", ")
            );
            Err(ApiError::new(kind::INVALID_DOCUMENT, msg))
        }
    }
}

/// `portNumber`: 1-65535 in the documents' canonical decimal form.
fn port_param(text: &str) -> Result<u16, ApiError> {
    match parse_port(text) {
        Some(p) if p > 0 => Ok(p),
        _ => Err(ApiError::invalid_parameters(format!(
            "portNumber {text:?} is not a port number (1-65535)"
        ))),
    }
}

/// `host` of the remote-host document: required, and a host name or IP address.
fn host_param<'a>(host: Option<&'a str>, doc: &str) -> Result<&'a str, ApiError> {
    match host {
        Some(h) if valid_host(h) => Ok(h),
        Some(h) => Err(ApiError::invalid_parameters(format!(
            "host {h:?} is not a host name or IP address"
        ))),
        None => Err(ApiError::invalid_parameters(format!(
            "Document {doc} requires parameter host"
        ))),
    }
}

/// Decimal without leading zeros, as the documents' `allowedPattern` requires.
fn parse_port(s: &str) -> Option<u16> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

fn valid_host(h: &str) -> bool {
    (1..=253).contains(&h.len())
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
}

#[cfg(test)]
mod tests;
