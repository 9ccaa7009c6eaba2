//! `session-proxy instances` against the simulator: a fleet larger than one
//! DescribeInstanceInformation page is listed completely, `--filter` reaches the service,
//! `--online` and the name glob narrow locally, `--json` is one parseable array, and the
//! config's `hosts:` aliases and `upstreams:` are marked on the instances they point at. Also
//! botocore's own paginator walks the simulator's pages, so their shape is what AWS clients
//! expect. Names come from Name tags through the tagging API (the simulator, like AWS, reports
//! DescribeInstanceInformation's `Name` for hybrid nodes only), over as many pages as it takes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use serde_json::Value;
use session_proxy::sim::instances::parse_target_flag;
use session_proxy::sim::SimOptions;

/// More than one 50-instance page: 35 `web-NN`, 30 `db-NN`; every 4th one offline.
const FLEET: usize = 65;

fn id(n: usize) -> String {
    format!("i-{:017x}", n + 1)
}

fn name(n: usize) -> String {
    if n < 35 {
        format!("web-{n:02}")
    } else {
        format!("db-{n:02}")
    }
}

fn online(n: usize) -> bool {
    n % 4 != 3
}

fn fleet() -> SimHandle {
    let instances = (0..FLEET)
        .map(|n| {
            let off = if online(n) { "" } else { ",offline" };
            let spec = format!(
                "{}=127.0.0.1:9,name={},ip=10.0.{}.{},computer=host-{n}.internal{off}",
                id(n),
                name(n),
                n / 200,
                n % 200 + 1
            );
            parse_target_flag(&spec).unwrap()
        })
        .collect();
    SimHandle::start(SimOptions {
        instances,
        ..SimOptions::default()
    })
}

