//! A simulated EC2 Instance Connect on the simulator's HTTP port: `SendSSHPublicKey` in AWS
//! JSON 1.1 (`X-Amz-Target: AWSEC2InstanceConnectService.SendSSHPublicKey`, botocore's
//! shapes and error names), and the per-instance metadata path real instances read pushed
//! keys from.
//!
//! A real instance never receives the key directly: the service stores it for 60 s, and the
//! instance's sshd runs an `AuthorizedKeysCommand` that reads IMDS
//! `/latest/meta-data/managed-ssh-keys/active-keys/<user>/`. The simulator serves the same
//! document per instance at [`IMDS_PREFIX`]`<instance-id>/latest/…`, so a real `sshd` whose
//! `AuthorizedKeysCommand` curls it authenticates exactly as an EC2 instance would. The store
//! ([`PushedKeys`]) is sans-IO: callers pass the time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::sim::aws_error::ApiError;
use crate::sim::registry::Registry;

/// The IAM service prefix of its actions (`sim --deny ec2-instance-connect:SendSSHPublicKey`).
pub const IAM_SERVICE: &str = "ec2-instance-connect";
/// `X-Amz-Target` prefix of the EC2 Instance Connect service.
pub const TARGET_PREFIX: &str = "AWSEC2InstanceConnectService.";
/// Operations answered.
pub const OPERATIONS: [&str; 1] = ["SendSSHPublicKey"];
/// Where the simulator serves each instance's metadata: `<prefix><instance-id>/latest/…`.
pub const IMDS_PREFIX: &str = "/_sim/imds/";
/// The IMDS path of a user's pushed keys, below an instance's metadata root.
pub const ACTIVE_KEYS_PATH: &str = "/latest/meta-data/managed-ssh-keys/active-keys/";
/// How long the service keeps a pushed key (the real service: 60 s).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
/// Keys kept per (instance, user): a client pushing in a loop cannot grow the store.
const MAX_KEYS_PER_USER: usize = 16;
/// (instance, user) pairs kept at once; expired ones are dropped first.
const MAX_USERS: usize = 4096;

/// botocore's error names for SendSSHPublicKey.
pub mod kind {
    pub const INVALID_ARGS: &str = "InvalidArgsException";
    pub const NOT_FOUND: &str = "EC2InstanceNotFoundException";
    pub const AUTH: &str = "AuthException";
    pub const THROTTLING: &str = "ThrottlingException";
}

/// Keys pushed with SendSSHPublicKey, each valid for the store's lifetime. Clones share them
/// (the API answers with one clone, the metadata path and the demo SSH server read others).
#[derive(Clone)]
pub struct PushedKeys(Arc<Mutex<Inner>>);

struct Inner {
    lifetime: Duration,
    /// (instance id, OS user) → (expiry, OpenSSH public key line), oldest first.
    keys: HashMap<(String, String), Vec<(Instant, String)>>,
}

impl Default for PushedKeys {
    fn default() -> Self {
        Self::new(DEFAULT_LIFETIME)
    }
}

impl std::fmt::Debug for PushedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PushedKeys(lifetime {:?})", self.lock().lifetime)
    }
}

impl PushedKeys {
    /// A store whose keys expire `lifetime` after their push (tests use a short one).
    pub fn new(lifetime: Duration) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            lifetime,
            keys: HashMap::new(),
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `key` for `user` on `instance` until `now` + the lifetime.
    pub fn push(&self, instance: &str, user: &str, key: &str, now: Instant) {
        let mut inner = self.lock();
        let expiry = now + inner.lifetime;
        inner.keys.retain(|_, ks| {
            ks.retain(|(until, _)| *until > now);
            !ks.is_empty()
        });
        let id = (instance.to_owned(), user.to_owned());
        if !inner.keys.contains_key(&id) && inner.keys.len() >= MAX_USERS {
            return;
        }
        let ks = inner.keys.entry(id).or_default();
        if ks.len() >= MAX_KEYS_PER_USER {
            ks.remove(0);
        }
        ks.push((expiry, key.to_owned()));
    }

