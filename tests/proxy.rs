//! Corporate HTTP proxies, end to end with a real proxy (tinyproxy) in front of the simulator.
//! tinyproxy connects from its own loopback address ([`tinyproxy::OUTGOING`]), so the
//! simulator's table of peers proves that every API call and every data channel (first dial
//! and resumes) came through the proxy, or, with `NO_PROXY`, that none did.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::IpAddr;
use std::process::{Command, Output};

use common::tinyproxy::{Tinyproxy, OUTGOING};
use common::*;
use session_proxy::sim::faults::FaultPlan;
use session_proxy::sim::SimOptions;

const ID: &str = "i-0123456789abcdef0";
const PROXY_VARS: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

fn sim_for(sshd: &Sshd, faults: FaultPlan) -> SimHandle {
    SimHandle::start(SimOptions {
        instances: vec![instance(ID, sshd.addr)],
        faults,
        ..SimOptions::default()
    })
}

/// `c` with the simulator's AWS environment and exactly the proxy variables `vars`.
fn with_env<'a>(c: &'a mut Command, sim: &SimHandle, vars: &[(&str, &str)]) -> &'a mut Command {
    for v in PROXY_VARS {
        c.env_remove(v);
    }
    for (k, v) in sim.env() {
        c.env(k, v);
    }
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

fn ssh(sim: &SimHandle, sshd: &Sshd, vars: &[(&str, &str)], remote: &str) -> Output {
    let mut c = ssh_cmd(sim, sshd, ID, "");
    with_env(&mut c, sim, vars).arg(remote).output().unwrap()
}

