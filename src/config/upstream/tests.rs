//! `upstreams:` kinds: the `ssm-port` defaults and ranges, and keys of the other kind refused
//! one issue each.

use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

use super::super::{parse, Config, ConfigError, Issue};
use super::{SsmPortUpstream, UpstreamKind, UpstreamProtocol};

fn cfg(yaml: &str) -> Config {
    parse(yaml, "test.yaml", Some(Path::new("/home/t"))).unwrap()
}

fn issues(yaml: &str) -> Vec<Issue> {
    match parse(yaml, "test.yaml", Some(Path::new("/home/t"))) {
        Err(ConfigError::Invalid { issues, .. }) => issues,
        other => panic!("expected validation issues, got {other:?}"),
    }
}

fn port_upstream(extra: &str) -> String {
    format!("aws: {{ region: eu-west-1 }}\nupstreams:\n  db: {{ kind: ssm-port, targets: [db-bastion]{extra} }}\n")
}

#[test]
fn an_ssm_port_upstream_needs_no_ssh_and_has_defaults() {
    let c = cfg(&port_upstream(""));
    let u = c.upstream("db").unwrap();
    assert_eq!(u.protocol(), UpstreamProtocol::SsmPort);
    assert!(u.ssh().is_none(), "no SSH settings to read");
    assert_eq!(u.region.as_deref(), Some("eu-west-1"));
    assert_eq!(
        u.kind,
        UpstreamKind::SsmPort(SsmPortUpstream {
            idle_timeout: Duration::from_secs(300),
            sessions_per_destination: NonZeroUsize::MIN,
        })
    );
    let u = cfg(&port_upstream(
        ", idle_timeout_secs: 86400, sessions_per_destination: 16",
    ))
    .upstreams
    .remove(0);
    assert_eq!(
        u.kind,
        UpstreamKind::SsmPort(SsmPortUpstream {
            idle_timeout: Duration::from_secs(86400),
            sessions_per_destination: NonZeroUsize::new(16).unwrap(),
        })
    );
}

#[test]
fn ssh_keys_on_an_ssm_port_upstream_are_refused_one_issue_each() {
    let all = ", user: ec2-user, identity_files: [~/.ssh/id], ssh_agent: true, port: 22, \
               host_key_policy: strict, keepalive_secs: 15, pool_size: 2, lazy: true";
    let paths: Vec<String> = issues(&port_upstream(all))
        .into_iter()
        .map(|i| {
            assert!(
                i.message
                    .starts_with("does not apply to kind: ssm-port upstreams"),
                "{i}"
            );
            i.path
        })
        .collect();
    assert_eq!(
        paths,
        [
            "upstreams.db.user",
            "upstreams.db.identity_files",
            "upstreams.db.ssh_agent",
            "upstreams.db.port",
            "upstreams.db.host_key_policy",
            "upstreams.db.keepalive_secs",
            "upstreams.db.pool_size",
            "upstreams.db.lazy",
        ]
    );
    let one = parse(&port_upstream(", user: ec2-user"), "c.yaml", None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        one,
        "c.yaml: upstreams.db.user: does not apply to kind: ssm-port upstreams (no SSH, no pool); remove it"
    );
}

#[test]
fn ssm_port_keys_on_an_ssh_upstream_are_refused() {
    let yaml = "upstreams:\n  b: { targets: [a], user: x, ssh_agent: true, idle_timeout_secs: 60, sessions_per_destination: 2 }\n";
    let got: Vec<String> = issues(yaml).iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "upstreams.b.idle_timeout_secs: applies only to kind: ssm-port upstreams; remove it, or set kind: ssm-port",
            "upstreams.b.sessions_per_destination: applies only to kind: ssm-port upstreams; remove it, or set kind: ssm-port",
        ]
    );
}

#[test]
fn ssm_port_ranges_are_checked() {
    #[rustfmt::skip]
    let cases = [
        (", idle_timeout_secs: 0", "upstreams.db.idle_timeout_secs", "0 is out of range; use 1 to 86400 (default 300)"),
        (", idle_timeout_secs: 86401", "upstreams.db.idle_timeout_secs", "86401 is out of range"),
        (", sessions_per_destination: 0", "upstreams.db.sessions_per_destination", "0 is out of range; use 1 to 16 (default 1)"),
        (", sessions_per_destination: 17", "upstreams.db.sessions_per_destination", "17 is out of range"),
    ];
    for (extra, path, want) in cases {
        let got = issues(&port_upstream(extra));
        assert!(
            got.iter()
                .any(|i| i.path == path && i.message.contains(want)),
            "{extra}: {got:?}"
        );
    }
    // What both kinds share is still checked for ssm-port.
    let got = issues("upstreams:\n  db: { kind: ssm-port }\n");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].path, "upstreams.db.targets");
}

#[test]
fn an_ssh_upstream_still_needs_a_login_and_says_ssm_port_needs_none() {
    let got = issues("upstreams:\n  b: { kind: ssh, targets: [a], ssh_agent: true }\n");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].path, "upstreams.b.user");
    assert!(
        got[0].message.contains("or kind: ssm-port for no SSH"),
        "{}",
        got[0]
    );
    let explicit = cfg("upstreams:\n  b: { kind: ssh, targets: [a], user: x, ssh_agent: true }\n");
    let implicit = cfg("upstreams:\n  b: { targets: [a], user: x, ssh_agent: true }\n");
    assert_eq!(explicit, implicit);
}

#[test]
fn an_unknown_kind_is_a_syntax_error_with_its_position() {
    let e = parse(
        "upstreams:\n  b:\n    kind: sftp\n    targets: [a]\n",
        "c.yaml",
        None,
    )
    .unwrap_err();
    assert!(matches!(e, ConfigError::Syntax { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(
            "c.yaml:3:11: upstreams.b.kind: unknown variant `sftp`, expected `ssh` or `ssm-port`"
        ),
        "{msg}"
    );
}

fn ssh_upstream(extra: &str) -> String {
    format!("upstreams:\n  web: {{ user: ec2-user, targets: [i-0123456789abcdef0]{extra} }}\n")
}

#[test]
fn an_instance_connect_upstream_needs_no_key_files() {
    let c = cfg(&ssh_upstream(", instance_connect: true"));
    let s = c.upstream("web").unwrap().ssh().unwrap().clone();
    assert!(s.instance_connect);
    assert!(s.identity_files.is_empty() && !s.ssh_agent);
}

#[test]
fn instance_connect_refuses_own_keys_and_managed_nodes() {
    let yaml = "upstreams:\n  web: { user: ec2-user, targets: [i-0123456789abcdef0, mi-0123456789abcdef0], \
                instance_connect: true, identity_files: [~/.ssh/id], ssh_agent: true }\n";
    let paths: Vec<String> = issues(yaml).into_iter().map(|i| i.path).collect();
    assert_eq!(
        paths,
        [
            "upstreams.web.identity_files",
            "upstreams.web.ssh_agent",
            "upstreams.web.targets[1]"
        ]
    );
    let port = issues(&port_upstream(", instance_connect: true"));
    assert_eq!(port.len(), 1);
    assert_eq!(port[0].path, "upstreams.db.instance_connect");
}
