//! `forwards:`: how `via:` is resolved, the listen and destination forms, every refusal with its
//! key path, and how forwards meet SOCKS listeners and command-line overrides.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use super::super::{
    parse, Config, ConfigError, Destination, Host, Issue, ListenOn, Overrides, Target,
};
use super::{Forward, Via};

const HEAD: &str = "\
aws: { profile: base, region: eu-west-1 }
upstreams:
  bastion-prod: { targets: [i-0123456789abcdef0], user: ec2-user, ssh_agent: true }
  db-ports: { kind: ssm-port, targets: [db-bastion] }
hosts:
  web: { target: web-1, profile: webp, region: us-east-2 }
";

fn cfg(yaml: &str) -> Config {
    parse(yaml, "test.yaml", Some(Path::new("/home/t"))).unwrap()
}

fn issues(yaml: &str) -> Vec<Issue> {
    match parse(yaml, "test.yaml", Some(Path::new("/home/t"))) {
        Err(ConfigError::Invalid { issues, .. }) => issues,
        other => panic!("expected validation issues, got {other:?}"),
    }
}

/// The config of `HEAD` plus one forward with the given flow-mapping body.
fn one(body: &str) -> String {
    format!("{HEAD}forwards:\n  - {{ {body} }}\n")
}

fn forward(body: &str) -> Forward {
    cfg(&one(body)).forwards.remove(0)
}

fn instance(target: Target, profile: &str, region: &str, sessions: usize) -> Via {
    Via::Instance {
        target,
        profile: Some(profile.into()),
        region: Some(region.into()),
        sessions: NonZeroUsize::new(sessions).unwrap(),
    }
}

#[test]
fn via_resolves_upstream_then_alias_then_instance_id_then_name_tag() {
    let via = |v: &str| forward(&format!("listen: 127.0.0.1:1, to: db:5432, via: {v}")).via;
    assert_eq!(via("bastion-prod"), Via::Upstream("bastion-prod".into()));
    assert_eq!(via("db-ports"), Via::Upstream("db-ports".into()));
    assert_eq!(
        via("web"),
        instance(Target::Name("web-1".into()), "webp", "us-east-2", 1),
        "an alias brings its instance, profile and region"
    );
    assert_eq!(
        via("mi-0123456789abcdef0"),
        instance(
            Target::InstanceId("mi-0123456789abcdef0".into()),
            "base",
            "eu-west-1",
            1
        ),
        "an instance takes the aws: defaults and one session"
    );
    assert_eq!(
        via("reporting-host"),
        instance(
            Target::Name("reporting-host".into()),
            "base",
            "eu-west-1",
            1
        )
    );
}

#[test]
fn an_instance_forward_takes_its_own_profile_region_and_sessions() {
    let f = forward(
        "listen: 127.0.0.1:1, to: db:5432, via: web, profile: p, region: ap-south-1, sessions: 16",
    );
    assert_eq!(
        f.via,
        instance(Target::Name("web-1".into()), "p", "ap-south-1", 16)
    );
}

#[test]
fn listen_is_an_ip_port_or_a_unix_socket_path() {
    let listen =
        |l: &str| forward(&format!("listen: {l:?}, to: db:5432, via: bastion-prod")).listen;
    assert_eq!(
        listen("[::1]:15432"),
        ListenOn::Tcp("[::1]:15432".parse().unwrap())
    );
    assert_eq!(
        listen("~/run/db.sock"),
        ListenOn::Unix(PathBuf::from("/home/t/run/db.sock"))
    );
    assert_eq!(
        listen("/tmp/db.sock"),
        ListenOn::Unix(PathBuf::from("/tmp/db.sock"))
    );
    let f = forward("listen: 0.0.0.0:15432, to: db:5432, via: bastion-prod, allow_remote: true");
    assert_eq!(f.listen, ListenOn::Tcp("0.0.0.0:15432".parse().unwrap()));
}

