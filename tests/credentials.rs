//! Credentials that expire, end to end: `credential_process` scripts fetch short-lived keys
//! from a simulator that accepts only the keys it minted (`sim --credential-lifetime`) and
//! count their calls; the real `curl` goes through `serve`, the real `ssh`-less `stdio`
//! path is checked for its exit code. Pins:
//! - a master refreshes through the SDK's cache across many ResumeSessions (signed upgrades
//!   included) without losing a byte, and runs the process a bounded number of times;
//! - credentials that need a login show as `credentials expired` with the command, the other
//!   upstream keeps serving, a client is refused at once, and the upstream comes back by itself;
//! - `stdio` with such a profile exits 77 naming the command.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use session_proxy::sim::faults::FaultPlan;
use session_proxy::sim::SimOptions;

const GOOD: &str = "i-0aaaaaaaaaaaaaaa1";
const FLAKY: &str = "i-0bbbbbbbbbbbbbbb2";
/// The AWS CLI's words for an expired SSO login, as a `credential_process` wrapper prints them.
const SSO_EXPIRED: &str = "The SSO session associated with this profile has expired or is otherwise invalid. To refresh this SSO session run aws sso login with the corresponding profile.";

/// A temp dir with an AWS config whose profiles `good` and `flaky` run counting
/// `credential_process` scripts against `sim`; `fail-<profile>` makes a script fail.
struct Profiles {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Profiles {
    fn new(sim: &SimHandle) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = String::new();
        for p in ["good", "flaky"] {
            let d = dir.path().display();
            let script = dir.path().join(format!("creds-{p}.sh"));
            let body = format!(
                "#!/bin/sh\necho call >> '{d}/calls-{p}'\nif [ -e '{d}/fail-{p}' ]; then echo '{SSO_EXPIRED}' >&2; exit 1; fi\nexec curl -sSf {}/_sim/credentials\n",
                sim.endpoint
            );
            std::fs::write(&script, body).unwrap();
            let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
            std::fs::set_permissions(&script, mode).unwrap();
            config.push_str(&format!(
                "[profile {p}]\ncredential_process = {}\n",
                script.display()
            ));
        }
        let path = dir.path().join("aws-config");
        std::fs::write(&path, config).unwrap();
        Self { dir, config: path }
    }

    /// The simulator's endpoint and these profiles, and no other AWS credentials.
    fn env(&self, c: &mut Command, sim: &SimHandle) {
        for k in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
        ] {
            c.env_remove(k);
        }
        c.env("AWS_ENDPOINT_URL", &sim.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", &self.config)
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("SESSION_PROXY_CREDENTIALS_RETRY_SECS", "1");
    }

    fn calls(&self, profile: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join(format!("calls-{profile}")))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    fn set_failing(&self, profile: &str, failing: bool) {
        let flag = self.dir.path().join(format!("fail-{profile}"));
        if failing {
            std::fs::write(flag, "").unwrap();
        } else {
            std::fs::remove_file(flag).unwrap();
        }
    }
}

/// `serve --foreground` with two upstreams, `good` (127.10/16) and `flaky` (127.20/16), one
/// connection each, logging to `serve.log`.
struct Master {
    child: Child,
    socks: std::net::SocketAddr,
    control: PathBuf,
    log: PathBuf,
}

impl Master {
    fn start(sim: &SimHandle, sshd: &Sshd, profiles: &Profiles) -> Self {
        let dir = profiles.dir.path();
        let upstream = |name: &str, target: &str| {
            format!(
                "  {name}:\n    targets: [{target}]\n    profile: {name}\n    user: {}\n    identity_files: [{}]\n    pool_size: 1\n",
                user(),
                sshd.client_key.display()
            )
        };
        let cfg = format!(
            "listeners:\n  - socks5: 127.0.0.1:0\nupstreams:\n{}{}routes:\n  - match: 127.10.0.0/16\n    via: good\n  - match: 127.20.0.0/16\n    via: flaky\ndefault: reject\nstate_dir: {}\n",
            upstream("good", GOOD),
            upstream("flaky", FLAKY),
            dir.join("state").display()
        );
        let config = dir.join("config.yaml");
        std::fs::write(&config, cfg).unwrap();
        let (control, ready, log) = (
            dir.join("control.sock"),
            dir.join("serve.ready"),
            dir.join("serve.log"),
        );
        let mut c = Command::new(BIN);
        c.args(["serve", "--foreground", "--config"])
            .arg(&config)
            .arg("--control-socket")
            .arg(&control)
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        profiles.env(&mut c, sim);
        let mut child = c.spawn().unwrap();
        let socks = wait_ready_file(&ready, &mut child, Duration::from_secs(60)).unwrap()[0];
        Self {
            child,
            socks,
            control,
            log,
        }
    }

