//! The simulator's managed instances: what each one reports to DescribeInstanceInformation and
//! where its sessions connect, parsed from `--target` flags or a YAML file.
//!
//! This file owns the definition and its two text forms; it depends on no other part of the
//! simulator. What a session document means on an instance belongs to
//! [`documents`](crate::sim::documents); the [`registry`](crate::sim::registry) holds the
//! instances and sessions at run time.
//!
//! # `--target` grammar
//!
//! ```text
//! SPEC    = ID "=" ADDRESS *( "," OPTION )
//! ID      = ( "i-" / "mi-" ) 8*17( DIGIT / "a"-"f" )      ; lowercase hex, as AWS prints ids
//! ADDRESS = IPv4 ":" PORT / "[" IPv6 "]" ":" PORT          ; where portNumber 22 is mapped
//! OPTION  = "name=" TEXT                                   ; the Name tag
//!         / "ip=" ( IPv4 / IPv6 )                          ; IPAddress
//!         / "computer=" TEXT                               ; ComputerName
//!         / "agent=" VERSION                               ; AgentVersion, e.g. 3.3.987.0
//!         / "offline"                                      ; PingStatus ConnectionLost
//!         / "host=" NAME "@" LOOPBACK-IP                   ; a host the instance reaches
//! TEXT    = 1*( any character except "," )
//! VERSION = 1*( DIGIT / "." )
//! NAME    = DNS name (letters, digits, "-", "_", ".")      ; matched case-insensitively
//! ```
//!
//! Example: `i-0123456789abcdef0=127.0.0.1:2222,name=web,ip=10.0.0.5,offline`. Each option may
//! appear once, except `host=`, once per name (e.g. `host=db.internal@127.0.0.1,host=cache.internal@127.0.0.2`).
//! A session for `portNumber` 22 dials ADDRESS; any other port P dials ADDRESS's IP with port
//! P; `AWS-StartPortForwardingSessionToRemoteHost` dials its `host` parameter: the IP a
//! `host=` entry maps it to (with the session's `portNumber`), else the name as the system
//! resolves it.
//!
//! # YAML file
//!
//! The same keys, one mapping per instance (`offline` is a boolean):
//!
//! ```yaml
//! instances:
//!   - id: i-0123456789abcdef0
//!     address: 127.0.0.1:2222
//!     name: web                        # optional
//!     ip: 10.0.0.5                     # optional
//!     computer: ip-10-0-0-5.ec2.internal # optional
//!     agent: 3.3.987.0                 # optional
//!     offline: false                   # optional
//!     hosts:                           # optional: names the instance reaches
//!       db.internal: 127.0.0.1
//!       cache.internal: 127.0.0.2
//! ```

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ssm::target::is_instance_id;

/// AgentVersion reported when none is given: a real, recent agent release.
pub const DEFAULT_AGENT_VERSION: &str = "3.3.987.0";

/// One simulated managed instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    /// The `Name` tag, matched by the `tag:Name` filter.
    pub name: Option<String>,
    pub ip_address: Option<String>,
    pub computer_name: Option<String>,
    /// Offline instances answer StartSession with `TargetNotConnected`.
    pub online: bool,
    pub agent_version: String,
    /// Where the instance's SSH port (`portNumber` 22) is mapped on this machine.
    pub address: SocketAddr,
    /// Host names the instance reaches (lowercase) and the loopback IPs standing for them, so
    /// `host=db.internal` works in tests and in the demo without touching the system resolver.
    pub hosts: BTreeMap<String, IpAddr>,
}

impl Instance {
    /// An online instance with no tags and the default agent version.
    pub fn new(id: impl Into<String>, address: SocketAddr) -> Self {
        Self {
            id: id.into(),
            name: None,
            ip_address: None,
            computer_name: None,
            online: true,
            agent_version: DEFAULT_AGENT_VERSION.to_owned(),
            address,
            hosts: BTreeMap::new(),
        }
    }

    /// The IP the instance's `hosts` map gives `name` (case-insensitive, as DNS is).
    pub fn host_ip(&self, name: &str) -> Option<IpAddr> {
        self.hosts.get(&name.to_ascii_lowercase()).copied()
    }

