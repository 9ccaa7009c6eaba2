//! Session targets: the one grammar of instance ids and names, and the lookup of a name.
//!
//! [pure] [`Target`] / [`is_instance_id`]: instance ids (`i-…`, `mi-…`) are used as given;
//! anything else is a name. The config file, the `stdio` argument and the simulator all parse
//! through here, so they agree on what an id is.
//! [shell] [`resolve`]: a name is resolved to exactly one online managed instance by Name tag,
//! IP address or computer name.

use std::fmt;
use std::str::FromStr;

use crate::ssm::api::{ApiError, InstanceInfo, SsmApi};

/// Instance ids have 8 (old EC2 ids) to 17 hex digits after the prefix.
const ID_DIGITS: std::ops::RangeInclusive<usize> = 8..=17;

/// A managed instance to open SSM sessions to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// `i-…` (EC2) or `mi-…` (hybrid activation), 8–17 lowercase hex digits.
    InstanceId(String),
    /// Anything else: an instance name resolved through SSM at connect time.
    Name(String),
}

/// Why a string is not a [`Target`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseTargetError {
    #[error("empty target; give an instance id such as i-0123456789abcdef0 or an instance name")]
    Empty,
    #[error(
        "{0:?} looks like an instance id but is not one: ids are i- or mi- followed by 8 to 17 \
         lowercase hex digits"
    )]
    BadInstanceId(String),
    #[error("{0:?} is not a usable instance name: no whitespace or control characters, at most 255 bytes")]
    BadName(String),
}

/// The digits of an id-shaped string: `i-` or `mi-` followed only by hex digits (either case).
/// Such a string is meant as an id, so a bad one is an error rather than a name; `i-love-cats`
/// is not id-shaped and stays a name.
fn id_digits(s: &str) -> Option<&str> {
    let digits = s.strip_prefix("i-").or_else(|| s.strip_prefix("mi-"))?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit())).then_some(digits)
}

/// Whether id digits are the form AWS prints: 8 to 17 of them, lowercase.
fn valid_digits(digits: &str) -> bool {
    ID_DIGITS.contains(&digits.len()) && !digits.bytes().any(|b| b.is_ascii_uppercase())
}

/// `i-` or `mi-` followed by 8 to 17 lowercase hex digits.
pub fn is_instance_id(s: &str) -> bool {
    id_digits(s).is_some_and(valid_digits)
}

impl Target {
    /// The id or name as written.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InstanceId(s) | Self::Name(s) => s,
        }
    }
}

impl FromStr for Target {
    type Err = ParseTargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ParseTargetError::Empty);
        }
        match id_digits(s) {
            Some(digits) if valid_digits(digits) => Ok(Self::InstanceId(s.to_owned())),
            Some(_) => Err(ParseTargetError::BadInstanceId(s.to_owned())),
            None if s.len() > 255 || s.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                Err(ParseTargetError::BadName(s.to_owned()))
            }
            None => Ok(Self::Name(s.to_owned())),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a name did not resolve to one instance.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no managed instance matches \"{name}\" (searched SSM instances by tag:Name, IP address and computer name); check the name, region and profile, or use an instance id")]
    NotFound { name: String },
    #[error("\"{name}\" matches {} online instances: {}; use an instance id or a more specific name", .candidates.len(), describe(.candidates))]
    Ambiguous {
        name: String,
        candidates: Vec<InstanceInfo>,
    },
    #[error("\"{name}\" matches only instances that are not connected to Session Manager: {}; start the instance or check its SSM agent", describe(.candidates))]
    Offline {
        name: String,
        candidates: Vec<InstanceInfo>,
    },
    /// StartSession said "not connected" and DescribeInstanceInformation does not know the
    /// id either: it is not a managed instance of this account and region.
    #[error("instance {id} is not registered with Session Manager in this account and region; check the id, --region and --profile (`aws ssm describe-instance-information`)")]
    UnknownInstance { id: String },
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl TargetError {
    /// True when retrying cannot help: the name or id matches nothing, or several instances.
    /// An offline instance may come back, so it is not permanent.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::NotFound { .. } | Self::Ambiguous { .. } | Self::UnknownInstance { .. } => true,
            Self::Offline { .. } => false,
            Self::Api(a) => a.is_permanent(),
        }
    }
}

/// After StartSession answered "not connected" for instance `id`: `UnknownInstance` when
/// SSM does not list the id at all (a typo, another account or region), `Ok` when it does
/// (the instance is registered but offline, which may fix itself) or when the lookup fails.
pub async fn check_registered(api: &SsmApi, id: &str) -> Result<(), TargetError> {
    match api
        .describe_instances("InstanceIds", &[id.to_owned()])
        .await
    {
        Ok(found) if found.is_empty() => Err(TargetError::UnknownInstance { id: id.to_owned() }),
        Err(ApiError::Service { code, .. }) if code.contains("InvalidInstanceId") => {
            Err(TargetError::UnknownInstance { id: id.to_owned() })
        }
        _ => Ok(()),
    }
}

