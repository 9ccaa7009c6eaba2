//! Tests of [`super`]: behaviour pinned per rule.
use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn bare_flag_gives_an_online_instance_with_defaults() {
    let i = parse_target_flag("i-0123456789abcdef0=127.0.0.1:2222").unwrap();
    assert_eq!(
        i,
        Instance::new("i-0123456789abcdef0", addr("127.0.0.1:2222"))
    );
    assert!(i.online);
    assert_eq!(i.agent_version, DEFAULT_AGENT_VERSION);
}

#[test]
fn flag_options_fill_every_field() {
    let spec = "mi-0123456789abcdef0=[::1]:22,name=web,ip=10.0.0.5,\
                    computer=ip-10-0-0-5.ec2.internal,offline,agent=3.2.1.0";
    let i = parse_target_flag(spec).unwrap();
    assert_eq!(
        (i.id.as_str(), i.address),
        ("mi-0123456789abcdef0", addr("[::1]:22"))
    );
    assert_eq!(
        (i.name.as_deref(), i.ip_address.as_deref()),
        (Some("web"), Some("10.0.0.5"))
    );
    assert_eq!(i.computer_name.as_deref(), Some("ip-10-0-0-5.ec2.internal"));
    assert_eq!((i.online, i.agent_version.as_str()), (false, "3.2.1.0"));
}

#[test]
fn flag_errors_name_the_bad_part() {
    let cases = [
        ("i-0123456789abcdef0", "ID=ADDRESS"),
        ("web=127.0.0.1:22", "`web` is not an instance id"),
        ("i-0123456789ABCDEF0=127.0.0.1:22", "`i-0123456789ABCDEF0`"),
        ("i-0123=127.0.0.1:22", "`i-0123`"),
        (
            "i-01234567=localhost:22",
            "`localhost:22` is not an IP:PORT",
        ),
        ("i-01234567=127.0.0.1:0", "`127.0.0.1:0`"),
        (
            "i-01234567=127.0.0.1:22,colour=red",
            "unknown option `colour`",
        ),
        ("i-01234567=127.0.0.1:22,name=", "`name` needs a value"),
        (
            "i-01234567=127.0.0.1:22,name=a,name=b",
            "`name` is given twice",
        ),
        (
            "i-01234567=127.0.0.1:22,offline=yes",
            "`offline` takes no value",
        ),
        ("i-01234567=127.0.0.1:22,ip=ten", "ip `ten`"),
        (
            "i-01234567=127.0.0.1:22,agent=latest",
            "agent version `latest`",
        ),
    ];
    for (spec, want) in cases {
        let err = parse_target_flag(spec).unwrap_err().to_string();
        assert!(err.contains(want), "{spec}: {err}");
    }
}

#[test]
fn yaml_file_lists_instances_with_the_flag_keys() {
    let text = "instances:
  - id: i-0123456789abcdef0
    address: 127.0.0.1:2222
    name: web
  - {id: i-00000002, address: 127.0.0.1:2223, offline: true, agent: 3.1.0.0}
";
    let list = parse_yaml(text).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].name.as_deref(), Some("web"));
    assert_eq!(
        (list[1].online, list[1].agent_version.as_str()),
        (false, "3.1.0.0")
    );
}

#[test]
fn yaml_rejects_unknown_keys_bad_entries_and_duplicates() {
    let one = "- {id: i-00000001, address: 127.0.0.1:22}";
    let cases = [
        (
            "- {id: i-00000001, address: 127.0.0.1:22, port: 22}".to_owned(),
            "unknown field `port`",
        ),
        (
            format!("{one}\n  - {{id: x, address: 127.0.0.1:22}}"),
            "instances[1]: `x`",
        ),
        (format!("{one}\n  {one}"), "defined twice"),
    ];
    for (entries, want) in cases {
        let msg = parse_yaml(&format!("instances:\n  {entries}\n"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains(want), "{msg}");
    }
}

#[test]
fn load_file_names_the_file_in_errors() {
    let dir = std::env::temp_dir().join(format!("sim-instances-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("instances.yaml");
    std::fs::write(&path, "instances:\n  - {id: nope, address: 127.0.0.1:22}\n").unwrap();
    let msg = load_file(&path).unwrap_err().to_string();
    assert!(msg.contains("instances.yaml: instances[0]"), "{msg}");
    let missing = load_file(&dir.join("absent.yaml")).unwrap_err().to_string();
    assert!(missing.contains("absent.yaml"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn port_22_dials_the_mapped_address_and_other_ports_its_ip() {
    let i = Instance::new("i-01234567", addr("127.0.0.2:2222"));
    assert_eq!(i.dial_addr(22), addr("127.0.0.2:2222"));
    assert_eq!(i.dial_addr(5432), addr("127.0.0.2:5432"));
}

#[test]
fn host_options_map_names_to_loopback_ips_matched_case_insensitively() {
    let spec = "i-01234567=127.0.0.1:22,host=db.internal@127.0.0.1,host=Cache.Internal@[::1]";
    let i = parse_target_flag(spec).unwrap();
    assert_eq!(i.host_ip("DB.internal"), Some("127.0.0.1".parse().unwrap()));
    assert_eq!(i.host_ip("cache.internal"), Some("::1".parse().unwrap()));
    assert_eq!(i.host_ip("other.internal"), None);
    assert_eq!(i.hosts.len(), 2);
    let text = "instances:
  - id: i-0123456789abcdef0
    address: 127.0.0.1:2222
    hosts: {db.internal: 127.0.0.1, cache.internal: 127.0.0.2}
";
    let list = parse_yaml(text).unwrap();
    assert_eq!(
        list[0].host_ip("cache.internal"),
        Some("127.0.0.2".parse().unwrap())
    );
}

#[test]
fn bad_or_repeated_host_entries_name_the_entry() {
    let flag = |opts: &str| {
        parse_target_flag(&format!("i-01234567=127.0.0.1:22,{opts}"))
            .unwrap_err()
            .to_string()
    };
    let cases = [
        ("host=db.internal", "host `db.internal`: expected NAME@IP"),
        (
            "host=db.internal@10.0.0.5",
            "host `db.internal@10.0.0.5`: expected NAME@IP with a loopback IP",
        ),
        ("host=db.internal@nowhere", "host `db.internal@nowhere`"),
        ("host=bad name@127.0.0.1", "host `bad name@127.0.0.1`"),
        ("host=a..b@127.0.0.1", "host `a..b@127.0.0.1`"),
        (
            "host=db@127.0.0.1,host=db@127.0.0.2",
            "host `db` is mapped twice",
        ),
        ("host=DB@127.0.0.1,host=db@127.0.0.2", "is mapped twice"),
    ];
    for (opts, want) in cases {
        let err = flag(opts);
        assert!(err.contains(want), "{opts}: {err}");
    }
    let yaml = "instances:\n  - {id: i-00000001, address: 127.0.0.1:22, hosts: {db: 10.1.1.1}}\n";
    let err = parse_yaml(yaml).unwrap_err().to_string();
    assert!(err.contains("instances[0]: host `db@10.1.1.1`"), "{err}");
}
