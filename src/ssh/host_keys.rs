//! Host key verification against session-proxy's own known-hosts file, keyed by instance id.
//!
//! Through Session Manager every bastion is reached at the same "address" (the SSM service), so
//! OpenSSH's `~/.ssh/known_hosts`, keyed by host name, does not fit. This file records one line
//! per key, `instance-id key-type base64`, e.g. `i-0123456789abcdef0 ssh-ed25519 AAAAC3Nz…`.
//! The parsing and the decision are pure functions ([`parse`], [`lookup`], [`decide`]); only
//! [`KnownHosts::verify`] touches the file. Nothing here ever accepts a key silently: the `Off`
//! policy accepts anything but warns on every connect.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

/// What to do with a host key that is not (yet) in the file.
///
/// The one declaration of the policy: the config file (`host_key_policy:`, through serde), the
/// `--host-key-policy` flag (through [`FromStr`]) and [`decide`] all use this type, so the three
/// spellings cannot drift apart.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Trust on first use: record an unknown instance's key; refuse a changed key.
    #[default]
    AcceptNew,
    /// Refuse instances whose key is not already in the file.
    Strict,
    /// Accept any key (with a loud warning on every connect). For throwaway test setups only.
    Off,
}

impl HostKeyPolicy {
    /// The name as written in the config file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AcceptNew => "accept-new",
            Self::Strict => "strict",
            Self::Off => "off",
        }
    }
}

impl FromStr for HostKeyPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "accept-new" => Ok(Self::AcceptNew),
            "strict" => Ok(Self::Strict),
            "off" => Ok(Self::Off),
            other => Err(format!(
                "unknown host key policy {other:?}; use accept-new, strict or off"
            )),
        }
    }
}

impl fmt::Display for HostKeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key a refused server presented, and the file it was checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey {
    pub instance: String,
    pub key_type: String,
    pub key_base64: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub path: PathBuf,
}

impl PresentedKey {
    /// The line that would record this key.
    pub fn line(&self) -> String {
        format_line(
            &self.instance,
            Presented {
                key_type: &self.key_type,
                key_base64: &self.key_base64,
            },
        )
    }

    /// `ed25519` for `ssh-ed25519`, `ecdsa` for `ecdsa-sha2-nistp256`: the host key file name.
    fn short_type(&self) -> &str {
        let t = self.key_type.trim_start_matches("ssh-");
        t.split('-').next().unwrap_or(t)
    }
}

/// Why a host key was refused or the file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    #[error(
        "HOST KEY MISMATCH for {instance}: it presented the {key_type} key {fingerprint}, but {path} \
         records a different key for it (line {lines}). Someone may be intercepting the connection, \
         or the instance's host key was regenerated. If you know why it changed, delete line {lines} \
         of {path} and connect again",
        instance = .key.instance,
        key_type = .key.key_type,
        fingerprint = .key.fingerprint,
        path = .key.path.display(),
        lines = join_lines(.lines)
    )]
    Mismatch {
        key: Box<PresentedKey>,
        lines: Vec<usize>,
    },
    #[error(
        "the host key of {instance} ({key_type} {fingerprint}) is not in {path} and host_key_policy \
         is strict. Check the fingerprint (e.g. `ssh-keygen -lf /etc/ssh/ssh_host_{short}_key.pub` \
         on the instance), then add this line to {path}:\n{line}",
        instance = .key.instance,
        key_type = .key.key_type,
        fingerprint = .key.fingerprint,
        path = .key.path.display(),
        short = .key.short_type(),
        line = .key.line()
    )]
    Unknown { key: Box<PresentedKey> },
    #[error("{path}:{line}: {reason}; expected `instance-id key-type base64`, fix or delete the line", path = .path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("cannot use known-hosts file {path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn join_lines(lines: &[usize]) -> String {
    lines
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One recorded key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub instance: String,
    pub key_type: String,
    pub key_base64: String,
    /// 1-based line number, for error messages.
    pub line: usize,
}

/// A key as the server presented it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented<'a> {
    pub key_type: &'a str,
    pub key_base64: &'a str,
}

