//! Tests for parsing and validation: the example file, serde error positions, a table of
//! invalid configs with the key path and message each must produce, overrides and ad-hoc configs.

use std::num::NonZeroUsize;
use std::path::Path;

use super::*;
use crate::route::HostRef;

mod listeners;
mod proxy;

const EXAMPLE: &str = include_str!("../../config.example.yaml");
const HOME: &str = "/home/t";

fn cfg(yaml: &str) -> Config {
    parse(yaml, "test.yaml", Some(Path::new(HOME))).unwrap()
}

fn err(yaml: &str) -> ConfigError {
    parse(yaml, "test.yaml", Some(Path::new(HOME))).unwrap_err()
}

fn issues(yaml: &str) -> Vec<Issue> {
    match err(yaml) {
        ConfigError::Invalid { issues, .. } => issues,
        other => panic!("expected validation issues, got {other}"),
    }
}

const UP: &str =
    "upstreams:\n  u: { targets: [i-0123456789abcdef0], user: ec2-user, ssh_agent: true }\n";

#[test]
fn example_config_parses_and_validates() {
    from_yaml_str(EXAMPLE, "config.example.yaml").unwrap();
    let c = cfg(EXAMPLE);
    assert_eq!(
        c.aws,
        AwsDefaults {
            profile: Some("default".into()),
            region: Some("eu-west-1".into())
        }
    );
    assert_eq!(c.listeners.len(), 3);
    assert_eq!(c.listeners[0].users()[0].username, "alice");
    assert!(
        matches!(&c.listeners[1], Listener::Unix { path, .. } if path == Path::new("/home/t/.local/state/session-proxy/socks5.sock"))
    );
    assert!(matches!(&c.listeners[2], Listener::Http { addr, .. } if addr.port() == 3128));
    let prod = c.upstream("bastion-prod").unwrap();
    assert_eq!(
        prod.targets,
        vec![
            Target::InstanceId("i-0123456789abcdef0".into()),
            Target::Name("prod-bastion".into())
        ]
    );
    let prod_ssh = prod.ssh().unwrap();
    assert_eq!(
        prod_ssh.identity_files,
        vec![PathBuf::from("/home/t/.ssh/id_ed25519")]
    );
    assert_eq!(
        (
            prod.profile.as_deref(),
            prod_ssh.port,
            prod_ssh.pool_size.get()
        ),
        (Some("prod"), 22, 2)
    );
    assert_eq!(prod_ssh.keepalive, Some(Duration::from_secs(15)));
    let ci = c.upstream("bastion-ci").unwrap();
    assert_eq!(
        ci.profile, None,
        "inline credentials replace the aws.profile default"
    );
    assert_eq!(ci.region.as_deref(), Some("us-east-1"));
    let ci_ssh = ci.ssh().unwrap();
    assert_eq!(
        (ci_ssh.host_key_policy, ci_ssh.lazy, ci_ssh.keepalive),
        (HostKeyPolicy::Strict, true, None)
    );
    assert_eq!(
        ci.credentials.as_ref().unwrap().secret_access_key.expose(),
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    );
    assert_eq!(c.routes.len(), 8);
    assert_eq!(c.default, Action::Direct);
    assert_eq!(c.hosts["web1"].port, Some(22));
    assert_eq!(
        c.state_dir,
        Some(PathBuf::from("/home/t/.local/state/session-proxy"))
    );
    assert_eq!(c.log_level.as_deref(), Some("info"));
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    // The example's routes behave as its comments say.
    let decide = |h: &str| c.routes.decide(&HostRef::parse(h), &c.default).action;
    assert_eq!(decide("10.20.1.1"), Action::Upstream("bastion-prod".into()));
    assert_eq!(decide("10.20.99.1"), Action::Reject);
    assert_eq!(
        decide("a.b.prod.internal"),
        Action::Upstream("bastion-prod".into())
    );
    assert_eq!(decide("prod.internal"), Action::Direct);
    // The metadata address is refused in every spelling, not only the dotted quad.
    for spelling in [
        "169.254.169.254",
        "2852039166",
        "0xa9fea9fe",
        "0251.0376.0251.0376",
    ] {
        assert_eq!(decide(spelling), Action::Reject, "{spelling}");
    }
    let partner = c
        .routes
        .decide(&HostRef::parse("api.partner.example"), &c.default);
    assert!(
        partner.resolve_locally,
        "the example's resolve: local route"
    );
    assert_eq!(
        decide("build-7.ci.internal"),
        Action::Upstream("bastion-ci".into())
    );
    assert_eq!(
        decide("pg.db.internal"),
        Action::Upstream("db-ports".into())
    );
}