    /// Where a session for `port` connects: `address` for 22 (the mapped SSH port), otherwise
    /// `address`'s IP with that port.
    pub fn dial_addr(&self, port: u16) -> SocketAddr {
        if port == 22 {
            self.address
        } else {
            SocketAddr::new(self.address.ip(), port)
        }
    }
}

/// Why an instance definition was refused; each variant names the offending part.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("expected ID=ADDRESS (e.g. i-0123456789abcdef0=127.0.0.1:2222), got `{0}`")]
    MissingAddress(String),
    #[error(
        "`{0}` is not an instance id: expected i- or mi- followed by 8 to 17 lowercase hex digits"
    )]
    BadId(String),
    #[error("`{0}` is not an IP:PORT address (use 127.0.0.1:PORT or [::1]:PORT; port 1-65535)")]
    BadAddress(String),
    #[error("ip `{0}` is not an IP address")]
    BadIp(String),
    #[error("agent version `{0}` must be digits and dots, like {DEFAULT_AGENT_VERSION}")]
    BadAgentVersion(String),
    #[error("`{0}` needs a value (`{0}=…`)")]
    EmptyValue(&'static str),
    #[error("`offline` takes no value, got `{0}`")]
    OfflineWithValue(String),
    #[error("option `{0}` is given twice")]
    DuplicateOption(&'static str),
    #[error("host `{0}`: expected NAME@IP with a loopback IP, e.g. host=db.internal@127.0.0.1")]
    BadHost(String),
    #[error("host `{0}` is mapped twice")]
    DuplicateHost(String),
    #[error("unknown option `{0}`: expected name=, ip=, computer=, agent=, host= or offline")]
    UnknownOption(String),
    #[error("instance {0} is defined twice")]
    DuplicateId(String),
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Yaml {
        path: PathBuf,
        source: serde_yaml_ng::Error,
    },
    #[error("{}: instances[{index}]: {source}", path.display())]
    Entry {
        path: PathBuf,
        index: usize,
        source: Box<Self>,
    },
}

/// Parses one `--target` value (grammar in the module docs).
pub fn parse_target_flag(spec: &str) -> Result<Instance, InstanceError> {
    let mut parts = spec.split(',');
    let head = parts.next().unwrap_or_default();
    let Some((id, addr)) = head.split_once('=') else {
        return Err(InstanceError::MissingAddress(spec.to_owned()));
    };
    let mut raw = RawInstance {
        id: id.trim().to_owned(),
        address: addr.trim().to_owned(),
        ..RawInstance::default()
    };
    let mut seen = HashSet::new();
    for opt in parts {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (opt.trim(), None),
        };
        let (name, slot): (&'static str, &mut Option<String>) = match key {
            "host" => {
                let Some((host, ip)) = value.and_then(|v| v.split_once('@')) else {
                    return Err(InstanceError::BadHost(value.unwrap_or_default().to_owned()));
                };
                if raw.hosts.insert(host.to_owned(), ip.to_owned()).is_some() {
                    return Err(InstanceError::DuplicateHost(host.to_owned()));
                }
                continue;
            }
            "offline" => {
                if let Some(v) = value {
                    return Err(InstanceError::OfflineWithValue(v.to_owned()));
                }
                if !seen.insert("offline") {
                    return Err(InstanceError::DuplicateOption("offline"));
                }
                raw.offline = true;
                continue;
            }
            "name" => ("name", &mut raw.name),
            "ip" => ("ip", &mut raw.ip),
            "computer" => ("computer", &mut raw.computer),
            "agent" => ("agent", &mut raw.agent),
            other => return Err(InstanceError::UnknownOption(other.to_owned())),
        };
        if !seen.insert(name) {
            return Err(InstanceError::DuplicateOption(name));
        }
        *slot = Some(value.unwrap_or_default().to_owned());
    }
    raw.validate()
}