fn instances(sim: &SimHandle, vars: &[(&str, &str)], config: Option<&std::path::Path>) -> Output {
    let mut c = Command::new(BIN);
    if let Some(p) = config {
        c.arg("--config").arg(p);
    }
    with_env(&mut c, sim, vars)
        .arg("instances")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The simulator's peers: every address that connected to it.
fn peers(sim: &SimHandle) -> Vec<IpAddr> {
    sim.sim().peers().into_keys().collect()
}

#[test]
fn ssh_through_stdio_reaches_the_simulator_only_through_the_proxy_from_the_environment() {
    let sshd = Sshd::start();
    let sim = sim_for(&sshd, FaultPlan::default());
    let proxy = Tinyproxy::start(&[sim.sim().addr().port()], None);
    let url = proxy.url(None);
    let env = [("HTTPS_PROXY", url.as_str()), ("HTTP_PROXY", url.as_str())];
    let file = random_file(sshd.dir.path(), "payload.bin", 8);
    let out = ssh(&sim, &sshd, &env, &format!("cat {}", file.display()));
    assert!(out.status.success(), "ssh: {}", text(&out.stderr));
    let got = sshd.dir.path().join("got.bin");
    std::fs::write(&got, &out.stdout).unwrap();
    assert_eq!(sha256_file(&got), sha256_file(&file), "download corrupted");
    assert_eq!(peers(&sim), vec![OUTGOING], "something bypassed the proxy");
    let reqs = proxy.requests();
    let ws = format!("CONNECT {} HTTP/1.1", sim.sim().addr());
    assert!(
        reqs.contains(&ws),
        "no CONNECT for the data channel: {reqs:?}"
    );
    let api = format!("POST {}/ HTTP/1.1", sim.endpoint);
    assert!(
        reqs.contains(&api),
        "no API call through the proxy: {reqs:?}"
    );
}

#[test]
fn a_resumed_data_channel_goes_through_the_proxy_again() {
    let sshd = Sshd::start();
    let plan = FaultPlan {
        kill_after_bytes: Some(1024 * 1024),
        ..FaultPlan::default()
    };
    let sim = sim_for(&sshd, plan);
    let proxy = Tinyproxy::start(&[sim.sim().addr().port()], None);
    let url = proxy.url(None);
    let env = [("https_proxy", url.as_str()), ("http_proxy", url.as_str())];
    let file = random_file(sshd.dir.path(), "payload.bin", 4);
    let out = ssh(&sim, &sshd, &env, &format!("cat {}", file.display()));
    assert!(out.status.success(), "ssh: {}", text(&out.stderr));
    let got = sshd.dir.path().join("got.bin");
    std::fs::write(&got, &out.stdout).unwrap();
    assert_eq!(sha256_file(&got), sha256_file(&file), "download corrupted");
    let kills: u64 = sim.sim().stats().iter().map(|s| s.faults.kills).sum();
    assert!(kills >= 2, "the fault plan killed {kills} WebSockets");
    let ws = format!("CONNECT {} HTTP/1.1", sim.sim().addr());
    let tunnels = proxy.requests().iter().filter(|r| **r == ws).count() as u64;
    assert!(
        tunnels > kills,
        "{tunnels} CONNECTs for 1 dial + {kills} resumes"
    );
    assert_eq!(peers(&sim), vec![OUTGOING], "a resume bypassed the proxy");
}

#[test]
fn no_proxy_matching_the_simulator_bypasses_the_proxy() {
    let sshd = Sshd::start();
    let sim = sim_for(&sshd, FaultPlan::default());
    let proxy = Tinyproxy::start(&[sim.sim().addr().port()], None);
    let url = proxy.url(None);
    let env = [
        ("HTTPS_PROXY", url.as_str()),
        ("HTTP_PROXY", url.as_str()),
        ("NO_PROXY", "example.invalid, 127.0.0.0/8"),
    ];
    let out = ssh(&sim, &sshd, &env, "echo direct");
    assert!(out.status.success(), "ssh: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "direct");
    assert_eq!(peers(&sim), vec![IpAddr::from([127, 0, 0, 1])]);
    assert_eq!(proxy.requests(), Vec::<String>::new());
}

#[test]
fn instances_lists_through_the_proxy_and_an_unreachable_proxy_is_named() {
    let sshd = Sshd::start();
    let sim = sim_for(&sshd, FaultPlan::default());
    let proxy = Tinyproxy::start(&[], None);
    let url = proxy.url(None);
    let out = instances(&sim, &[("HTTP_PROXY", url.as_str())], None);
    assert!(out.status.success(), "instances: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains(ID), "{}", text(&out.stdout));
    assert_eq!(peers(&sim), vec![OUTGOING]);
    let (_hold, port) = refusing_port();
    let dead = format!("http://127.0.0.1:{port}");
    let out = instances(&sim, &[("HTTP_PROXY", dead.as_str())], None);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{err}");
    assert!(err.contains(&format!("through the proxy {dead}")), "{err}");
}

/// `session-proxy stdio` with the API endpoint named `localhost` and `NO_PROXY=localhost`: the
/// API calls go direct, the data channel (`ws://127.0.0.1:…`) through `proxy_url`. A proxy
/// answers an absolute-form POST it refuses and closes before reading the body, so the 407 can
/// be lost to a reset; a CONNECT has no body, so this is where the 407 is checked.
fn stdio_via_proxy_for_the_data_channel(sim: &SimHandle, proxy_url: &str) -> Output {
    let endpoint = sim.endpoint.replace("127.0.0.1", "localhost");
    let mut c = Command::new(BIN);
    with_env(
        &mut c,
        sim,
        &[("HTTP_PROXY", proxy_url), ("NO_PROXY", "localhost")],
    )
    .env("AWS_ENDPOINT_URL", endpoint)
    .args(["stdio", ID, "-p", "22"])
    .stdin(std::process::Stdio::null())
    .output()
    .unwrap()
}

#[test]
fn a_proxy_wanting_credentials_gets_a_redacted_error_and_works_with_them() {
    let sshd = Sshd::start();
    let sim = sim_for(&sshd, FaultPlan::default());
    let proxy = Tinyproxy::start(&[sim.sim().addr().port()], Some(("corp", "s3cr3t")));
    let bare = proxy.url(None);
    // The API call's 407 (an absolute-form POST: the SDK sees the proxy's answer).
    let out = instances(&sim, &[("HTTP_PROXY", bare.as_str())], None);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains(&format!("the proxy {bare} wants credentials")),
        "{err}"
    );
    // The data channel's 407 (a CONNECT), with the API calls going direct.
    let out = stdio_via_proxy_for_the_data_channel(&sim, &bare);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains(&format!("the proxy {bare} wants credentials")),
        "{err}"
    );
    let wrong = proxy.url(Some("corp:hunter2"));
    let out = stdio_via_proxy_for_the_data_channel(&sim, &wrong);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(err.contains(&format!("http://***@{}", proxy.addr)), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let tunnels = proxy
        .requests()
        .iter()
        .filter(|r| r.starts_with("CONNECT"))
        .count();
    assert_eq!(tunnels, 2, "one refused CONNECT each, no retries");
    // Right credentials (%-escaped in the URL): the API calls and the data channel's CONNECT
    // both authenticate.
    // At trace level, so the logs would show the password if anything logged it.
    let good = proxy.url(Some("corp:s3cr%33t"));
    let mut c = ssh_cmd(&sim, &sshd, ID, "-vvv");
    let out = with_env(&mut c, &sim, &[("HTTP_PROXY", good.as_str())])
        .arg("echo authenticated")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "ssh: {err}");
    assert_eq!(text(&out.stdout).trim(), "authenticated");
    assert!(
        err.contains("through the proxy http://***@"),
        "no trace of the proxy: {err}"
    );
    for secret in ["s3cr3t", "s3cr%33t", "Y29ycDpzM2NyM3Q="] {
        assert!(!err.contains(secret), "{secret} in the logs");
    }
    let reqs = proxy.requests();
    assert!(reqs.iter().any(|r| r.starts_with("POST ")), "{reqs:?}");
    // The sim saw the direct API calls of the refused attempts, and nothing else direct.
    let direct = sim
        .sim()
        .peers()
        .get(&IpAddr::from([127, 0, 0, 1]))
        .copied();
    assert!(direct.unwrap_or(0) >= 2, "{:?}", sim.sim().peers());
    assert!(sim.sim().peers().contains_key(&OUTGOING));
}

#[test]
fn a_data_channel_dial_through_a_proxy_without_credentials_names_the_proxy() {
    use session_proxy::proxy::{Proxies, ProxySetting, ProxyUrl};
    use session_proxy::ssm::dial::{self, DialError};
    let sshd = Sshd::start();
    let sim = sim_for(&sshd, FaultPlan::default());
    let proxy = Tinyproxy::start(&[sim.sim().addr().port()], Some(("corp", "s3cr3t")));
    let setting = ProxySetting::Url(ProxyUrl::parse("proxy", &proxy.url(None)).unwrap());
    let proxies = Proxies::resolve(&setting, |_| None);
    let url = format!("ws://{}/v1/data-channel/s-1", sim.sim().addr());
    let client = dial::Client {
        client_id: "c",
        client_version: "1",
    };
    let err = sim
        .rt
        .block_on(dial::open(&url, "token", &client, None, &proxies))
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, DialError::Proxy(_)), "{err}");
    assert!(err.is_refused(), "a 407 is not worth retrying: {err}");
    let want = format!("the proxy http://{} wants credentials", proxy.addr);
    assert!(err.to_string().contains(&want), "{err}");
    assert!(sim.sim().peers().is_empty(), "{:?}", sim.sim().peers());
}