#[test]
fn example_config_documents_an_ssm_port_upstream_and_a_tcp_and_a_unix_forward() {
    let c = cfg(EXAMPLE);
    let ports = c.upstream("db-ports").unwrap();
    assert_eq!(
        ports.kind,
        UpstreamKind::SsmPort(SsmPortUpstream {
            idle_timeout: Duration::from_secs(300),
            sessions_per_destination: NonZeroUsize::MIN,
        })
    );
    assert_eq!(ports.targets, vec![Target::Name("db-bastion".into())]);
    assert_eq!(c.forwards.len(), 2);
    assert_eq!(
        c.forwards[0].to_string(),
        "forward 127.0.0.1:15432 -> pg.prod.internal:5432 via upstream bastion-prod"
    );
    assert_eq!(
        c.forwards[1],
        Forward {
            listen: ListenOn::Unix("/home/t/.local/state/session-proxy/admin.sock".into()),
            to: Destination {
                host: Host::Domain("localhost".into()),
                port: 8080
            },
            via: Via::Instance {
                target: Target::InstanceId("i-0123456789abcdef0".into()),
                profile: Some("prod".into()),
                region: Some("eu-west-1".into()),
                sessions: NonZeroUsize::new(2).unwrap(),
            },
        }
    );
}

#[test]
fn secrets_do_not_appear_in_debug_output() {
    let dbg = format!("{:?}", cfg(EXAMPLE));
    for secret in ["s3cret", "wJalrXUtnFEMI", "IQoJb3JpZ2luX2VjEXAMPLETOKEN"] {
        assert!(!dbg.contains(secret), "{secret} leaked");
    }
    assert!(
        dbg.contains("AKIAIOSFODNN7EXAMPLE"),
        "the access key id is not secret"
    );
}

#[test]
fn empty_and_comment_only_files_mean_defaults() {
    for yaml in [
        "",
        "# nothing\n",
        "---\n",
        "routes:\nupstreams:\nhosts:\naws:\n",
    ] {
        assert_eq!(cfg(yaml), Config::default(), "{yaml:?}");
    }
    let d = Config::default();
    assert_eq!(
        d.listeners,
        vec![Listener::Tcp {
            addr: "127.0.0.1:1080".parse().unwrap(),
            users: vec![],
            limits: Limits::default(),
        }]
    );
    assert_eq!(d.default, Action::Reject);
}

#[test]
fn defaults_for_a_minimal_upstream() {
    let u = cfg(UP).upstreams.remove(0);
    let ssh = u.ssh().unwrap();
    assert_eq!(
        (ssh.port, ssh.pool_size.get(), ssh.lazy, ssh.ssh_agent),
        (22, 2, false, true)
    );
    assert_eq!(
        (ssh.host_key_policy, ssh.keepalive),
        (HostKeyPolicy::AcceptNew, Some(Duration::from_secs(15)))
    );
    assert_eq!(
        u.protocol(),
        UpstreamProtocol::Ssh,
        "kind: ssh is the default"
    );
    assert_eq!((u.profile, u.region, u.credentials), (None, None, None));
}