    fn status(&self, json: bool) -> (Option<i32>, String) {
        let mut c = Command::new(BIN);
        c.arg("status").arg("--control-socket").arg(&self.control);
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), text)
    }

    /// The state of upstream `name` in `status --json`.
    fn state(&self, name: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.status(true).1).unwrap();
        let u = v["upstreams"].as_array().unwrap().iter();
        let found = u.clone().find(|u| u["name"] == name).unwrap();
        found["state"].as_str().unwrap().to_owned()
    }

    /// Polls until upstream `name` is in `state` (the hang guard is generous).
    fn wait_state(&self, name: &str, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.state(name) != state {
            assert!(
                Instant::now() < deadline,
                "{name} never became {state}: {}\n{}",
                self.status(false).1,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two web servers (one per route), an sshd that may open both, and a simulator whose
/// instances `GOOD` and `FLAKY` both lead to that sshd.
fn fixture(lifetime: Duration, faults: FaultPlan, blob: &[u8]) -> (SimHandle, Sshd, [String; 2]) {
    let files = || vec![("/blob".to_owned(), blob.to_vec())];
    let good_web = http_server("127.10.0.1:0", files());
    let flaky_web = http_server("127.20.0.1:0", files());
    let sshd = Sshd::start_with(&format!("PermitOpen {good_web} {flaky_web}"));
    let sim = SimHandle::start(SimOptions {
        instances: vec![instance(GOOD, sshd.addr), instance(FLAKY, sshd.addr)],
        faults,
        credential_lifetime: Some(lifetime),
        ..SimOptions::default()
    });
    let urls = [
        format!("http://{good_web}/blob"),
        format!("http://{flaky_web}/blob"),
    ];
    (sim, sshd, urls)
}

fn blob(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) >> 3) as u8).collect()
}

/// The SDK's cache refreshes 5 to 10 s before expiry (a 10 s buffer less up to 5 s of
/// jitter): with 12 s keys each refresh is good for 2 to 7 s, so a 20 s run needs at least
/// three and at most about ten, while a signer that bypassed the cache would run the process
/// for every one of the many upgrades (the WebSocket is killed every second).
#[test]
fn a_master_refreshes_expiring_keys_across_many_resumes_without_losing_bytes() {
    let data = blob(2 * 1024 * 1024);
    let faults = FaultPlan {
        kill_every: Some(Duration::from_secs(1)),
        ..FaultPlan::default()
    };
    let (sim, sshd, urls) = fixture(Duration::from_secs(12), faults, &data);
    let profiles = Profiles::new(&sim);
    let master = Master::start(&sim, &sshd, &profiles);
    let started = Instant::now();
    let mut downloads = 0;
    while started.elapsed() < Duration::from_secs(20) || downloads < 3 {
        let (code, body, err) = curl(master.socks, &urls[0], &[]);
        assert_eq!(
            code,
            0,
            "download {downloads}: {err}\n{}",
            master.log_text()
        );
        assert!(
            body == data,
            "download {downloads} corrupted ({} bytes)",
            body.len()
        );
        downloads += 1;
    }
    let elapsed = started.elapsed().as_secs() as usize;
    let resumes: u32 = sim.sim().stats().iter().map(|s| s.client_reconnects).sum();
    let upgrades = sim.sim().upgrades();
    let calls = profiles.calls("good");
    let all_calls = calls + profiles.calls("flaky");
    assert!(resumes >= 5, "the kill fault did not fire often: {resumes}");
    assert_eq!(
        upgrades.refused, 0,
        "an upgrade was signed with stale keys: {upgrades:?}"
    );
    assert!(upgrades.signed > u64::from(resumes), "{upgrades:?}");
    eprintln!(
        "{calls} refreshes, {resumes} resumes, {upgrades:?}, {downloads} downloads in {elapsed}s"
    );
    assert!(
        calls >= 3,
        "credentials were refreshed only {calls} times in {elapsed}s"
    );
    assert!(
        calls <= elapsed / 2 + 3 && (calls as u64) * 2 < upgrades.signed,
        "{calls} credential_process runs in {elapsed}s for {} signed upgrades: not cached",
        upgrades.signed
    );
    assert_eq!(sim.sim().credentials_issued(), all_calls as u64);
}