/// Reads a YAML instances file (format in the module docs).
pub fn load_file(path: &Path) -> Result<Vec<Instance>, InstanceError> {
    let text = std::fs::read_to_string(path).map_err(|source| InstanceError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_yaml(&text).map_err(|e| match e {
        InstanceError::Yaml { source, .. } => InstanceError::Yaml {
            path: path.to_owned(),
            source,
        },
        InstanceError::Entry { index, source, .. } => InstanceError::Entry {
            path: path.to_owned(),
            index,
            source,
        },
        other => other,
    })
}

/// Parses the text of an instances file; errors carry an empty path (see [`load_file`]).
pub fn parse_yaml(text: &str) -> Result<Vec<Instance>, InstanceError> {
    let file: RawFile = serde_yaml_ng::from_str(text).map_err(|source| InstanceError::Yaml {
        path: PathBuf::new(),
        source,
    })?;
    let list = file
        .instances
        .into_iter()
        .enumerate()
        .map(|(index, raw)| {
            raw.validate().map_err(|e| InstanceError::Entry {
                path: PathBuf::new(),
                index,
                source: Box::new(e),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_unique(&list)?;
    Ok(list)
}

/// Refuses two definitions of one id, which would make lookups depend on order.
pub fn check_unique(list: &[Instance]) -> Result<(), InstanceError> {
    let mut seen = HashSet::new();
    match list.iter().find(|i| !seen.insert(i.id.as_str())) {
        Some(dup) => Err(InstanceError::DuplicateId(dup.id.clone())),
        None => Ok(()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    instances: Vec<RawInstance>,
}

/// The shared shape of a flag and a YAML entry before validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    id: String,
    address: String,
    name: Option<String>,
    ip: Option<String>,
    computer: Option<String>,
    agent: Option<String>,
    #[serde(default)]
    offline: bool,
    #[serde(default)]
    hosts: BTreeMap<String, String>,
}

impl RawInstance {
    fn validate(self) -> Result<Instance, InstanceError> {
        if !is_instance_id(&self.id) {
            return Err(InstanceError::BadId(self.id));
        }
        let address: SocketAddr = match self.address.parse() {
            Ok(a @ SocketAddr::V4(_) | a @ SocketAddr::V6(_)) if a.port() != 0 => a,
            _ => return Err(InstanceError::BadAddress(self.address)),
        };
        let name = non_empty("name", self.name)?;
        let computer_name = non_empty("computer", self.computer)?;
        let ip_address = non_empty("ip", self.ip)?;
        if let Some(ip) = &ip_address {
            if ip.parse::<IpAddr>().is_err() {
                return Err(InstanceError::BadIp(ip.clone()));
            }
        }
        let agent_version = match non_empty("agent", self.agent)? {
            Some(v) if v.bytes().all(|b| b.is_ascii_digit() || b == b'.') => v,
            Some(v) => return Err(InstanceError::BadAgentVersion(v)),
            None => DEFAULT_AGENT_VERSION.to_owned(),
        };
        let hosts = validate_hosts(self.hosts)?;
        let (id, online) = (self.id, !self.offline);
        Ok(Instance {
            id,
            name,
            ip_address,
            computer_name,
            online,
            agent_version,
            address,
            hosts,
        })
    }
}

/// Names to loopback IPs: the simulator dials nothing off this machine on a name's behalf.
/// Names are lowercased, so two spellings of one name are a duplicate.
fn validate_hosts(
    raw: BTreeMap<String, String>,
) -> Result<BTreeMap<String, IpAddr>, InstanceError> {
    let mut hosts = BTreeMap::new();
    for (name, text) in raw {
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        let parsed = bare.parse::<IpAddr>().ok().filter(IpAddr::is_loopback);
        let (Some(ip), true) = (parsed, is_host_name(&name)) else {
            return Err(InstanceError::BadHost(format!("{name}@{text}")));
        };
        if hosts.insert(name.to_ascii_lowercase(), ip).is_some() {
            return Err(InstanceError::DuplicateHost(name));
        }
    }
    Ok(hosts)
}

fn is_host_name(s: &str) -> bool {
    (1..=253).contains(&s.len())
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn non_empty(key: &'static str, v: Option<String>) -> Result<Option<String>, InstanceError> {
    match v {
        Some(s) if s.trim().is_empty() => Err(InstanceError::EmptyValue(key)),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests;