#[test]
fn destinations_keep_names_fold_ip_spellings_and_bracket_ipv6() {
    let to = |t: &str| {
        forward(&format!(
            "listen: 127.0.0.1:1, to: {t:?}, via: bastion-prod"
        ))
        .to
    };
    let name = |host: &str, port| Destination {
        host: Host::Domain(host.into()),
        port,
    };
    let ip = |host: &str, port| Destination {
        host: Host::Ip(host.parse().unwrap()),
        port,
    };
    assert_eq!(to("db.internal:5432"), name("db.internal", 5432));
    assert_eq!(to("localhost:8080"), name("localhost", 8080));
    assert_eq!(to("[fd00::5]:5432"), ip("fd00::5", 5432));
    assert_eq!(to("[fd00::5]:5432").to_string(), "[fd00::5]:5432");
    // The address a name-looking spelling stands for is what gets dialled (and shown).
    assert_eq!(to("2852039166:80"), ip("169.254.169.254", 80));
    assert_eq!(to("10.1.2.3:22").to_string(), "10.1.2.3:22");
}

#[test]
fn forward_issue_vectors() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str)] = &[
        ("listen: 127.0.0.1:1, to: db:5432, via: bastion-prd", "forwards[0].via",
            "unknown upstream \"bastion-prd\"; did you mean bastion-prod?"),
        ("listen: 127.0.0.1:1, to: db:5432, via: wbe", "forwards[0].via", "did you mean web?"),
        ("listen: 127.0.0.1:1, to: db:5432, via: direct", "forwards[0].via",
            "direct is for routes; a forward goes via an upstream name or an instance"),
        ("listen: 127.0.0.1:1, to: db:5432, via: reject", "forwards[0].via", "reject is for routes"),
        ("listen: 127.0.0.1:1, to: db:5432, via: ''", "forwards[0].via", "empty"),
        ("listen: 127.0.0.1:1, to: db:5432, via: i-0123", "forwards[0].via", "8 to 17"),
        ("listen: 127.0.0.1:1, to: 'db:0', via: bastion-prod", "forwards[0].to", "0 is not a port"),
        ("listen: 127.0.0.1:1, to: db, via: bastion-prod", "forwards[0].to", "has no port"),
        ("listen: 127.0.0.1:1, to: ':5432', via: bastion-prod", "forwards[0].to", "the host is empty"),
        ("listen: 127.0.0.1:1, to: 'fd00::5:5432', via: bastion-prod", "forwards[0].to", "[addr]:port"),
        ("listen: 127.0.0.1:1, to: 'a b:1', via: bastion-prod", "forwards[0].to", "cannot contain spaces"),
        ("listen: 10.0.0.1:15432, to: db:5432, via: bastion-prod", "forwards[0].listen",
            "not a loopback address, so other hosts could connect; set allow_remote: true"),
        ("listen: '[::]:15432', to: db:5432, via: bastion-prod", "forwards[0].listen", "listens on all interfaces"),
        ("listen: localhost:15432, to: db:5432, via: bastion-prod", "forwards[0].listen", "not an IP:port address"),
        ("listen: run/db.sock, to: db:5432, via: bastion-prod", "forwards[0].listen", "relative path"),
        ("listen: /tmp/db.sock, to: db:5432, via: bastion-prod, allow_remote: false", "forwards[0].allow_remote",
            "applies only to TCP listen addresses"),
        ("listen: 127.0.0.1:1, to: db:5432, via: bastion-prod, sessions: 2", "forwards[0].sessions",
            "applies only when via is an instance"),
        ("listen: 127.0.0.1:1, to: db:5432, via: db-ports, profile: p", "forwards[0].profile",
            "applies only when via is an instance"),
        ("listen: 127.0.0.1:1, to: db:5432, via: bastion-prod, region: us-east-1", "forwards[0].region",
            "applies only when via is an instance"),
        ("listen: 127.0.0.1:1, to: db:5432, via: web, sessions: 0", "forwards[0].sessions",
            "0 is out of range; use 1 to 16 (default 1)"),
        ("listen: 127.0.0.1:1, to: db:5432, via: web, sessions: 17", "forwards[0].sessions", "17 is out of range"),
        ("listen: 127.0.0.1:1, to: db:5432, via: web, region: Paris", "forwards[0].region", "not an AWS region"),
    ];
    for (body, path, want) in cases {
        let got = issues(&one(body));
        assert!(
            got.iter()
                .any(|i| i.path == *path && i.message.contains(want)),
            "{body}\n want {path}: …{want}…\n got {got:#?}"
        );
    }
}

