//! Table-driven vectors for [`super::Router`], [`super::Matcher::parse`] and
//! [`super::parse_destination`].

use std::net::IpAddr;

use super::*;

fn up(name: &str) -> Action {
    Action::Upstream(name.to_owned())
}

fn router(rules: &[(&str, Action)]) -> Router {
    let rules = rules
        .iter()
        .map(|(m, a)| Rule {
            matcher: Matcher::parse(m).unwrap(),
            action: a.clone(),
            resolve: Resolve::Remote,
        })
        .collect();
    Router::new(rules).unwrap()
}

fn ip(s: &str) -> HostRef<'static> {
    HostRef::Ip(s.parse::<IpAddr>().unwrap())
}

fn big_router() -> Router {
    router(&[
        ("10.0.0.0/8", Action::Direct),             // 0
        ("10.20.0.0/16", up("a")),                  // 1
        ("10.20.3.0/24", Action::Reject),           // 2
        ("10.20.0.0/16", up("b")),                  // 3: same prefix as 1, later → never wins
        ("fd00::/8", up("v6")),                     // 4
        ("fd00:1::/32", Action::Direct),            // 5
        ("::ffff:192.168.0.0/112", up("mapped6")),  // 6: = 192.168.0.0/16 spelled in v6
        ("192.168.1.0/24", Action::Reject),         // 7
        ("*.prod.internal", up("a")),               // 8
        ("db.prod.internal", Action::Reject),       // 9: shadowed by 8 (first match wins)
        ("DB.Staging.*", up("b")),                  // 10
        ("*.internal", Action::Direct),             // 11
        ("1.2.3.4", Action::Direct),                // 12: host route
        ("api-?.example.com", Action::Reject),      // 13
        ("svc-[0-9].{eu,us}.example.net", up("a")), // 14
    ])
}