#[test]
fn credentials_needing_a_login_show_as_expired_while_other_upstreams_serve_then_recover() {
    let data = blob(256 * 1024);
    let (sim, sshd, urls) = fixture(Duration::from_secs(600), FaultPlan::default(), &data);
    let profiles = Profiles::new(&sim);
    profiles.set_failing("flaky", true);
    let master = Master::start(&sim, &sshd, &profiles);
    master.wait_state("flaky", "credentials-expired");
    let (code, table) = master.status(false);
    assert_eq!(
        code,
        Some(68),
        "status flags the upstream for monitoring:\n{table}"
    );
    let row = table.lines().find(|l| l.starts_with("flaky ")).unwrap();
    assert!(row.contains("credentials expired"), "{table}");
    let full = "upstream flaky: credentials expired: ";
    let line = table
        .lines()
        .find(|l| l.starts_with(full))
        .unwrap_or_default();
    assert!(line.contains("aws sso login --profile flaky"), "{table}");

    let (code, body, err) = curl(master.socks, &urls[0], &[]);
    assert!(
        code == 0 && body == data,
        "the good upstream stopped serving: {err}"
    );
    // Refused, not held until a timeout (curl's 28 would mean it hung).
    let (code, _, err) = curl(master.socks, &urls[1], &["--max-time", "30"]);
    assert!(code != 0 && code != 28, "exit {code}: {err}");
    // The refusal's own log line (it names the destination) says what to run.
    let log = master.log_text();
    let refusal =
        |l: &&str| l.contains("127.20.0.1") && l.contains("aws sso login --profile flaky");
    assert!(log.lines().any(|l| refusal(&l)), "{log}");

    profiles.set_failing("flaky", false);
    master.wait_state("flaky", "up");
    let (code, body, err) = curl(master.socks, &urls[1], &[]);
    assert!(code == 0 && body == data, "flaky did not recover: {err}");
}

#[test]
fn stdio_with_credentials_needing_a_login_exits_77_naming_the_command() {
    let (sim, _sshd, _) = fixture(Duration::from_secs(600), FaultPlan::default(), b"x");
    let profiles = Profiles::new(&sim);
    profiles.set_failing("flaky", true);
    let mut c = Command::new(BIN);
    c.args(["stdio", FLAKY, "-p", "22"]).stdin(Stdio::null());
    profiles.env(&mut c, &sim);
    c.env("AWS_PROFILE", "flaky");
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(err.contains("aws sso login --profile flaky"), "{err}");
    assert_eq!(profiles.calls("flaky"), 1, "failed fast, without retries");
}

/// botocore against `sim --credential-lifetime`: minted keys work until their `Expiration`,
/// then the call is `ExpiredTokenException`; keys the simulator never minted and a wrong
/// secret get the service's codes, HTTP 400. botocore signs differently from the Rust SDK
/// (other headers), so this pins that the check follows the client's `SignedHeaders`.
const BOTOCORE_SCRIPT: &str = r#"
import datetime, json, os, sys, time, urllib.request
import botocore.session
from botocore.exceptions import ClientError
endpoint = os.environ["AWS_ENDPOINT_URL"]
session = botocore.session.get_session()
def client(key, secret, token):
    return session.create_client("ssm", region_name="us-east-1", endpoint_url=endpoint,
        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token)
def call(c, label):
    try:
        c.describe_instance_information()
        print(label, "ok")
    except ClientError as e:
        err = e.response["Error"]
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        print(label, err["Code"], status, err["Message"])
client("warm", "up", None)  # loads the service model before the clock matters
fresh = False
for _ in range(5):  # a slow start may see a key expire before its first use: take another
    creds = json.load(urllib.request.urlopen(endpoint + "/_sim/credentials"))
    c = client(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    try:
        c.describe_instance_information()
        fresh = True
        break
    except ClientError as e:
        if e.response["Error"]["Code"] != "ExpiredTokenException":
            raise
print("fresh", "ok" if fresh else "never")
call(client(creds["AccessKeyId"], "wrong", creds["SessionToken"]), "badsig")
call(client("AKIASIMULATOR0000000", "simulator-secret-key", None), "unknown")
expires = datetime.datetime.strptime(creds["Expiration"], "%Y-%m-%dT%H:%M:%SZ")
expires = expires.replace(tzinfo=datetime.timezone.utc).timestamp()
time.sleep(max(0.0, expires - time.time()) + 0.5)
call(c, "expired")
"#;

#[test]
fn botocore_gets_the_services_codes_for_minted_expired_unknown_and_badly_signed_keys() {
    let sim = SimHandle::start(SimOptions {
        credential_lifetime: Some(Duration::from_secs(3)),
        ..SimOptions::default()
    });
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", sim.endpoint.as_str()),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec();
    let stdout = botocore(BOTOCORE_SCRIPT, &[], &env);
    for want in [
        "fresh ok",
        "badsig InvalidSignatureException 400",
        "unknown UnrecognizedClientException 400",
        "expired ExpiredTokenException 400 The security token included in the request is expired",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(want)),
            "{want}:\n{stdout}"
        );
    }
}