fn describe(c: &[InstanceInfo]) -> String {
    c.iter()
        .map(|i| {
            let mut s = i.instance_id.clone();
            let extra: Vec<&str> = [i.name.as_deref(), i.ip_address.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            if !extra.is_empty() {
                s.push_str(&format!(" ({})", extra.join(", ")));
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Picks the single online instance among `matches`.
pub fn pick(name: &str, matches: Vec<InstanceInfo>) -> Result<String, TargetError> {
    let (online, offline): (Vec<_>, Vec<_>) = matches.into_iter().partition(|i| i.online);
    match online.as_slice() {
        [one] => Ok(one.instance_id.clone()),
        [] if offline.is_empty() => Err(TargetError::NotFound {
            name: name.to_owned(),
        }),
        [] => Err(TargetError::Offline {
            name: name.to_owned(),
            candidates: offline,
        }),
        _ => Err(TargetError::Ambiguous {
            name: name.to_owned(),
            candidates: online,
        }),
    }
}

/// Resolves `name` to an instance id (ids pass through without an API call).
pub async fn resolve(api: &SsmApi, name: &str) -> Result<String, TargetError> {
    if is_instance_id(name) {
        return Ok(name.to_owned());
    }
    let by_tag = api
        .describe_instances("tag:Name", &[name.to_owned()])
        .await?;
    if !by_tag.is_empty() {
        return pick(name, by_tag);
    }
    // No Name tag match: look for the IP address or computer name among all instances.
    let all = api
        .describe_instances(
            "PingStatus",
            &["Online".into(), "ConnectionLost".into(), "Inactive".into()],
        )
        .await?;
    let lower = name.to_ascii_lowercase();
    let matches: Vec<_> = all
        .into_iter()
        .filter(|i| {
            i.ip_address.as_deref() == Some(name)
                || i.computer_name.as_deref().is_some_and(|c| {
                    let c = c.to_ascii_lowercase();
                    c == lower || c.split('.').next() == Some(lower.as_str())
                })
        })
        .collect();
    pick(name, matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, online: bool) -> InstanceInfo {
        InstanceInfo {
            instance_id: id.into(),
            online,
            name: Some("web".into()),
            ip_address: None,
            computer_name: None,
        }
    }

    #[test]
    fn ids_names_and_malformed_ids_follow_one_grammar() {
        #[rustfmt::skip]
        let cases: &[(&str, Result<Target, ()>)] = &[
            ("i-0123456789abcdef0", Ok(Target::InstanceId("i-0123456789abcdef0".into()))),
            ("i-01234567", Ok(Target::InstanceId("i-01234567".into()))),
            ("mi-0123456789abcdef0", Ok(Target::InstanceId("mi-0123456789abcdef0".into()))),
            ("i-0123456", Err(())),
            ("i-0123", Err(())),
            ("i-0123456789abcdef01", Err(())),
            ("i-0123456789abcdef01234", Err(())),
            ("i-0123456789ABCDEF0", Err(())),
            ("i-", Ok(Target::Name("i-".into()))),
            ("mi-", Ok(Target::Name("mi-".into()))),
            ("x-0123456789abcdef0", Ok(Target::Name("x-0123456789abcdef0".into()))),
            ("i-love-cats", Ok(Target::Name("i-love-cats".into()))),
            ("prod-bastion", Ok(Target::Name("prod-bastion".into()))),
            ("web", Ok(Target::Name("web".into()))),
            ("", Err(())),
            ("a b", Err(())),
        ];
        for (input, want) in cases {
            let parsed = input.parse::<Target>();
            assert_eq!(parsed.clone().map_err(|_| ()), *want, "{input}");
            // `is_instance_id` is exactly "parses as an id", never a second opinion.
            let is_id = matches!(parsed, Ok(Target::InstanceId(_)));
            assert_eq!(is_instance_id(input), is_id, "{input}");
        }
        assert_eq!(Target::Name("x".into()).to_string(), "x");
    }

    #[test]
    fn malformed_ids_are_errors_that_state_the_id_grammar() {
        let e = "i-0123".parse::<Target>().unwrap_err();
        assert_eq!(e, ParseTargetError::BadInstanceId("i-0123".into()));
        assert!(e.to_string().contains("8 to 17"), "{e}");
    }

    #[test]
    fn single_online_match_wins_over_offline_ones() {
        let id = pick(
            "web",
            vec![inst("i-00000001", false), inst("i-00000002", true)],
        )
        .unwrap();
        assert_eq!(id, "i-00000002");
    }

    #[test]
    fn ambiguous_and_missing_names_are_errors_that_list_candidates() {
        let e = pick(
            "web",
            vec![inst("i-00000001", true), inst("i-00000002", true)],
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("i-00000001") && msg.contains("i-00000002"),
            "{msg}"
        );
        assert!(matches!(
            pick("web", vec![]),
            Err(TargetError::NotFound { .. })
        ));
        assert!(matches!(
            pick("web", vec![inst("i-00000001", false)]),
            Err(TargetError::Offline { .. })
        ));
    }
}
