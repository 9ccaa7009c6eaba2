//! Tests of [`super`]: the grammar, its errors, the document choice, and a property test.
use proptest::prelude::*;

use super::*;

const DOC_INSTANCE: &str = "AWS-StartPortForwardingSession";
const DOC_REMOTE_HOST: &str = "AWS-StartPortForwardingSessionToRemoteHost";

fn spec(s: &str) -> ForwardSpec {
    ForwardSpec::parse(s, Some(Path::new("/home/u"))).unwrap()
}

fn tcp(addr: &str) -> ListenOn {
    ListenOn::Tcp(addr.parse().unwrap())
}

fn dest(host: Host, port: u16) -> Destination {
    Destination { host, port }
}

fn domain(d: &str) -> Host {
    Host::Domain(d.to_owned())
}

#[test]
fn tcp_specs_listen_on_loopback_unless_a_bind_address_is_given() {
    let cases = [
        (
            "5432:db.internal:5432",
            "127.0.0.1:5432",
            domain("db.internal"),
            5432,
        ),
        ("0:localhost:22", "127.0.0.1:0", domain("localhost"), 22),
        (
            "10.0.0.1:80:10.1.2.3:8080",
            "10.0.0.1:80",
            Host::Ip("10.1.2.3".parse().unwrap()),
            8080,
        ),
        (
            "[::1]:8443:[fd00::5]:443",
            "[::1]:8443",
            Host::Ip("fd00::5".parse().unwrap()),
            443,
        ),
        (
            "0.0.0.0:3000:web_1.internal:65535",
            "0.0.0.0:3000",
            domain("web_1.internal"),
            65535,
        ),
    ];
    for (s, listen, host, port) in cases {
        let got = spec(s);
        assert_eq!(got.listen, tcp(listen), "{s}");
        assert_eq!(got.dest, dest(host, port), "{s}");
    }
}

#[test]
fn paths_give_unix_listeners_with_home_expanded_and_colons_allowed() {
    let got = spec("/run/user/1/db.sock:db.internal:5432");
    assert_eq!(got.listen, ListenOn::Unix("/run/user/1/db.sock".into()));
    assert_eq!(got.dest, dest(domain("db.internal"), 5432));
    assert_eq!(
        spec("~/sockets/pg.sock:localhost:5432").listen,
        ListenOn::Unix("/home/u/sockets/pg.sock".into())
    );
    let colon = spec("/tmp/a:b.sock:[::1]:80");
    assert_eq!(colon.listen, ListenOn::Unix("/tmp/a:b.sock".into()));
    assert_eq!(colon.dest, dest(Host::Ip("::1".parse().unwrap()), 80));
}

#[test]
fn errors_name_the_bad_part_and_the_expected_form() {
    let cases = [
        ("", "too few parts"),
        ("5432:db.internal", "too few parts"),
        ("5432", "too few parts"),
        ("5432:db.internal:0", "destination port \"0\""),
        ("5432:db.internal:65536", "destination port \"65536\""),
        ("5432:db.internal:+80", "destination port \"+80\""),
        ("70000:db:5432", "local port \"70000\""),
        (":5432:db:5432", "bind address \"\""),
        ("localhost:5432:db:5432", "bind address \"localhost\""),
        ("::1:5432:db:5432", "bind address \"::1\""),
        (
            "5432:db..internal:5432",
            "destination host \"db..internal\"",
        ),
        ("5432:db internal:5432", "destination host \"db internal\""),
        ("5432:[db]:5432", "destination host \"[db]\""),
        ("5432::5432", "destination host \"\""),
        ("~bob/x.sock:db:1", "not ~user"),
    ];
    for (s, want) in cases {
        let err = ForwardSpec::parse(s, Some(Path::new("/home/u")))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{s}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
        let names_form = err.contains(EXPECTED) || err.contains("absolute path");
        assert!(names_form, "{s}: {err}");
    }
    let no_home = ForwardSpec::parse("~/x.sock:db:1", None).unwrap_err();
    assert_eq!(no_home, SpecError::NoHome("~/x.sock".into()));
}

#[test]
fn localhost_runs_the_instance_document_and_other_hosts_the_remote_host_one() {
    let local = spec("5432:LocalHost:5432").session_request("i-0123456789abcdef0");
    assert_eq!(local.target, "i-0123456789abcdef0");
    assert_eq!(local.document, DOC_INSTANCE);
    assert_eq!(
        local.parameters,
        [("portNumber".to_owned(), "5432".to_owned())]
    );

    let param = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let remote = spec("5432:db.internal:5433").session_request("i-1");
    assert_eq!(remote.document, DOC_REMOTE_HOST);
    assert_eq!(
        remote.parameters,
        [param("host", "db.internal"), param("portNumber", "5433")]
    );
    let v6 = spec("1:[fd00::5]:443").session_request("i-1");
    assert_eq!(
        (v6.document.as_str(), v6.parameters),
        (
            DOC_REMOTE_HOST,
            vec![param("host", "fd00::5"), param("portNumber", "443")]
        )
    );
    let v4 = spec("1:127.0.0.1:22").session_request("i-1");
    assert_eq!(
        v4.document, DOC_REMOTE_HOST,
        "only the name localhost means the instance"
    );
}

#[test]
fn display_shows_the_canonical_spec_and_listen_addresses() {
    assert_eq!(
        spec("5432:db.internal:5432").to_string(),
        "127.0.0.1:5432:db.internal:5432"
    );
    assert_eq!(
        spec("[::1]:1:[fd00::5]:2").to_string(),
        "[::1]:1:[fd00::5]:2"
    );
    assert_eq!(spec("~/a.sock:db:3").to_string(), "/home/u/a.sock:db:3");
    assert_eq!(
        spec("~/a.sock:db:3").listen.to_string(),
        "unix:/home/u/a.sock"
    );
    assert_eq!(spec("7:db:3").listen.to_string(), "127.0.0.1:7");
}

fn ip_strategy() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

fn host_strategy() -> impl Strategy<Value = Host> {
    prop_oneof![
        ip_strategy().prop_map(Host::Ip),
        "[a-z][a-z0-9_-]{0,12}(\\.[a-z0-9][a-z0-9-]{0,12}){0,4}".prop_map(Host::Domain),
    ]
}

fn listen_strategy() -> impl Strategy<Value = ListenOn> {
    prop_oneof![
        (ip_strategy(), any::<u16>()).prop_map(|(ip, p)| ListenOn::Tcp(SocketAddr::new(ip, p))),
        "/[a-zA-Z0-9_.:\\[\\]-]{1,40}".prop_map(|p| ListenOn::Unix(PathBuf::from(p))),
    ]
}

proptest! {
    #[test]
    fn any_text_is_parsed_or_refused_without_panicking(s in any::<String>()) {
        let _ = ForwardSpec::parse(&s, Some(Path::new("/h")));
    }

    #[test]
    fn spec_shaped_text_is_parsed_or_refused_without_panicking(
        s in "[\\[\\]:0-9a-f./~ -]{0,40}"
    ) {
        let _ = ForwardSpec::parse(&s, Some(Path::new("/h")));
        let _ = ForwardSpec::parse(&s, None);
    }

    #[test]
    fn valid_specs_round_trip_through_display(
        listen in listen_strategy(),
        host in host_strategy(),
        port in 1u16..,
    ) {
        let spec = ForwardSpec { listen, dest: Destination { host, port } };
        let text = spec.to_string();
        prop_assert_eq!(ForwardSpec::parse(&text, None), Ok(spec), "{}", text);
    }
}