    /// The keys `user` may log into `instance` with at `now`, oldest first.
    pub fn active(&self, instance: &str, user: &str, now: Instant) -> Vec<String> {
        let id = (instance.to_owned(), user.to_owned());
        self.lock()
            .keys
            .get(&id)
            .map(|ks| {
                ks.iter()
                    .filter(|(until, _)| *until > now)
                    .map(|(_, k)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendIn {
    instance_id: Option<String>,
    #[serde(rename = "InstanceOSUser")]
    instance_os_user: Option<String>,
    #[serde(rename = "SSHPublicKey")]
    ssh_public_key: Option<String>,
    /// Accepted and ignored: the simulator has no zones.
    #[allow(dead_code)]
    availability_zone: Option<String>,
}

/// Answers one EC2 Instance Connect operation (routing and authentication already checked).
pub fn dispatch(registry: &Registry, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    if !OPERATIONS.contains(&op) {
        return Err(ApiError::new(
            crate::sim::aws_error::kind::UNKNOWN_OPERATION,
            format!("X-Amz-Target {TARGET_PREFIX}{op} is not an operation the simulator answers"),
        ));
    }
    let req: SendIn = crate::sim::api::decode(body)?;
    let (instance, user, key) = check(req)?;
    if !registry.has_instance(&instance) {
        return Err(ApiError::new(
            kind::NOT_FOUND,
            format!("Instance {instance} not found"),
        ));
    }
    registry
        .pushed_keys()
        .push(&instance, &user, &key, Instant::now());
    tracing::debug!(instance, user, "sim: SendSSHPublicKey stored a key");
    Ok(json!({ "RequestId": uuid::Uuid::new_v4().to_string(), "Success": true }))
}

/// The model's constraints, as the service words its `InvalidArgsException`s.
fn check(req: SendIn) -> Result<(String, String, String), ApiError> {
    let invalid = |m: &str| ApiError::new(kind::INVALID_ARGS, m);
    let instance = req.instance_id.unwrap_or_default();
    let hex = instance
        .strip_prefix("i-")
        .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !hex || !(10..=32).contains(&instance.len()) {
        return Err(invalid(
            "Instance ID must be an EC2 instance id (i- followed by hexadecimal digits)",
        ));
    }
    let user = req.instance_os_user.unwrap_or_default();
    let user_ok = (1..=32).contains(&user.len())
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@._-$".contains(&b));
    if !user_ok {
        return Err(invalid("Instance OS user is not a valid user name"));
    }
    let key = req.ssh_public_key.unwrap_or_default().trim().to_owned();
    let parsed = russh::keys::PublicKey::from_openssh(&key).is_ok();
    if !(80..=4096).contains(&key.len()) || !parsed {
        return Err(invalid(
            "SSH public key is not a valid OpenSSH public key (e.g. ssh-ed25519 AAAA…)",
        ));
    }
    Ok((instance, user, key))
}

/// The metadata document at `path` (below [`IMDS_PREFIX`]): the active keys of a user, one
/// per line, as IMDS serves them. `None`: no such document (HTTP 404).
pub fn imds(registry: &Registry, path: &str, now: Instant) -> Option<String> {
    let rest = path.strip_prefix(IMDS_PREFIX)?;
    let (instance, rest) = rest.split_once('/')?;
    let user = rest
        .strip_prefix(ACTIVE_KEYS_PATH.trim_start_matches('/'))?
        .trim_end_matches('/');
    if user.is_empty() || user.contains('/') || !registry.has_instance(instance) {
        return None;
    }
    let keys = registry.pushed_keys().active(instance, user, now);
    Some(keys.iter().map(|k| format!("{k}\n")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test";

    #[test]
    fn a_pushed_key_is_active_for_its_lifetime_and_only_for_its_user_and_instance() {
        let keys = PushedKeys::new(Duration::from_secs(60));
        let t0 = Instant::now();
        keys.push("i-0123456789abcdef0", "ec2-user", KEY, t0);
        let later = |s| t0 + Duration::from_secs(s);
        assert_eq!(
            keys.active("i-0123456789abcdef0", "ec2-user", later(59)),
            [KEY]
        );
        assert!(keys
            .active("i-0123456789abcdef0", "ec2-user", later(60))
            .is_empty());
        assert!(keys.active("i-0123456789abcdef0", "root", t0).is_empty());
        assert!(keys
            .active("i-0fedcba9876543210", "ec2-user", t0)
            .is_empty());
    }

    #[test]
    fn pushes_in_a_loop_keep_a_bounded_number_of_keys() {
        let keys = PushedKeys::default();
        let t0 = Instant::now();
        for _ in 0..100 {
            keys.push("i-0123456789abcdef0", "u", KEY, t0);
        }
        assert_eq!(
            keys.active("i-0123456789abcdef0", "u", t0).len(),
            MAX_KEYS_PER_USER
        );
    }

    #[test]
    fn send_checks_the_model_constraints() {
        let req = |id: &str, user: &str, key: &str| SendIn {
            instance_id: Some(id.into()),
            instance_os_user: Some(user.into()),
            ssh_public_key: Some(key.into()),
            availability_zone: None,
        };
        assert!(check(req("i-0123456789abcdef0", "ec2-user", KEY)).is_ok());
        for bad in [
            req("mi-0123456789abcdef0", "ec2-user", KEY),
            req("i-0123456789abcdef0", "no/slash", KEY),
            req("i-0123456789abcdef0", "ec2-user", "ssh-ed25519 garbage"),
        ] {
            assert_eq!(check(bad).unwrap_err().kind, kind::INVALID_ARGS);
        }
    }
}
