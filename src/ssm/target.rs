//! Session targets: instance ids (`i-…`, `mi-…`) are used as given; any other name is resolved
//! to exactly one online managed instance by Name tag, IP address or computer name.

use crate::ssm::api::{ApiError, InstanceInfo, SsmApi};

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
    #[error(transparent)]
    Api(#[from] ApiError),
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

/// `i-` or `mi-` followed by 8 to 17 lowercase hex digits.
pub fn is_instance_id(s: &str) -> bool {
    let rest = s.strip_prefix("i-").or_else(|| s.strip_prefix("mi-"));
    rest.is_some_and(|r| {
        (8..=17).contains(&r.len())
            && r.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
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
    fn instance_ids_are_recognised() {
        for ok in ["i-0123456789abcdef0", "i-01234567", "mi-0123456789abcdef0"] {
            assert!(is_instance_id(ok), "{ok}");
        }
        for bad in [
            "i-",
            "i-0123",
            "web",
            "i-0123456789ABCDEF0",
            "x-0123456789abcdef0",
            "i-0123456789abcdef01234",
        ] {
            assert!(!is_instance_id(bad), "{bad}");
        }
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