/// What the file says about a presented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A line matches instance, type and key.
    Known,
    /// The instance has no line at all.
    Unknown,
    /// The instance has lines, none with this key. A different key *type* counts too: the server
    /// offering a new type is exactly what a man in the middle with a fresh key would look like.
    Mismatch { lines: Vec<usize> },
}

/// What to do with the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accept,
    /// Accept and append the key to the file (first use).
    Record,
    /// Accept, but the policy is `Off`: warn.
    AcceptUnverified,
    RefuseUnknown,
    RefuseMismatch,
}

/// Parses the file's text; blank lines and `#` comments are skipped, anything else malformed
/// is an error naming the line (a silently skipped line could hide a key the user relies on).
pub fn parse(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let mut fields = t.split_whitespace();
        let (Some(instance), Some(key_type), Some(key_base64)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err((line, "expected three fields".into()));
        };
        if fields.next().is_some() {
            return Err((line, "unexpected text after the key".into()));
        }
        if !key_type.starts_with("ssh-") && !key_type.starts_with("ecdsa-") {
            return Err((line, format!("\"{key_type}\" is not an SSH key type")));
        }
        if !key_base64
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
        {
            return Err((line, "the key is not base64".into()));
        }
        out.push(Entry {
            instance: instance.to_owned(),
            key_type: key_type.to_owned(),
            key_base64: key_base64.to_owned(),
            line,
        });
    }
    Ok(out)
}

/// Looks a presented key up among the entries of one file.
pub fn lookup(entries: &[Entry], instance: &str, key: Presented<'_>) -> Lookup {
    let mine: Vec<&Entry> = entries.iter().filter(|e| e.instance == instance).collect();
    if mine.is_empty() {
        return Lookup::Unknown;
    }
    if mine
        .iter()
        .any(|e| e.key_type == key.key_type && e.key_base64 == key.key_base64)
    {
        return Lookup::Known;
    }
    Lookup::Mismatch {
        lines: mine.iter().map(|e| e.line).collect(),
    }
}

/// Applies the policy. A mismatch is refused under every policy except `Off`.
pub fn decide(policy: HostKeyPolicy, lookup: &Lookup) -> Decision {
    match (policy, lookup) {
        (HostKeyPolicy::Off, _) => Decision::AcceptUnverified,
        (_, Lookup::Known) => Decision::Accept,
        (HostKeyPolicy::AcceptNew, Lookup::Unknown) => Decision::Record,
        (HostKeyPolicy::Strict, Lookup::Unknown) => Decision::RefuseUnknown,
        (_, Lookup::Mismatch { .. }) => Decision::RefuseMismatch,
    }
}

/// The line recorded for a key.
pub fn format_line(instance: &str, key: Presented<'_>) -> String {
    format!("{instance} {} {}", key.key_type, key.key_base64)
}

/// Serialises appends within this process, so two connections to a new instance do not both
/// record it (duplicates would be harmless, but confusing to read).
static WRITE_LOCK: Mutex<()> = Mutex::new(());

const HEADER: &str = "# session-proxy known hosts: one `instance-id key-type base64` per line.\n\
# Delete a line to forget a key (the next connection records the new one under accept-new).\n";

/// The known-hosts file of session-proxy.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    path: PathBuf,
}

impl KnownHosts {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks `key` presented by `instance` under `policy`, recording it on first use.
    pub fn verify(
        &self,
        instance: &str,
        key: &russh::keys::PublicKey,
        policy: HostKeyPolicy,
    ) -> Result<(), HostKeyError> {
        use russh::keys::PublicKeyBase64;
        let key_type = key.algorithm().as_str().to_owned();
        let key_base64 = key.public_key_base64();
        let fingerprint = key.fingerprint(russh::keys::HashAlg::Sha256).to_string();
        let presented = Presented {
            key_type: &key_type,
            key_base64: &key_base64,
        };
        if policy == HostKeyPolicy::Off {
            tracing::warn!(
                "HOST KEY NOT VERIFIED for {instance} ({key_type} {fingerprint}): host_key_policy is \
                 off, so anyone able to intercept this connection can impersonate the bastion. Set \
                 host_key_policy to accept-new or strict."
            );
            return Ok(());
        }
        let _guard = WRITE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let entries = self.read()?;
        let found = lookup(&entries, instance, presented);
        match decide(policy, &found) {
            Decision::Accept | Decision::AcceptUnverified => Ok(()),
            Decision::Record => {
                self.append(&format_line(instance, presented))?;
                tracing::info!(
                    "recorded the host key of {instance} ({key_type} {fingerprint}) in {}",
                    self.path.display()
                );
                Ok(())
            }
            Decision::RefuseUnknown => Err(HostKeyError::Unknown {
                key: Box::new(self.offending(instance, key_type, key_base64, fingerprint)),
            }),
            Decision::RefuseMismatch => Err(HostKeyError::Mismatch {
                key: Box::new(self.offending(instance, key_type, key_base64, fingerprint)),
                lines: match found {
                    Lookup::Mismatch { lines } => lines,
                    _ => Vec::new(),
                },
            }),
        }
    }