#[test]
fn serde_errors_carry_file_line_and_column() {
    #[rustfmt::skip]
    let cases = [
        ("listeners:\n  - socks5: 127.0.0.1:1\n    sock: 1\n",
         "test.yaml:3:5: listeners[0]: unknown key `sock`; did you mean `socks5`? (known keys: socks5,"),
        ("upstreams:\n  u:\n    pool_size: two\n", "test.yaml:3:16: upstreams.u.pool_size: invalid type: string \"two\""),
        ("upstreams:\n  u:\n    host_key_policy: yes\n", "upstreams.u.host_key_policy: unknown variant `yes`, expected one of `accept-new`, `strict`, `off`"),
        ("sim: {}\n", "test.yaml:1:1: unknown key `sim`"),
        ("upstreams:\n  u:\n    credentials: {access_key_id: A, secret_key: s}\n",
         "test.yaml:3:37: upstreams.u.credentials: unknown key `secret_key` (known keys: access_key_id, secret_access_key, session_token)"),
        ("upstreams:\n  a: {user: x}\n  a: {user: y}\n", "duplicate key \"a\""),
        ("hosts:\n  w: {target: a}\n  w: {target: b}\n", "duplicate key \"w\""),
        ("routes: [\n", "test.yaml:"),
        ("log_level: a\n---\nlog_level: b\n", "more than one document"),
    ];
    for (yaml, want) in cases {
        let e = err(yaml);
        assert!(matches!(e, ConfigError::Syntax { .. }), "{yaml:?}: {e:?}");
        let msg = e.to_string();
        assert!(msg.contains(want), "{yaml:?}: {msg}");
        assert!(!msg.contains(" at line "), "position printed twice: {msg}");
    }
}

