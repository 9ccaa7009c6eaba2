//! Check 5, for `doctor <target>`: the target resolves as `stdio` resolves it (id, Name tag,
//! IP, computer name or `hosts:` alias), its agent is online, and its agent version and
//! platform support what session-proxy uses.
//!
//! Version gates (reference §4.3, the plugin's own): agents above 3.0.196.0 multiplex port
//! forwarding ([`crate::port::MUX_AGENT_VERSION`]); older ones get basic forwarding, one
//! connection per session. The reference gives no agent-version threshold for separate
//! stdout/stderr (a document setting) or KMS (a preference), so neither is gated on the
//! version here. `exec`'s wrapper of AWS-StartNonInteractiveCommand runs `sh -c`: Linux only.

use super::identity::CALL_TIMEOUT;
use super::report::Check;
use crate::exit::codes;
use crate::port::MUX_AGENT_VERSION;
use crate::ssm::api::{ApiError, ListedInstance, SsmApi};
use crate::ssm::payload::version_greater;
use crate::ssm::target::{self, TargetError};

/// The `target` and `agent` lines for `name` (what the `asked` alias stands for, or `asked`
/// itself).
pub async fn check(api: &SsmApi, asked: &str, name: &str) -> Vec<Check> {
    let id = match bounded(target::resolve(api, name)).await {
        Ok(id) => id,
        Err(e) => return vec![unresolved(&e), Check::skip("agent", "no instance")],
    };
    let filter = [("InstanceIds".to_owned(), vec![id.clone()])];
    let listed = match bounded(api.list_instances(&filter)).await {
        Ok(l) => l,
        Err(e) => return vec![unresolved(&e.into()), Check::skip("agent", "no instance")],
    };
    let Some(inst) = listed.instances.into_iter().next() else {
        let e = TargetError::UnknownInstance { id };
        return vec![unresolved(&e), Check::skip("agent", "no instance")];
    };
    let platform_type = bounded(api.platform(&id)).await.ok().flatten();
    vec![online(asked, &inst), agent(&inst, platform_type.as_deref())]
}

/// `fut`, or a transport error once [`CALL_TIMEOUT`] has passed.
async fn bounded<T, E: From<ApiError>>(
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout(CALL_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| {
            Err(E::from(ApiError::Transport {
                operation: "DescribeInstanceInformation",
                message: format!("no answer within {CALL_TIMEOUT:?}"),
            }))
        })
}

fn unresolved(e: &TargetError) -> Check {
    let fix = match e {
        TargetError::NotFound { .. } | TargetError::UnknownInstance { .. } => {
            "`session-proxy instances` lists what this account and region reach; check --region and --profile"
        }
        TargetError::Ambiguous { .. } => "name one instance: use its id",
        TargetError::Offline { .. } => {
            "start the instance, or check its SSM agent (`systemctl status amazon-ssm-agent`) and instance role"
        }
        TargetError::Api(_) => "see the endpoint and permission checks above",
    };
    let code = match e {
        TargetError::Api(ApiError::Credentials(_)) => codes::NO_PERM,
        TargetError::Api(_) => codes::UNAVAILABLE,
        _ => codes::NO_HOST,
    };
    Check::fail("target", e.to_string(), fix, code)
}

fn online(name: &str, i: &ListedInstance) -> Check {
    const NAME: &str = "target";
    let shown = if name == i.instance_id {
        name.to_owned()
    } else {
        format!("{name} is {}", i.instance_id)
    };
    let ping = i.ping_status.as_deref().unwrap_or("no PingStatus");
    let last = i.last_ping.as_deref().unwrap_or("never");
    let platform = i.platform.as_deref().unwrap_or("unknown platform");
    if ping == "Online" {
        return Check::ok(NAME, format!("{shown}: Online, {platform}"));
    }
    Check::fail(
        NAME,
        format!(
            "{shown}: {ping} (last ping {last}): its agent is not connected to Session Manager"
        ),
        "start the instance, or check its SSM agent (`systemctl status amazon-ssm-agent`), its \
         instance role (AmazonSSMManagedInstanceCore) and its route to ssm/ssmmessages",
        codes::NO_HOST,
    )
}

/// What the agent version and platform allow, as (supported, degraded) feature lists.
pub fn features(version: &str, platform_type: Option<&str>) -> (Vec<String>, Vec<String>) {
    let (mut good, mut degraded) = (Vec::new(), Vec::new());
    if version_greater(version, MUX_AGENT_VERSION) {
        good.push("multiplexed port forwarding".to_owned());
    } else {
        degraded.push(format!(
            "port forwards use basic mode, one connection at a time per session (agent not above {MUX_AGENT_VERSION})"
        ));
    }
    match platform_type {
        Some(p) if p.eq_ignore_ascii_case("Linux") => good.push("exec's sh -c wrapper".to_owned()),
        other => degraded.push(format!(
            "exec's wrapper of AWS-StartNonInteractiveCommand needs Linux (platform: {})",
            other.unwrap_or("unknown")
        )),
    }
    (good, degraded)
}

fn agent(i: &ListedInstance, platform_type: Option<&str>) -> Check {
    const NAME: &str = "agent";
    let Some(version) = i.agent_version.as_deref() else {
        return Check::warn(NAME, "the agent reports no version", "update the SSM agent");
    };
    let (good, degraded) = features(version, platform_type);
    if degraded.is_empty() {
        return Check::ok(NAME, format!("{version}: {}", good.join(", ")));
    }
    Check::warn(
        NAME,
        format!("{version}: {}", degraded.join("; ")),
        "update the SSM agent (`sudo snap refresh amazon-ssm-agent` or the package manager) for \
         full support",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_at_or_below_3_0_196_0_degrade_port_forwarding_and_non_linux_degrades_exec() {
        let (good, bad) = features("3.3.987.0", Some("Linux"));
        assert_eq!(good.len(), 2);
        assert!(bad.is_empty());
        let (_, bad) = features("3.0.196.0", Some("Linux"));
        assert_eq!(bad.len(), 1);
        assert!(bad[0].contains("basic mode"), "{bad:?}");
        let (_, bad) = features("3.0.196.1", Some("Windows"));
        assert_eq!(bad.len(), 1);
        assert!(bad[0].contains("needs Linux"), "{bad:?}");
    }
}