#[test]
fn a_listen_address_is_used_once_across_forwards_and_socks_listeners() {
    let yaml = format!(
        "{HEAD}listeners: [{{ socks5: 127.0.0.1:1080 }}, {{ socks5_unix: /tmp/s.sock }}]\nforwards:\n\
         - {{ listen: 127.0.0.1:15432, to: a:1, via: bastion-prod }}\n\
         - {{ listen: 127.0.0.1:15432, to: b:2, via: bastion-prod }}\n\
         - {{ listen: 127.0.0.1:1080, to: c:3, via: bastion-prod }}\n\
         - {{ listen: /tmp/s.sock, to: d:4, via: bastion-prod }}\n"
    );
    let got: Vec<String> = issues(&yaml).iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "forwards[1].listen: same address as forwards[0].listen; remove one",
            "forwards[2].listen: same address as listeners[0] (SOCKS); pick another",
            "forwards[3].listen: same address as listeners[1] (SOCKS); pick another",
        ]
    );
    // Port 0 is a different ephemeral port each time, so it never clashes.
    let c = cfg(&format!(
        "{HEAD}listeners: [{{ socks5: 127.0.0.1:0 }}]\nforwards:\n\
         - {{ listen: 127.0.0.1:0, to: a:1, via: bastion-prod }}\n\
         - {{ listen: 127.0.0.1:0, to: b:2, via: bastion-prod }}\n"
    ));
    assert_eq!(c.forwards.len(), 2);
}

#[test]
fn the_default_socks_listener_counts_for_clashes_too() {
    let got = issues(&one("listen: 127.0.0.1:1080, to: a:1, via: bastion-prod"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].path, "forwards[0].listen");
}

#[test]
fn an_invalid_alias_in_via_reports_only_the_alias() {
    let yaml = format!(
        "{}forwards:\n  - {{ listen: 127.0.0.1:1, to: a:1, via: bad }}\n",
        HEAD.replace("hosts:\n", "hosts:\n  bad: { target: mi-1 }\n")
    );
    let paths: Vec<String> = issues(&yaml).into_iter().map(|i| i.path).collect();
    assert_eq!(paths, ["hosts.bad.target"]);
}

#[test]
fn a_forward_error_is_one_line_naming_the_file_and_key() {
    let e = parse(
        &one("listen: 127.0.0.1:1, to: db:5432, via: direct"),
        "fw.yaml",
        None,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "fw.yaml: forwards[0].via: direct is for routes; a forward goes via an upstream name or an instance"
    );
}

#[test]
fn an_upstream_used_only_by_a_forward_is_not_reported_unused() {
    let c = cfg(&format!(
        "{}forwards:\n  - {{ listen: 127.0.0.1:1, to: a:1, via: bastion-prod }}\n  - {{ listen: 127.0.0.1:2, to: a:1, via: db-ports }}\n",
        HEAD
    ));
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    let unused = cfg(HEAD).warnings();
    assert_eq!(unused.len(), 2, "{unused:?}");
}

#[test]
fn profile_and_region_flags_reach_instance_forwards_and_listen_flags_cannot_clash() {
    let yaml = format!(
        "{HEAD}forwards:\n  - {{ listen: 127.0.0.1:15432, to: a:1, via: web }}\n  - {{ listen: 127.0.0.1:2, to: a:1, via: bastion-prod }}\n"
    );
    let mut c = cfg(&yaml);
    c.apply(&Overrides {
        profile: Some("cli".into()),
        region: Some("us-west-2".into()),
        ..Overrides::default()
    })
    .unwrap();
    assert_eq!(
        c.forwards[0].via,
        instance(Target::Name("web-1".into()), "cli", "us-west-2", 1)
    );
    assert_eq!(c.forwards[1].via, Via::Upstream("bastion-prod".into()));
    let before = c.clone();
    let e = c
        .apply(&Overrides {
            listen: vec!["127.0.0.1:15432".into()],
            ..Overrides::default()
        })
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "command line: --listen: 127.0.0.1:15432 is also forwards[0].listen in the config; pick another"
    );
    assert_eq!(c, before);
}

#[test]
fn forwards_display_for_logs_and_status() {
    let f = forward("listen: /tmp/db.sock, to: '[fd00::5]:5432', via: web");
    assert_eq!(
        f.to_string(),
        "forward unix:/tmp/db.sock -> [fd00::5]:5432 via instance web-1"
    );
}