#[test]
fn validation_issue_vectors() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str)] = &[
        // listeners
        ("listeners: [{socks5: 0.0.0.0:1080}]", "listeners[0].socks5",
            "0.0.0.0:1080 listens on all interfaces; set allow_remote: true if you really mean it"),
        ("listeners: [{socks5: \"[::]:1080\"}]", "listeners[0].socks5", "listens on all interfaces"),
        ("listeners: [{socks5: 10.1.2.3:1080}]", "listeners[0].socks5", "not a loopback address"),
        ("listeners: [{socks5: localhost:1080}]", "listeners[0].socks5", "not an IP:port address"),
        ("listeners: [{socks5: 127.0.0.1:1, socks5_unix: /s}]", "listeners[0]", "more than one of socks5, socks5_unix and http"),
        ("listeners: [{http: 127.0.0.1:1, socks5: 127.0.0.1:2}]", "listeners[0]", "more than one of"),
        ("listeners: [{http: 10.1.2.3:3128}]", "listeners[0].http", "not a loopback address"),
        ("listeners: [{http: localhost:3128}]", "listeners[0].http", "not an IP:port address"),
        ("listeners: [{http: 127.0.0.1:1, users: [{username: 'a:b', password: p}]}]",
            "listeners[0].users[0].username", "HTTP Basic cannot carry"),
        ("listeners: [{socks5: 127.0.0.1:3128}, {http: 127.0.0.1:3128}]", "listeners[1]", "same address as listeners[0]"),
        ("listeners: [{allow_remote: true}]", "listeners[0]", "needs socks5"),
        ("listeners: [{socks5_unix: /s, allow_remote: true}]", "listeners[0].allow_remote", "only to socks5"),
        ("listeners: [{socks5_unix: run/s.sock}]", "listeners[0].socks5_unix", "relative path"),
        ("listeners: [{socks5_unix: ~bob/s}]", "listeners[0].socks5_unix", "only ~/ is expanded"),
        (&format!("listeners: [{{socks5_unix: /{}}}]", "x".repeat(120)), "listeners[0].socks5_unix", "limited to"),
        ("listeners: []", "listeners", "empty list"),
        ("listeners: [{socks5: 127.0.0.1:1, users: []}]", "listeners[0].users", "empty list"),
        ("listeners: [{socks5: 127.0.0.1:1, users: [{username: '', password: p}]}]",
            "listeners[0].users[0].username", "1 to 255 bytes"),
        ("listeners: [{socks5: 127.0.0.1:1, users: [{username: a, password: ''}]}]",
            "listeners[0].users[0].password", "1 to 255 bytes"),
        ("listeners: [{socks5: 127.0.0.1:1, users: [{username: a, password: p}, {username: a, password: q}]}]",
            "listeners[0].users[1].username", "listed twice"),
        ("listeners: [{socks5: 127.0.0.1:1}, {socks5: 127.0.0.1:1}]", "listeners[1]", "same address as listeners[0]"),
        ("listeners: [{socks5: 127.0.0.1:1, max_connections: 0}]", "listeners[0].max_connections",
            "0 is out of range; use 1 to 65536 (default 1024)"),
        ("listeners: [{socks5_unix: /s, max_connections: 70000}]", "listeners[0].max_connections", "70000 is out of range"),
        ("listeners: [{socks5: 127.0.0.1:1, idle_timeout_secs: 700000}]", "listeners[0].idle_timeout_secs",
            "700000 is too large; use 1 to 604800, or 0 (the default) to keep idle tunnels open"),
        // upstreams
        ("upstreams:\n  u: {user: x, ssh_agent: true}", "upstreams.u.targets", "missing; add targets:"),
        ("upstreams:\n  u: {targets: [i-0123456789ABCDEF0], user: x, ssh_agent: true}",
            "upstreams.u.targets[0]", "looks like an instance id"),
        ("upstreams:\n  u: {targets: [i-0123], user: x, ssh_agent: true}", "upstreams.u.targets[0]", "8 to 17"),
        ("upstreams:\n  u: {targets: [a, a], user: x, ssh_agent: true}", "upstreams.u.targets[1]", "listed twice"),
        ("upstreams:\n  u: {targets: [\"a b\"], user: x, ssh_agent: true}", "upstreams.u.targets[0]", "not a usable instance name"),
        ("upstreams:\n  bastion-prod: {targets: [a], user: x, ssh_agent: true, credentials: {access_key_id: AKIAIOSFODNN7EXAMPLE, secret_access_key: s}}",
            "upstreams.bastion-prod.region", "required when inline credentials are given; add region: <aws-region>"),
        ("upstreams:\n  u: {targets: [a], user: x, ssh_agent: true, region: r, profile: p, credentials: {access_key_id: AKIAIOSFODNN7EXAMPLE, secret_access_key: s}}",
            "upstreams.u.credentials", "cannot be combined with profile: p"),
        ("upstreams:\n  u: {targets: [a], user: x, ssh_agent: true, region: r, credentials: {access_key_id: akia, secret_access_key: s}}",
            "upstreams.u.credentials.access_key_id", "does not look like an AWS access key id"),
        ("upstreams:\n  u: {targets: [a], user: x, ssh_agent: true, region: r, credentials: {access_key_id: AKIAIOSFODNN7EXAMPLE, secret_access_key: ' '}}",
            "upstreams.u.credentials.secret_access_key", "empty"),
        ("upstreams:\n  u: {targets: [a], user: x, ssh_agent: true, region: r, credentials: {access_key_id: AKIAIOSFODNN7EXAMPLE, secret_access_key: s, session_token: ''}}",
            "upstreams.u.credentials.session_token", "empty"),
        ("upstreams:\n  u: {targets: [a], ssh_agent: true}", "upstreams.u.user", "missing; add user: ec2-user"),
        ("upstreams:\n  u: {targets: [a], user: 'a b', ssh_agent: true}", "upstreams.u.user", "not a login name"),
        ("upstreams:\n  u: {targets: [a], user: x}", "upstreams.u", "no SSH authentication; add identity_files"),
        ("upstreams:\n  u: {targets: [a], user: x, identity_files: [id_rsa]}", "upstreams.u.identity_files[0]", "relative path"),
        ("upstreams:\n  u: {targets: [a], user: x, ssh_agent: true, port: 0}", "upstreams.u.port", "0 is not a port"),
        ("upstreams:\n  u: {targets: [a], user: x, ssh_agent: true, pool_size: 0}", "upstreams.u.pool_size", "0 is out of range; use 1 to 64"),
        ("upstreams:\n  u: {targets: [a], user: x, ssh_agent: true, pool_size: 65}", "upstreams.u.pool_size", "65 is out of range"),
        ("upstreams:\n  u: {targets: [a], user: x, ssh_agent: true, keepalive_secs: 99999}", "upstreams.u.keepalive_secs", "too large"),
        ("upstreams:\n  u: {targets: [a], user: x, ssh_agent: true, region: EU}", "upstreams.u.region", "not an AWS region"),
        ("upstreams:\n  direct: {targets: [a], user: x, ssh_agent: true}", "upstreams.direct", "reserved"),
        ("upstreams:\n  \"a b\": {targets: [a], user: x, ssh_agent: true}", "upstreams.a b", "upstream names are"),
        // routes and default
        (&format!("{UP}routes:\n  - {{match: 10.0.0.0/8, via: u}}\n  - {{match: '*.a', via: direct}}\n  - {{match: 10.1.0.0/16, via: bastion-staging}}"),
            "routes[2].via", "unknown upstream \"bastion-staging\"; define it under upstreams or use direct/reject"),
        ("routes: [{match: 10.0.0.0/33, via: direct}]", "routes[0].match", "prefix length \"33\" must be a number from 0 to 32"),
        ("routes: [{match: 'a b', via: direct}]", "routes[0].match", "not a valid domain glob"),
        ("routes: [{match: '', via: direct}]", "routes[0].match", "empty pattern"),
        ("routes: [{match: x, via: ''}]", "routes[0].via", "empty; use an upstream name"),
        ("routes: [{match: '*.A', via: direct}, {match: '*.a', via: reject}]", "routes[1].match", "duplicates routes[0]"),
        ("routes: [{match: 10.0.0.1/8, via: direct}, {match: 10.0.0.0/8, via: reject}]", "routes[1].match", "duplicates routes[0]"),
        ("default: nowhere", "default", "unknown upstream \"nowhere\""),
        // hosts
        ("hosts:\n  i-0123456789abcdef0: {target: a}", "hosts.i-0123456789abcdef0", "cannot look like an instance id"),
        ("hosts:\n  w: {target: mi-12}", "hosts.w.target", "looks like an instance id"),
        ("hosts:\n  w: {target: a, port: 0}", "hosts.w.port", "0 is not a port"),
        ("hosts:\n  w: {target: a, profile: ''}", "hosts.w.profile", "not a profile name"),
        // top level
        ("aws: {profile: 'my profile'}", "aws.profile", "not a profile name"),
        ("aws: {region: Frankfurt}", "aws.region", "write e.g. eu-west-1"),
        ("control_socket: run/c.sock", "control_socket", "relative path"),
        ("state_dir: state", "state_dir", "relative path"),
        ("log_level: 'debug please'", "log_level", "not a log filter"),
    ];
    for (yaml, path, want) in cases {
        let got = issues(yaml);
        assert!(
            got.iter()
                .any(|i| i.path == *path && i.message.contains(want)),
            "{yaml}\n want {path}: …{want}…\n got {got:#?}"
        );
    }
}

