//! Command-line layers: [`Overrides`] applied onto a validated [`Config`], and the one-upstream
//! config of `serve --target …` ([`AdHoc`]). Issues are named after flags (`--listen`,
//! `--pool-size`, ...), and a failed [`apply`] leaves the config untouched.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::check::{
    abs_path, action, listen_spec, log_level, pool_size, port, profile, region, socket_path,
    target, user_name, Issues,
};
use super::forward::{clashes, socket_of};
use super::{
    AdHoc, AwsDefaults, Config, Issue, Overrides, SshUpstream, Target, Upstream, UpstreamKind, Via,
    AD_HOC_UPSTREAM, DEFAULT_KEEPALIVE_SECS, DEFAULT_POOL_SIZE, DEFAULT_SSH_PORT,
};
use crate::route::Action;

pub(super) fn apply(
    cfg: &mut Config,
    o: &Overrides,
    home: Option<&Path>,
) -> Result<(), Vec<Issue>> {
    let mut v = Issues::default();
    let new_profile = o
        .profile
        .as_deref()
        .and_then(|p| v.check("--profile", profile(p)));
    let new_region = o
        .region
        .as_deref()
        .and_then(|r| v.check("--region", region(r)));
    let mut new_listeners = Vec::new();
    for s in &o.listen {
        new_listeners.extend(v.check("--listen", listen_spec(s, o.allow_remote, home)));
    }
    for l in &new_listeners {
        let socket = socket_of(l);
        if let Some(i) = cfg
            .forwards
            .iter()
            .position(|f| clashes(&f.listen, &socket))
        {
            v.push(
                "--listen",
                format!("{socket} is also forwards[{i}].listen in the config; pick another"),
            );
        }
    }
    let declared: BTreeSet<String> = cfg.upstreams.iter().map(|u| u.name.clone()).collect();
    let new_default = o
        .default
        .as_deref()
        .and_then(|d| v.check("--default", action(d, &declared)));
    let control_socket = o
        .control_socket
        .as_deref()
        .and_then(|s| v.check("--control-socket", socket_path(s, home)));
    let state_dir = o
        .state_dir
        .as_deref()
        .and_then(|s| v.check("--state-dir", abs_path(s, home)));
    let level = o
        .log_level
        .as_deref()
        .and_then(|l| v.check("--log-level", log_level(l)));
    v.finish(())?;
    set_aws(cfg, new_profile, new_region);
    if !new_listeners.is_empty() {
        cfg.listeners = new_listeners;
    }
    if let Some(d) = new_default {
        cfg.default = d;
    }
    cfg.control_socket = control_socket.or(cfg.control_socket.take());
    cfg.state_dir = state_dir.or(cfg.state_dir.take());
    cfg.log_level = level.or(cfg.log_level.take());
    Ok(())
}

/// `--profile` and `--region` replace the file's everywhere: `aws:`, every upstream (a profile
/// only where no inline credentials are given), every host alias, every forward to an instance.
fn set_aws(cfg: &mut Config, profile: Option<String>, region: Option<String>) {
    if let Some(p) = profile {
        cfg.aws.profile = Some(p.clone());
        cfg.upstreams
            .iter_mut()
            .filter(|u| u.credentials.is_none())
            .for_each(|u| u.profile = Some(p.clone()));
        cfg.hosts
            .values_mut()
            .for_each(|h| h.profile = Some(p.clone()));
        instance_forwards(cfg).for_each(|(profile, _)| *profile = Some(p.clone()));
    }
    if let Some(r) = region {
        cfg.aws.region = Some(r.clone());
        cfg.upstreams
            .iter_mut()
            .for_each(|u| u.region = Some(r.clone()));
        cfg.hosts
            .values_mut()
            .for_each(|h| h.region = Some(r.clone()));
        instance_forwards(cfg).for_each(|(_, region)| *region = Some(r.clone()));
    }
}

/// The profile and region of each forward that goes straight to an instance (the ones
/// `--profile` and `--region` replace, as they do for host aliases).
fn instance_forwards(
    cfg: &mut Config,
) -> impl Iterator<Item = (&mut Option<String>, &mut Option<String>)> {
    cfg.forwards.iter_mut().filter_map(|f| match &mut f.via {
        Via::Instance {
            profile, region, ..
        } => Some((profile, region)),
        Via::Upstream(_) => None,
    })
}

pub(super) fn ad_hoc(spec: &AdHoc, home: Option<&Path>) -> Result<Config, Vec<Issue>> {
    let mut v = Issues::default();
    if spec.targets.is_empty() {
        v.push(
            "--target",
            "missing; pass --target i-0123456789abcdef0 (an instance id or name)",
        );
    }
    let targets: Vec<Target> = spec
        .targets
        .iter()
        .filter_map(|t| v.check("--target", target(t)))
        .collect();
    let user = if spec.user.is_empty() {
        v.push(
            "--user",
            "missing; pass --user ec2-user (the SSH login on the bastion)",
        );
        None
    } else {
        v.check("--user", user_name(&spec.user))
    };
    let identity_files: Vec<PathBuf> = spec
        .identity_files
        .iter()
        .filter_map(|f| v.check("--identity", abs_path(f, home)))
        .collect();
    if spec.identity_files.is_empty() && !spec.ssh_agent {
        v.push(
            "--identity",
            "no SSH authentication; pass --identity ~/.ssh/id_ed25519 or --ssh-agent",
        );
    }
    let port = spec
        .port
        .and_then(|n| v.check("--port", port(n)))
        .unwrap_or(DEFAULT_SSH_PORT);
    let pool = match spec.pool_size {
        Some(n) => v.check("--pool-size", pool_size(n)),
        None => NonZeroUsize::new(DEFAULT_POOL_SIZE),
    };
    let aws = AwsDefaults {
        profile: spec
            .profile
            .as_deref()
            .and_then(|p| v.check("--profile", profile(p))),
        region: spec
            .region
            .as_deref()
            .and_then(|r| v.check("--region", region(r))),
    };
    let (Some(user), Some(pool_size)) = (user, pool) else {
        return Err(v.into_issues());
    };
    let upstream = Upstream {
        name: AD_HOC_UPSTREAM.to_owned(),
        targets,
        profile: aws.profile.clone(),
        region: aws.region.clone(),
        credentials: None,
        kind: UpstreamKind::Ssh(SshUpstream {
            user,
            identity_files,
            ssh_agent: spec.ssh_agent,
            instance_connect: false,
            port,
            pool_size,
            host_key_policy: spec.host_key_policy.unwrap_or_default(),
            lazy: false,
            keepalive: Some(Duration::from_secs(DEFAULT_KEEPALIVE_SECS)),
        }),
    };
    v.finish(Config {
        aws,
        upstreams: vec![upstream],
        default: Action::Upstream(AD_HOC_UPSTREAM.to_owned()),
        ..Config::default()
    })
}