    fn offending(
        &self,
        instance: &str,
        key_type: String,
        key_base64: String,
        fingerprint: String,
    ) -> PresentedKey {
        PresentedKey {
            instance: instance.to_owned(),
            key_type,
            key_base64,
            fingerprint,
            path: self.path.clone(),
        }
    }

    fn read(&self) -> Result<Vec<Entry>, HostKeyError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(HostKeyError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        parse(&text).map_err(|(line, reason)| HostKeyError::Malformed {
            path: self.path.clone(),
            line,
            reason,
        })
    }

    fn append(&self, line: &str) -> Result<(), HostKeyError> {
        let io = |source| HostKeyError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(io)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&self.path).map_err(io)?;
        let is_new = f.metadata().map(|m| m.len() == 0).unwrap_or(false);
        let mut text = String::new();
        if is_new {
            text.push_str(HEADER);
        }
        text.push_str(line);
        text.push('\n');
        // One write call, so concurrent processes appending to the same file do not interleave.
        f.write_all(text.as_bytes()).map_err(io)
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const ED2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn key<'a>(t: &'a str, b: &'a str) -> Presented<'a> {
        Presented {
            key_type: t,
            key_base64: b,
        }
    }

    #[test]
    fn parse_skips_comments_and_blank_lines_and_numbers_lines() {
        let text = format!("# header\n\ni-0123456789abcdef0 ssh-ed25519 {ED}\n  \ni-00000001 ecdsa-sha2-nistp256 {ED2}  \n");
        let e = parse(&text).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].instance, "i-0123456789abcdef0");
        assert_eq!(e[0].line, 3);
        assert_eq!(e[1].key_type, "ecdsa-sha2-nistp256");
        assert_eq!(e[1].line, 5);
    }

    #[test]
    fn parse_rejects_malformed_lines_with_their_number() {
        let cases = [
            ("i-1 ssh-ed25519\n", 1, "three fields"),
            (
                &*format!("# c\ni-1 ssh-ed25519 {ED} extra\n"),
                2,
                "after the key",
            ),
            (&*format!("i-1 rsa {ED}\n"), 1, "not an SSH key type"),
            ("i-1 ssh-ed25519 not*base64\n", 1, "not base64"),
        ];
        for (text, line, what) in cases {
            let (l, reason) = parse(text).unwrap_err();
            assert_eq!(l, line, "{text}");
            assert!(reason.contains(what), "{text}: {reason}");
        }
    }

    #[test]
    fn lookup_distinguishes_known_unknown_and_changed_keys() {
        let entries = parse(&format!(
            "i-1 ssh-ed25519 {ED}\ni-2 ssh-ed25519 {ED2}\ni-2 ecdsa-sha2-nistp256 {ED}\n"
        ))
        .unwrap();
        let cases = [
            ("i-1", key("ssh-ed25519", ED), Lookup::Known),
            ("i-3", key("ssh-ed25519", ED), Lookup::Unknown),
            (
                "i-1",
                key("ssh-ed25519", ED2),
                Lookup::Mismatch { lines: vec![1] },
            ),
            // A new key type for a known instance is a mismatch, not a first use.
            (
                "i-1",
                key("ecdsa-sha2-nistp256", ED),
                Lookup::Mismatch { lines: vec![1] },
            ),
            ("i-2", key("ecdsa-sha2-nistp256", ED), Lookup::Known),
            (
                "i-2",
                key("ssh-ed25519", ED),
                Lookup::Mismatch { lines: vec![2, 3] },
            ),
        ];
        for (inst, k, want) in cases {
            assert_eq!(lookup(&entries, inst, k), want, "{inst} {k:?}");
        }
    }

    #[test]
    fn policies_decide_as_documented() {
        use Decision::*;
        use HostKeyPolicy::*;
        let mm = Lookup::Mismatch { lines: vec![1] };
        let cases = [
            (AcceptNew, Lookup::Known, Accept),
            (AcceptNew, Lookup::Unknown, Record),
            (AcceptNew, mm.clone(), RefuseMismatch),
            (Strict, Lookup::Known, Accept),
            (Strict, Lookup::Unknown, RefuseUnknown),
            (Strict, mm.clone(), RefuseMismatch),
            (Off, Lookup::Known, AcceptUnverified),
            (Off, Lookup::Unknown, AcceptUnverified),
            (Off, mm, AcceptUnverified),
        ];
        for (p, l, want) in cases {
            assert_eq!(decide(p, &l), want, "{p} {l:?}");
        }
    }

    #[test]
    fn policy_names_round_trip_and_unknown_names_are_explained() {
        for p in [
            HostKeyPolicy::AcceptNew,
            HostKeyPolicy::Strict,
            HostKeyPolicy::Off,
        ] {
            assert_eq!(p.to_string().parse::<HostKeyPolicy>().unwrap(), p);
            // The config file spells it the same way (serde), so a name that works as a flag
            // works in the file and the other way round.
            let from_yaml: HostKeyPolicy = serde_yaml_ng::from_str(p.as_str()).unwrap();
            assert_eq!(from_yaml, p);
        }
        let e = "yes".parse::<HostKeyPolicy>().unwrap_err();
        assert!(e.contains("accept-new"), "{e}");
        assert!(serde_yaml_ng::from_str::<HostKeyPolicy>("yes").is_err());
    }

    fn test_key(seed: u8) -> russh::keys::PublicKey {
        let data = russh::keys::ssh_key::public::Ed25519PublicKey([seed; 32]);
        russh::keys::PublicKey::new(data.into(), "")
    }

    #[test]
    fn accept_new_records_first_key_then_refuses_a_changed_one_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/known_hosts");
        let kh = KnownHosts::new(&path);
        kh.verify(
            "i-0123456789abcdef0",
            &test_key(1),
            HostKeyPolicy::AcceptNew,
        )
        .unwrap();
        kh.verify(
            "i-0123456789abcdef0",
            &test_key(1),
            HostKeyPolicy::AcceptNew,
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().filter(|l| l.starts_with("i-")).count(),
            1,
            "{text}"
        );
        let line = text.lines().position(|l| l.starts_with("i-")).unwrap() + 1;
        let e = kh
            .verify(
                "i-0123456789abcdef0",
                &test_key(2),
                HostKeyPolicy::AcceptNew,
            )
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("MISMATCH"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("delete line {line}")), "{msg}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o077,
                0,
                "known_hosts must not be group/world accessible"
            );
        }
    }

    #[test]
    fn strict_refuses_unknown_instances_with_the_line_to_add() {
        let dir = tempfile::tempdir().unwrap();
        let kh = KnownHosts::new(dir.path().join("known_hosts"));
        let e = kh
            .verify("i-0123456789abcdef0", &test_key(1), HostKeyPolicy::Strict)
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("add this line"), "{msg}");
        assert!(
            msg.contains("i-0123456789abcdef0 ssh-ed25519 AAAA"),
            "{msg}"
        );
        assert!(!kh.path().exists(), "strict must not write the file");
    }

    #[test]
    fn off_accepts_changed_keys_without_touching_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let kh = KnownHosts::new(dir.path().join("known_hosts"));
        kh.verify("i-1", &test_key(1), HostKeyPolicy::AcceptNew)
            .unwrap();
        let before = std::fs::read_to_string(kh.path()).unwrap();
        kh.verify("i-1", &test_key(2), HostKeyPolicy::Off).unwrap();
        assert_eq!(std::fs::read_to_string(kh.path()).unwrap(), before);
    }
}