#[test]
fn unused_upstreams_and_disabled_host_keys_are_warnings() {
    let w = cfg(&UP.replace("ssh_agent: true", "ssh_agent: true, host_key_policy: off")).warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].starts_with("upstreams.u: no route"));
    assert!(w[1].starts_with("upstreams.u.host_key_policy: off"));
    assert!(cfg(&format!("{UP}default: u")).warnings().is_empty());
}

#[test]
fn all_problems_are_reported_at_once() {
    let e = err("aws: {region: X}\ndefault: nope\nupstreams:\n  u: {targets: [a]}\n");
    let ConfigError::Invalid { issues, .. } = &e else {
        panic!("{e:?}")
    };
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        ["aws.region", "upstreams.u.user", "upstreams.u", "default"]
    );
    let msg = e.to_string();
    assert!(
        msg.starts_with("test.yaml: 4 problems:\n  aws.region: "),
        "{msg}"
    );
    let one = err("default: nope").to_string();
    assert_eq!(one, "test.yaml: default: unknown upstream \"nope\"; define it under upstreams or use direct/reject");
}

#[test]
fn aws_defaults_are_inherited_and_overridable() {
    let c = cfg(&format!(
        "aws: {{profile: base, region: eu-west-1}}\n{UP}  v: {{targets: [b], user: x, ssh_agent: true, profile: p, region: us-east-2}}\n\
         hosts:\n  h: {{target: t}}\n  k: {{target: t, profile: kp, region: ap-south-1}}\n"
    ));
    let u = c.upstream("u").unwrap();
    assert_eq!(
        (u.profile.as_deref(), u.region.as_deref()),
        (Some("base"), Some("eu-west-1"))
    );
    let v = c.upstream("v").unwrap();
    assert_eq!(
        (v.profile.as_deref(), v.region.as_deref()),
        (Some("p"), Some("us-east-2"))
    );
    assert_eq!(
        (
            c.hosts["h"].profile.as_deref(),
            c.hosts["h"].region.as_deref()
        ),
        (Some("base"), Some("eu-west-1"))
    );
    assert_eq!(c.hosts["k"].profile.as_deref(), Some("kp"));
    assert_eq!(c.hosts["h"].port, None);
    // inline credentials may take their region from aws.region
    cfg(
        "aws: {region: eu-west-1}\nupstreams:\n  c: {targets: [a], user: x, ssh_agent: true, \
         credentials: {access_key_id: AKIAIOSFODNN7EXAMPLE, secret_access_key: s}}\n",
    );
}

