//! The session documents the simulator runs and what each means on an instance: the
//! `properties` the agent sees (§1.1 of the data-channel reference) and the address it dials
//! ([`DialTarget`], from the instance's `hosts` map for a remote host it names).
//! Errors are the service's (`InvalidDocument`, `InvalidParameters`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use serde_json::{json, Value};

use crate::sim::aws_error::{kind, ApiError};
use crate::sim::destination::DialTarget;
use crate::sim::instances::Instance;

/// The session documents the simulator runs (all of them are port sessions).
pub const DOCUMENTS: [&str; 3] = [
    "AWS-StartSSHSession",
    "AWS-StartPortForwardingSession",
    "AWS-StartPortForwardingSessionToRemoteHost",
];

/// The `properties` the agent sees and the address it dials for a session of `document` on
/// `inst`, with the documents' defaults (`portNumber` 22 for SSH, 80 for port forwarding;
/// `localPortNumber` 0). Errors are the service's: `InvalidDocument`, `InvalidParameters`.
pub fn plan(
    inst: &Instance,
    document: Option<&str>,
    params: &HashMap<String, Vec<String>>,
) -> Result<(Value, DialTarget), ApiError> {
    let allowed = allowed_params(document)?;
    let doc = document.unwrap_or_default();
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

/// The parameters `document` takes; the service's `InvalidDocument` for documents the
/// simulator does not run.
fn allowed_params(document: Option<&str>) -> Result<&'static [&'static str], ApiError> {
    let supported = DOCUMENTS.join(", ");
    match document {
        Some("AWS-StartSSHSession") => Ok(&["portNumber"]),
        Some("AWS-StartPortForwardingSession") => Ok(&["portNumber", "localPortNumber"]),
        Some("AWS-StartPortForwardingSessionToRemoteHost") => {
            Ok(&["host", "portNumber", "localPortNumber"])
        }
        Some(other) => {
            let msg = format!("Document {other} is not supported by the session-proxy simulator; it runs {supported}");
            Err(ApiError::new(kind::INVALID_DOCUMENT, msg))
        }
        None => {
            let msg = format!("No DocumentName means an interactive shell, which the session-proxy simulator does not run; use one of {supported}");
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