#[test]
fn lookup_vectors() {
    let r = big_router();
    #[rustfmt::skip]
    let cases: &[(HostRef<'_>, Option<usize>)] = &[
        // most specific CIDR wins regardless of order; ties go to the earlier rule
        (ip("10.1.1.1"), Some(0)),
        (ip("10.20.9.9"), Some(1)),
        (ip("10.20.3.4"), Some(2)),
        (ip("11.0.0.1"), None),
        // IPv6
        (ip("fd00:1::5"), Some(5)),
        (ip("fd00:2::5"), Some(4)),
        (ip("fe80::1"), None),
        // IPv4-mapped IPv6 matches IPv4 CIDRs, and IPv4 matches ::ffff:0:0/96 CIDRs
        (ip("::ffff:10.20.3.4"), Some(2)),
        (ip("::ffff:10.99.0.1"), Some(0)),
        (ip("::ffff:192.168.5.5"), Some(6)),
        (ip("192.168.5.5"), Some(6)),
        (ip("192.168.1.9"), Some(7)),
        (ip("::ffff:192.168.1.9"), Some(7)),
        (ip("1.2.3.4"), Some(12)),
        (ip("1.2.3.5"), None),
        // IP literals given as names are IPs
        (HostRef::Domain("10.20.3.4"), Some(2)),
        (HostRef::Domain("[fd00:1::5]"), Some(5)),
        (HostRef::Domain("::ffff:10.20.3.4"), Some(2)),
        // domain globs: in order, case-insensitive, '*' crosses dots
        (HostRef::Domain("a.prod.internal"), Some(8)),
        (HostRef::Domain("a.b.prod.internal"), Some(8)),
        (HostRef::Domain("A.PROD.Internal"), Some(8)),
        (HostRef::Domain("db.prod.internal"), Some(8)),
        (HostRef::Domain("prod.internal"), Some(11)),
        (HostRef::Domain("x.internal."), Some(11)),
        (HostRef::Domain("db.staging.eu"), Some(10)),
        (HostRef::Domain("db.staging.a.b"), Some(10)),
        (HostRef::Domain("api-1.example.com"), Some(13)),
        (HostRef::Domain("api-12.example.com"), None),
        (HostRef::Domain("svc-3.eu.example.net"), Some(14)),
        (HostRef::Domain("svc-3.ap.example.net"), None),
        (HostRef::Domain("internal"), None),
        (HostRef::Domain("example.com"), None),
        (HostRef::Domain(""), None),
        (HostRef::Domain("."), None),
    ];
    for (host, want) in cases {
        assert_eq!(r.lookup(host), *want, "host {host}");
        let d = r.decide(host, &Action::Reject);
        assert_eq!(d.rule, *want, "host {host}");
        match want {
            Some(i) => assert_eq!(d.action, r.rules()[*i].action, "host {host}"),
            None => assert_eq!(d.action, Action::Reject, "host {host}"),
        }
    }
}

#[test]
fn star_dot_suffix_needs_at_least_one_label() {
    let r = router(&[("*.prod.internal", up("p"))]);
    #[rustfmt::skip]
    let cases = [
        ("a.prod.internal", true), ("a.b.prod.internal", true), ("x-y.prod.internal", true),
        ("prod.internal", false), ("aprod.internal", false), ("a.prod.internal.evil", false),
        ("a.prod.internalx", false),
    ];
    for (name, want) in cases {
        assert_eq!(r.lookup(&HostRef::Domain(name)).is_some(), want, "{name}");
    }
}

#[test]
fn catch_all_loses_to_anything_more_specific() {
    let r = router(&[
        ("0.0.0.0/0", Action::Reject),
        ("::/0", Action::Direct),
        ("10.0.0.0/8", up("a")),
    ]);
    assert_eq!(r.lookup(&ip("10.1.2.3")), Some(2));
    assert_eq!(r.lookup(&ip("8.8.8.8")), Some(0));
    assert_eq!(r.lookup(&ip("2001:db8::1")), Some(1));
    // A mapped address is closer to 0.0.0.0/0 (96 + 0 bits) than to ::/0 (0 bits).
    assert_eq!(r.lookup(&ip("::ffff:8.8.8.8")), Some(0));
}

#[test]
fn explanations() {
    let r = router(&[
        ("10.20.0.0/16", up("bastion-prod")),
        ("*.prod.internal", up("bastion-prod")),
    ]);
    #[rustfmt::skip]
    let cases: &[(HostRef<'_>, Action, &str)] = &[
        (ip("10.20.3.4"), Action::Reject, "10.20.3.4 matched routes[0] (10.20.0.0/16) → upstream bastion-prod"),
        (HostRef::Domain("db.prod.internal"), Action::Reject,
            "db.prod.internal matched routes[1] (*.prod.internal) → upstream bastion-prod"),
        (ip("10.2.3.4"), Action::Reject, "no route for 10.2.3.4 and default is reject; add a route or set default"),
        (ip("10.2.3.4"), Action::Direct, "no route for 10.2.3.4; default → direct"),
        (ip("10.2.3.4"), up("x"), "no route for 10.2.3.4; default → upstream x"),
        (HostRef::Domain("example.com"), Action::Direct,
            "no route for example.com (CIDR routes apply to IP destinations only; names are not resolved); default → direct"),
        (HostRef::Domain("10.20.0.1"), Action::Reject, "10.20.0.1 matched routes[0] (10.20.0.0/16) → upstream bastion-prod"),
    ];
    for (host, default, want) in cases {
        assert_eq!(r.decide(host, default).explanation, *want);
    }
    let empty = Router::default();
    let d = empty.decide(&HostRef::Domain("example.com"), &Action::Reject);
    assert_eq!(
        d.explanation,
        "no route for example.com and default is reject; add a route or set default"
    );
    assert_eq!((d.action, d.rule), (Action::Reject, None));
}

#[test]
fn matcher_parse_vectors() {
    let cidr = |s: &str| Ok(Matcher::Cidr(s.parse().unwrap()));
    let glob = |s: &str| Ok(Matcher::DomainGlob(s.to_owned()));
    #[rustfmt::skip]
    let ok: &[(&str, Result<Matcher, RouteError>)] = &[
        ("10.20.0.0/16", cidr("10.20.0.0/16")),
        ("10.20.3.4/16", cidr("10.20.0.0/16")),
        ("10.0.0.1", cidr("10.0.0.1/32")),
        ("fd00::/8", cidr("fd00::/8")),
        ("::1", cidr("::1/128")),
        ("0.0.0.0/0", cidr("0.0.0.0/0")),
        ("*.prod.internal", glob("*.prod.internal")),
        ("exa_mple.com", glob("exa_mple.com")),
        ("localhost", glob("localhost")),
    ];
    for (input, want) in ok {
        assert_eq!(&Matcher::parse(input), want, "{input}");
    }
    #[rustfmt::skip]
    let bad: &[(&str, &str)] = &[
        ("", "empty pattern"),
        ("10.0.0.0/33", "prefix length \"33\" must be a number from 0 to 32"),
        ("fd00::/129", "from 0 to 128"),
        ("10.0.0/8", "\"10.0.0\" is not an IP address"),
        ("300.1.1.1", "not a valid CIDR"),
        ("a/b", "not a valid CIDR"),
        ("*.prod internal", "character ' ' cannot appear"),
        ("[abc.com", "not a valid domain glob"),
        ("{a,b.com", "not a valid domain glob"),
        ("a\\b", "character '\\\\'"),
    ];
    for (input, want) in bad {
        let err = Matcher::parse(input).unwrap_err().to_string();
        assert!(err.contains(want), "{input}: {err}");
    }
}

#[test]
fn router_rejects_a_hand_built_bad_glob_with_its_index() {
    let rules = vec![
        Rule {
            matcher: Matcher::parse("*.a").unwrap(),
            action: Action::Direct,
            resolve: Resolve::Remote,
        },
        Rule {
            matcher: Matcher::DomainGlob("[oops".into()),
            action: Action::Direct,
            resolve: Resolve::Remote,
        },
    ];
    let err = Router::new(rules).unwrap_err();
    assert!(
        matches!(err, RouteError::BadRule { index: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("routes[1].match: "), "{err}");
}

#[test]
fn destination_vectors() {
    #[rustfmt::skip]
    let ok: &[(&str, HostRef<'_>, Option<u16>)] = &[
        ("10.0.0.1:22", ip("10.0.0.1"), Some(22)),
        ("10.0.0.1", ip("10.0.0.1"), None),
        ("[::1]:443", ip("::1"), Some(443)),
        ("[::1]", ip("::1"), None),
        ("::1", ip("::1"), None),
        ("fe80::1:80", ip("fe80::1:80"), None),
        ("host.example:80", HostRef::Domain("host.example"), Some(80)),
        ("host.example", HostRef::Domain("host.example"), None),
    ];
    for (input, host, port) in ok {
        assert_eq!(parse_destination(input).unwrap(), (*host, *port), "{input}");
    }
    for input in [
        "",
        ":80",
        "host:",
        "host:abc",
        "host:70000",
        "a:b:c",
        "[::1",
        "[::1]80",
        "[nope]:1",
    ] {
        assert!(
            matches!(
                parse_destination(input),
                Err(RouteError::InvalidDestination { .. })
            ),
            "{input}"
        );
    }
}

#[test]
fn actions_round_trip_through_via() {
    for (via, action, shown) in [
        ("direct", Action::Direct, "direct"),
        ("reject", Action::Reject, "reject"),
        ("bastion", up("bastion"), "upstream bastion"),
    ] {
        assert_eq!(Action::from_via(via), action);
        assert_eq!(action.as_via(), via);
        assert_eq!(action.to_string(), shown);
    }
    assert_eq!(up("x").upstream(), Some("x"));
    assert_eq!(Action::Direct.upstream(), None);
}

#[test]
fn routers_compare_by_rules() {
    assert_eq!(
        router(&[("*.a", Action::Direct)]),
        router(&[("*.a", Action::Direct)])
    );
    assert_ne!(
        router(&[("*.a", Action::Direct)]),
        router(&[("*.a", Action::Reject)])
    );
    assert_eq!(format!("{:?}", Router::default()), "Router { rules: [] }");
}

#[test]
fn a_reject_cidr_holds_for_every_spelling_of_its_address() {
    let r = router(&[("169.254.169.254", Action::Reject), ("*", Action::Direct)]);
    for spelling in [
        "2852039166",
        "0xa9fea9fe",
        "169.254.43518",
        "0251.0376.0251.0376",
        "[::ffff:a9fe:a9fe]",
    ] {
        let d = r.decide(&HostRef::parse(spelling), &Action::Direct);
        assert_eq!(d.action, Action::Reject, "{spelling}: {}", d.explanation);
        assert!(d.ip.is_some(), "{spelling} must be dialled as an address");
    }
}

#[test]
fn malformed_hosts_are_refused_whatever_the_default() {
    let r = router(&[]);
    let d = r.decide(&HostRef::parse("1.2.3.256"), &Action::Direct);
    assert_eq!((d.action, d.rule), (Action::Reject, None));
    assert!(d.explanation.contains("not a valid"), "{}", d.explanation);
}

#[test]
fn resolved_addresses_are_routed_by_cidr_and_any_reject_wins() {
    let r = Router::new(vec![
        Rule {
            matcher: Matcher::parse("10.0.0.0/8").unwrap(),
            action: up("vpc"),
            resolve: Resolve::Remote,
        },
        Rule {
            matcher: Matcher::parse("10.9.0.0/16").unwrap(),
            action: Action::Reject,
            resolve: Resolve::Remote,
        },
        Rule {
            matcher: Matcher::parse("*.example").unwrap(),
            action: Action::Direct,
            resolve: Resolve::Local,
        },
    ])
    .unwrap();
    let name = r.decide(&HostRef::parse("a.example"), &Action::Reject);
    assert!(name.resolve_locally);
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let d = r.decide_resolved("a.example", &name, &[ip("10.1.1.1")]);
    assert_eq!((d.action, d.ip), (up("vpc"), Some(ip("10.1.1.1"))));
    let d = r.decide_resolved("a.example", &name, &[ip("10.1.1.1"), ip("10.9.0.1")]);
    assert_eq!((d.action, d.rule), (Action::Reject, Some(1)));
    let d = r.decide_resolved("a.example", &name, &[ip("192.0.2.1")]);
    assert_eq!((d.action, d.ip), (Action::Direct, Some(ip("192.0.2.1"))));
    let d = r.decide_resolved("a.example", &name, &[]);
    assert_eq!(d.action, Action::Reject);
    let plain = r.decide(&HostRef::parse("b.other"), &Action::Direct);
    assert!(
        !plain.resolve_locally,
        "names resolve remotely unless configured"
    );
}