#[test]
fn overrides_replace_file_values() {
    let mut c = cfg(EXAMPLE);
    let o = Overrides {
        profile: Some("cli".into()),
        region: Some("us-west-2".into()),
        listen: vec![
            "127.0.0.1:9050".into(),
            "unix:/tmp/s.sock".into(),
            "~/p.sock".into(),
        ],
        default: Some("bastion-ci".into()),
        control_socket: Some("/tmp/ctl".into()),
        log_level: Some("debug".into()),
        ..Overrides::default()
    };
    c.apply(&o).unwrap();
    assert_eq!(c.aws.profile.as_deref(), Some("cli"));
    assert_eq!(
        c.upstream("bastion-prod").unwrap().profile.as_deref(),
        Some("cli")
    );
    assert_eq!(
        c.upstream("bastion-ci").unwrap().profile,
        None,
        "inline credentials are kept"
    );
    assert!(c
        .upstreams
        .iter()
        .all(|u| u.region.as_deref() == Some("us-west-2")));
    assert!(c
        .hosts
        .values()
        .all(|h| h.profile.as_deref() == Some("cli") && h.region.as_deref() == Some("us-west-2")));
    assert_eq!(c.listeners.len(), 3);
    assert!(
        matches!(&c.listeners[1], Listener::Unix { path, users, .. } if path == Path::new("/tmp/s.sock") && users.is_empty())
    );
    assert!(
        matches!(&c.listeners[2], Listener::Unix { path, .. } if path.ends_with("p.sock") && path.is_absolute())
    );
    assert_eq!(c.default, Action::Upstream("bastion-ci".into()));
    assert_eq!(c.control_socket, Some(PathBuf::from("/tmp/ctl")));
    assert_eq!(
        c.state_dir,
        Some(PathBuf::from("/home/t/.local/state/session-proxy")),
        "untouched"
    );
    assert_eq!(c.log_level.as_deref(), Some("debug"));
}

