//! The serde mirror of the YAML config file: field names, nesting and optionality exactly as a
//! user writes them, `deny_unknown_fields` everywhere, and no logic. Defaults, cross-references
//! and value checks belong to the validation in `config/mod.rs`, which turns a [`RawConfig`]
//! into a typed `Config` with errors that name the key path.
//!
//! Scalars that need checking (addresses, targets, `via:`) are kept as `String` here so the
//! validator, not serde, words the error. Mappings whose order matters or whose keys must be
//! unique are read into [`RawMap`], which keeps document order and refuses duplicate keys
//! (serde's own map impls silently keep the last one). Sections and lists are `Option` so that
//! a key left with everything under it commented out (YAML null) reads as "not given".
//!
//! Where serde alone can read a value into its final type, the raw mirror uses that type rather
//! than a copy of it: `host_key_policy` is [`HostKeyPolicy`], `kind` is [`UpstreamProtocol`] and
//! `credentials` is [`InlineCredentials`] (whose values the validator then checks in place).

use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::UpstreamProtocol;
use crate::redact::Redacted;
use crate::ssh::HostKeyPolicy;
use crate::ssm::api::InlineCredentials;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) struct RawConfig {
    pub(crate) aws: Option<RawAws>,
    pub(crate) listeners: Option<Vec<RawListener>>,
    #[serde(default)]
    pub(crate) upstreams: RawMap<RawUpstream>,
    pub(crate) routes: Option<Vec<RawRoute>>,
    pub(crate) default: Option<String>,
    pub(crate) resolve: Option<crate::route::Resolve>,
    #[serde(default)]
    pub(crate) hosts: RawMap<RawHost>,
    pub(crate) control_socket: Option<String>,
    pub(crate) state_dir: Option<String>,
    pub(crate) log_level: Option<String>,
    pub(crate) drain_timeout_secs: Option<u64>,
    pub(crate) forwards: Option<Vec<RawForward>>,
    pub(crate) exec: Option<RawExec>,
    /// `proxy:`: absent (`None`), present but empty (`Some(None)`: no proxy at all), or a URL.
    #[serde(default, deserialize_with = "present")]
    pub(crate) proxy: Option<Option<String>>,
}

/// Reads a key that is present, null or not, as `Some`: `proxy:` left empty means "no proxy",
/// which must not read as "not given" (the environment's proxy).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) struct RawExec {
    pub(crate) document: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) struct RawAws {
    pub(crate) profile: Option<String>,
    pub(crate) region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) struct RawListener {
    pub(crate) socks5: Option<String>,
    pub(crate) socks5_unix: Option<String>,
    /// An HTTP CONNECT listener (`http: 127.0.0.1:3128`).
    pub(crate) http: Option<String>,
    pub(crate) allow_remote: Option<bool>,
    pub(crate) users: Option<Vec<RawUser>>,
    pub(crate) max_connections: Option<u64>,
    pub(crate) idle_timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) struct RawUser {
    pub(crate) username: String,
    pub(crate) password: Redacted<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) struct RawUpstream {
    pub(crate) kind: Option<UpstreamProtocol>,
    pub(crate) targets: Option<Vec<String>>,
    pub(crate) profile: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) credentials: Option<InlineCredentials>,
    pub(crate) user: Option<String>,
    pub(crate) identity_files: Option<Vec<String>>,
    pub(crate) ssh_agent: Option<bool>,
    pub(crate) port: Option<u16>,
    pub(crate) pool_size: Option<u64>,
    pub(crate) host_key_policy: Option<HostKeyPolicy>,
    pub(crate) lazy: Option<bool>,
    pub(crate) keepalive_secs: Option<u64>,
    pub(crate) idle_timeout_secs: Option<u64>,
    pub(crate) sessions_per_destination: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) struct RawRoute {
    #[serde(rename = "match")]
    pub(crate) matches: String,
    pub(crate) via: String,
    pub(crate) resolve: Option<crate::route::Resolve>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) struct RawHost {
    pub(crate) target: String,
    pub(crate) profile: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) port: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) struct RawForward {
    pub(crate) listen: String,
    pub(crate) to: String,
    pub(crate) via: String,
    pub(crate) sessions: Option<u64>,
    pub(crate) allow_remote: Option<bool>,
    pub(crate) profile: Option<String>,
    pub(crate) region: Option<String>,
}

/// A YAML mapping read in document order, with duplicate keys refused.
#[derive(Debug)]
pub(crate) struct RawMap<V>(pub(crate) Vec<(String, V)>);

impl<V> Default for RawMap<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for RawMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = RawMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of names to settings")
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                // `upstreams:` with nothing after it: an empty mapping.
                Ok(RawMap(Vec::new()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                let mut seen = BTreeSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format!(
                            "duplicate key {key:?}; each name may appear once"
                        )));
                    }
                    let value = map.next_value::<V>()?;
                    entries.push((key, value));
                }
                Ok(RawMap(entries))
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}