#[test]
fn serve_with_the_proxy_key_carries_curl_through_the_proxy() {
    let web = http_server(
        "127.0.0.1:0",
        vec![("/hello".into(), b"via proxy".to_vec())],
    );
    let sshd = Sshd::start_with(&format!("PermitOpen {web}"));
    let sim = sim_for(&sshd, FaultPlan::default());
    let proxy = Tinyproxy::start(&[sim.sim().addr().port()], Some(("corp", "s3cr3t")));
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "proxy: {url}\nlisteners:\n  - socks5: 127.0.0.1:0\nupstreams:\n  bastion:\n    targets: [{ID}]\n    user: {user}\n    identity_files: [{key}]\n    pool_size: 1\nroutes:\n  - match: 127.0.0.0/8\n    via: bastion\nstate_dir: {state}\n",
        url = proxy.url(Some("corp:s3cr%33t")),
        user = user(),
        key = sshd.client_key.display(),
        state = dir.path().join("state").display(),
    );
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, cfg).unwrap();
    // The environment names a proxy that does not exist: `proxy:` must win over it.
    let (_hold, port) = refusing_port();
    let dead = format!("http://127.0.0.1:{port}");
    let serve = Serve::start_with_env(
        &sim,
        &path,
        &[("HTTP_PROXY", &dead), ("HTTPS_PROXY", &dead)],
    );
    let (rc, body, err) = curl(serve.socks, &format!("http://{web}/hello"), &[]);
    assert_eq!(rc, 0, "curl: {err}");
    assert_eq!(body, b"via proxy");
    assert_eq!(peers(&sim), vec![OUTGOING]);
    let reqs = proxy.requests();
    let ws = format!("CONNECT {} HTTP/1.1", sim.sim().addr());
    assert!(
        reqs.contains(&ws),
        "no CONNECT for the data channel: {reqs:?}"
    );
}