#[test]
fn bad_overrides_name_the_flag_and_change_nothing() {
    let before = cfg(EXAMPLE);
    let mut c = before.clone();
    let o = Overrides {
        region: Some("us-west-2".into()),
        listen: vec!["0.0.0.0:1080".into()],
        default: Some("nope".into()),
        ..Overrides::default()
    };
    let e = c.apply(&o).unwrap_err().to_string();
    assert!(e.starts_with("command line: 2 problems:"), "{e}");
    assert!(
        e.contains("--listen: 0.0.0.0:1080 listens on all interfaces; pass --allow-remote"),
        "{e}"
    );
    assert!(e.contains("--default: unknown upstream \"nope\""), "{e}");
    assert_eq!(c, before);
    let o = Overrides {
        listen: vec!["0.0.0.0:1080".into()],
        allow_remote: true,
        ..Overrides::default()
    };
    c.apply(&o).unwrap();
    assert_eq!(c.listeners.len(), 1);
}

#[test]
fn ad_hoc_builds_one_default_upstream() {
    let spec = AdHoc {
        targets: vec!["i-0123456789abcdef0".into()],
        user: "ec2-user".into(),
        identity_files: vec!["/k/id".into()],
        pool_size: Some(3),
        region: Some("eu-west-1".into()),
        ..AdHoc::default()
    };
    let c = Config::ad_hoc(&spec).unwrap();
    assert_eq!(c.default, Action::Upstream(AD_HOC_UPSTREAM.into()));
    assert_eq!(c.listeners, Config::default().listeners);
    let u = c.upstream(AD_HOC_UPSTREAM).unwrap();
    let ssh = u.ssh().unwrap();
    assert_eq!(
        (ssh.pool_size.get(), ssh.port, u.region.as_deref()),
        (3, 22, Some("eu-west-1"))
    );
    assert_eq!(
        u.ssh().unwrap().identity_files,
        vec![PathBuf::from("/k/id")]
    );
    assert!(c.warnings().is_empty());
    let e = Config::ad_hoc(&AdHoc {
        pool_size: Some(0),
        ..AdHoc::default()
    })
    .unwrap_err()
    .to_string();
    for want in [
        "--target: missing",
        "--user: missing",
        "--identity: no SSH authentication",
        "--pool-size: 0 is out of range",
    ] {
        assert!(e.contains(want), "{want}: {e}");
    }
}

#[test]
fn load_reads_files_and_names_them_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, EXAMPLE).unwrap();
    assert_eq!(load(&good).unwrap().upstreams.len(), 3);
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "listeners:\n  - socks: 1\n").unwrap();
    let e = load(&bad).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}:2:5: listeners[0]: unknown key `socks`; did you mean `socks5`?",
            bad.display()
        )),
        "{e}"
    );
    let e = load(&dir.path().join("missing.yaml")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, "#".repeat(MAX_CONFIG_BYTES as usize + 1)).unwrap();
    assert!(matches!(
        load(&big).unwrap_err(),
        ConfigError::TooLarge { .. }
    ));
}

#[test]
fn resolve_local_on_a_cidr_route_is_refused_with_the_key_path() {
    let text =
        err("routes:\n  - match: 10.0.0.0/8\n    via: direct\n    resolve: local\n").to_string();
    assert!(text.contains("routes[0].resolve"), "{text}");
    assert!(text.contains("name rules only"), "{text}");
}

#[test]
fn resolve_takes_only_local_or_remote() {
    let text = err("resolve: sometimes\n").to_string();
    assert!(text.contains("resolve"), "{text}");
}