fn run(sim: &SimHandle, config: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    if let Some(cfg) = config {
        c.arg("--config").arg(cfg);
    }
    // No stray ./config.yaml: run where none exists.
    let dir = tempfile::tempdir().unwrap();
    c.current_dir(dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .arg("instances")
        .args(args)
        .envs(sim.env())
        .output()
        .unwrap()
}

fn json(sim: &SimHandle, config: Option<&Path>, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run(sim, config, &all);
    assert!(
        out.status.success(),
        "instances failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).unwrap() {
        Value::Array(rows) => rows,
        other => panic!("not a JSON array: {other}"),
    }
}

fn ids(rows: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_fleet_larger_than_one_page_is_listed_completely() {
    let sim = fleet();
    let rows = json(&sim, None, &[]);
    let want: Vec<String> = (0..FLEET).map(id).collect();
    assert_eq!(ids(&rows), want);
    let first = rows.iter().find(|r| r["id"] == id(0).as_str()).unwrap();
    assert_eq!(first["name"], "web-00");
    assert_eq!(first["ping_status"], "Online");
    assert_eq!(first["platform"], "Linux");
    assert_eq!(first["ip_address"], "10.0.0.1");
    assert_eq!(first["computer_name"], "host-0.internal");
    assert!(first["agent_version"].as_str().unwrap().starts_with('3'));
    assert!(first["last_ping"].as_str().unwrap().ends_with('Z'));
    let lost = rows.iter().find(|r| r["id"] == id(3).as_str()).unwrap();
    assert_eq!(lost["ping_status"], "ConnectionLost");
}

#[test]
fn online_glob_and_service_filters_narrow_the_list() {
    let sim = fleet();
    let online_ids: Vec<String> = (0..FLEET).filter(|n| online(*n)).map(id).collect();
    assert_eq!(ids(&json(&sim, None, &["--online"])), online_ids);

    let webs: Vec<String> = (0..35).map(id).collect();
    assert_eq!(ids(&json(&sim, None, &["web-*"])), webs);
    // The glob also matches ids and computer names.
    assert_eq!(ids(&json(&sim, None, &["host-4?.internal"])).len(), 10);

    let one = json(&sim, None, &["--filter", "tag:Name=db-40"]);
    assert_eq!(ids(&one), vec![id(40)]);
    let two = json(&sim, None, &["--filter", "tag:Name=db-40,web-03"]);
    assert_eq!(ids(&two), vec![id(3), id(40)]);
    let lost = json(
        &sim,
        None,
        &["--filter", "PingStatus=ConnectionLost", "db-*"],
    );
    let want: Vec<String> = (35..FLEET).filter(|n| !online(*n)).map(id).collect();
    assert_eq!(ids(&lost), want);
    assert!(json(&sim, None, &["--online", "--filter", "tag:Name=web-03"]).is_empty());
}

#[test]
fn a_filter_the_service_refuses_fails_with_its_reason() {
    let sim = fleet();
    let out = run(&sim, None, &["--filter", "PingStatus=Sleeping"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PingStatus"), "{err}");
    let out = run(&sim, None, &["--filter", "novalue"]);
    assert_eq!(out.status.code(), Some(2), "a bad flag is a usage error");
}

#[test]
fn config_aliases_and_upstreams_are_marked_on_their_instances() {
    let sim = fleet();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    let text = format!(
        "hosts:\n  front:\n    target: {}\n  reports:\n    target: db-40\nupstreams:\n  \
         pool:\n    targets: [web-01, {}]\n    user: ec2-user\n    ssh_agent: true\ndefault: direct\n",
        id(0),
        id(2)
    );
    std::fs::write(&cfg, text).unwrap();
    let rows = json(&sim, Some(&cfg), &[]);
    let marks = |n: usize| {
        let r = rows.iter().find(|r| r["id"] == id(n).as_str()).unwrap();
        (r["aliases"].clone(), r["upstreams"].clone())
    };
    assert_eq!(
        marks(0),
        (serde_json::json!(["front"]), serde_json::json!([]))
    );
    assert_eq!(
        marks(40),
        (serde_json::json!(["reports"]), serde_json::json!([]))
    );
    assert_eq!(
        marks(1),
        (serde_json::json!([]), serde_json::json!(["pool"]))
    );
    assert_eq!(
        marks(2),
        (serde_json::json!([]), serde_json::json!(["pool"]))
    );
    assert_eq!(marks(5), (serde_json::json!([]), serde_json::json!([])));

    let out = run(&sim, Some(&cfg), &["web-0[0-2]"]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(
        lines[0].starts_with("ID ") && lines[0].contains("USED BY"),
        "{table}"
    );
    assert!(lines[1].contains("host:front"), "{table}");
    assert!(lines[2].contains("upstream:pool"), "{table}");
    // Aligned: every row's NAME and PING cells start under their headers.
    for col in ["NAME", "PING"] {
        let at = lines[0].find(col).unwrap();
        for l in &lines[1..] {
            assert_eq!(&l[at - 2..at], "  ", "{table}");
            assert_ne!(&l[at..=at], " ", "{table}");
        }
    }
    assert!(
        !table.contains('\u{1b}'),
        "no colours when stdout is not a tty"
    );
}

const BOTOCORE_PAGES: &str = r#"
import os
import botocore.session
ssm = botocore.session.get_session().create_client("ssm", region_name="us-east-1",
                                                    endpoint_url=os.environ["AWS_ENDPOINT_URL"])
pages = ssm.get_paginator("describe_instance_information").paginate(
    PaginationConfig={"PageSize": 50})
sizes, ids = [], set()
for page in pages:
    items = page["InstanceInformationList"]
    sizes.append(len(items))
    for i in items:
        ids.add(i["InstanceId"])
        assert i["PingStatus"] in ("Online", "ConnectionLost"), i
        assert hasattr(i["LastPingDateTime"], "year"), i
print("sizes", sizes, "ids", len(ids))
"#;

#[test]
fn botocore_pages_the_simulated_describe_instance_information() {
    let sim = fleet();
    let stdout = botocore(BOTOCORE_PAGES, &[], &sim.env());
    assert!(
        stdout.contains(&format!("sizes [50, {}] ids {FLEET}", FLEET - 50)),
        "{stdout}"
    );
}

/// Named EC2 instances over three tagging pages (100 each), and a hybrid node.
fn big_named_fleet() -> (SimHandle, Vec<(String, String)>) {
    let mut want: Vec<(String, String)> =
        (0..230).map(|n| (id(n), format!("node-{n:03}"))).collect();
    want.push(("mi-0123456789abcdef0".into(), "hybrid-1".into()));
    let instances = want
        .iter()
        .map(|(i, name)| parse_target_flag(&format!("{i}=127.0.0.1:9,name={name}")).unwrap())
        .collect();
    let sim = SimHandle::start(SimOptions {
        instances,
        ..SimOptions::default()
    });
    (sim, want)
}

#[test]
fn ec2_names_come_from_name_tags_over_every_tagging_page() {
    let (sim, want) = big_named_fleet();
    let rows = json(&sim, None, &[]);
    let mut got: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let name = r["name"].as_str().unwrap_or_else(|| panic!("no name: {r}"));
            (r["id"].as_str().unwrap().to_owned(), name.to_owned())
        })
        .collect();
    got.sort();
    let mut want = want;
    want.sort();
    assert_eq!(got, want);
    // The glob matches the tag names too.
    assert_eq!(ids(&json(&sim, None, &["node-2*"])).len(), 30);
}

const BOTOCORE_TAGS: &str = r#"
import os
import botocore.session
tags = botocore.session.get_session().create_client("resourcegroupstaggingapi",
    region_name="us-east-1", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
pages = tags.get_paginator("get_resources").paginate(
    ResourceTypeFilters=["ec2:instance", "ssm:managed-instance"],
    TagFilters=[{"Key": "Name"}], ResourcesPerPage=100)
sizes, arns = [], set()
for page in pages:
    items = page["ResourceTagMappingList"]
    sizes.append(len(items))
    for m in items:
        arns.add(m["ResourceARN"])
        assert m["Tags"][0]["Key"] == "Name", m
one = tags.get_resources(TagFilters=[{"Key": "Name", "Values": ["node-007"]}])
print("sizes", sizes, "arns", len(arns), "one", one["ResourceTagMappingList"][0]["ResourceARN"])
try:
    tags.get_resources(ResourcesPerPage=500)
except tags.exceptions.InvalidParameterException as e:
    print("refused", e.response["Error"]["Code"])
"#;

#[test]
fn botocore_pages_the_simulated_get_resources() {
    let (sim, _) = big_named_fleet();
    let stdout = botocore(BOTOCORE_TAGS, &[], &sim.env());
    let want = format!(
        "sizes [100, 100, 31] arns 231 one arn:aws:ec2:us-east-1:123456789012:instance/{}",
        id(7)
    );
    assert!(stdout.contains(&want), "{stdout}");
    assert!(
        stdout.contains("refused InvalidParameterException"),
        "{stdout}"
    );
}

#[test]
fn without_tag_get_resources_the_listing_keeps_ssm_names_and_names_the_permission() {
    let (_, want) = big_named_fleet();
    let instances = want
        .iter()
        .map(|(i, name)| parse_target_flag(&format!("{i}=127.0.0.1:9,name={name}")).unwrap())
        .collect();
    let sim = SimHandle::start(SimOptions {
        instances,
        deny: vec!["tag:GetResources".into()],
        ..SimOptions::default()
    });
    let out = run(&sim, None, &["--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("grant tag:GetResources"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), want.len());
    for r in &rows {
        let hybrid = r["id"].as_str().unwrap().starts_with("mi-");
        match hybrid {
            true => assert_eq!(r["name"], "hybrid-1", "{r}"),
            false => assert!(r["name"].is_null(), "{r}"),
        }
    }
}
