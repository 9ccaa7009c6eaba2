//! `session-proxy doctor` against the simulator (issue 15, point 7): every check passes with a
//! running `serve` master; a missing region, a bad config file, an offline target and a
//! control socket others may open each FAIL with their fix and exit code, while the checks
//! that do not depend on them still run; no master is only a warning; `--json` says what the
//! text says. botocore parses the simulator's STS GetCallerIdentity, which doctor calls.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::*;
use serde_json::Value;
use session_proxy::sim::instances::parse_target_flag;
use session_proxy::sim::SimOptions;

const ONLINE: &str = "i-0000000000000d0c1";
const OFFLINE: &str = "i-0000000000000d0c2";

fn sim() -> SimHandle {
    let instances = [
        format!("{ONLINE}=127.0.0.1:9,name=web"),
        format!("{OFFLINE}=127.0.0.1:9,name=gone,offline"),
    ]
    .iter()
    .map(|s| parse_target_flag(s).unwrap())
    .collect();
    SimHandle::start(SimOptions {
        instances,
        ..SimOptions::default()
    })
}

/// `doctor ARGS` in an empty directory (no ./config.yaml, no XDG config, no default master),
/// with the simulator's environment minus `unset`.
fn doctor(sim: &SimHandle, dir: &Path, args: &[&str], unset: &[&str]) -> Output {
    doctor_with(sim, dir, args, unset, &[])
}

/// [`doctor`] with `extra` variables set on top.
fn doctor_with(
    sim: &SimHandle,
    dir: &Path,
    args: &[&str],
    unset: &[&str],
    extra: &[(&str, &str)],
) -> Output {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env("XDG_CONFIG_HOME", dir)
        .env("XDG_RUNTIME_DIR", dir)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_REGION")
        .arg("doctor")
        .args(args);
    for (k, v) in sim.env() {
        if !unset.contains(&k.as_str()) {
            c.env(k, v);
        }
    }
    c.envs(extra.iter().copied());
    c.output().unwrap()
}

/// The `--json` run: its exit code and its checks by name.
fn json(sim: &SimHandle, dir: &Path, args: &[&str], unset: &[&str]) -> (i32, Vec<Value>) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = doctor(sim, dir, &all, unset);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let checks = v["checks"].as_array().unwrap().clone();
    assert_eq!(v["ok"], out.status.success(), "{v}");
    (out.status.code().unwrap(), checks)
}

fn check<'a>(checks: &'a [Value], name: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:?}"))
}

fn status(checks: &[Value], name: &str) -> String {
    check(checks, name)["status"].as_str().unwrap().to_owned()
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("config.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// A master with one lazy upstream (it needs no sshd until used) and an alias for the target.
fn master_config(dir: &Path) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            "listeners:\n  - socks5: 127.0.0.1:0\nupstreams:\n  web:\n    targets: [{ONLINE}]\n    \
             user: u\n    ssh_agent: true\n    lazy: true\nhosts:\n  box:\n    target: {ONLINE}\n"
        ),
    )
}

#[test]
fn every_check_passes_against_the_simulator_with_a_running_master() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let cfg = master_config(dir.path());
    let serve = Serve::start(&sim, &cfg);
    let socket = dir.path().join("control.sock");
    let (cfg_s, sock_s) = (cfg.to_str().unwrap(), socket.to_str().unwrap());
    let args = ["--config", cfg_s, "--control-socket", sock_s, "box"];
    let (code, checks) = json(&sim, dir.path(), &args, &[]);
    for c in &checks {
        let want = if c["name"] == "perm-sessions" {
            "skip"
        } else {
            "ok"
        };
        assert_eq!(c["status"], want, "{c}");
    }
    assert_eq!(code, 0);
    let detail = |n| check(&checks, n)["detail"].as_str().unwrap().to_owned();
    assert!(detail("config").contains("valid (1 upstreams, 1 hosts"));
    assert!(
        detail("credentials").contains("arn:aws:iam::123456789012:user/session-proxy-sim"),
        "{}",
        detail("credentials")
    );
    assert!(detail("credentials").contains("environment variables"));
    assert!(detail("endpoint").contains(&sim.endpoint));
    assert!(detail("target").contains(&format!("box is {ONLINE}: Online")));
    assert!(detail("agent").contains("multiplexed port forwarding"));
    assert!(detail("master").contains(&format!("pid {}", serve.child.id())));
    assert!(
        detail("upstreams").contains("web idle"),
        "{}",
        detail("upstreams")
    );
    assert!(detail("ssh").contains("OpenSSH_"));
    serve.stop();
}

#[test]
fn a_missing_region_fails_with_the_ways_to_set_one() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let (code, checks) = json(&sim, dir.path(), &[], &["AWS_REGION"]);
    assert_eq!(code, 78, "{checks:?}");
    assert_eq!(status(&checks, "region"), "fail");
    let fix = check(&checks, "region")["fix"].as_str().unwrap().to_owned();
    for way in ["--region", "AWS_REGION", "aws.region"] {
        assert!(fix.contains(way), "{fix}");
    }
    // The credentials still resolve; what needs a region is skipped, not failed.
    assert_eq!(status(&checks, "credentials"), "ok");
    assert_eq!(status(&checks, "endpoint"), "skip");
    assert_eq!(status(&checks, "ssh"), "ok");
}

#[test]
fn a_bad_config_fails_first_and_the_checks_that_do_not_need_it_still_run() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "listeners:\n  - socks5: 127.0.0.1:0\nbogus_key: 1\n",
    );
    let (code, checks) = json(&sim, dir.path(), &[ONLINE], &[]);
    assert_eq!(code, 78);
    let first = &checks[0];
    assert_eq!(
        (first["name"].as_str(), first["status"].as_str()),
        (Some("config"), Some("fail"))
    );
    assert!(
        first["detail"].as_str().unwrap().contains("bogus_key"),
        "{first}"
    );
    for later in [
        "region",
        "credentials",
        "endpoint",
        "perm-describe",
        "documents",
        "target",
    ] {
        assert_eq!(status(&checks, later), "ok", "{later}: {checks:?}");
    }
    assert_eq!(status(&checks, "master"), "warn");
}

#[test]
fn an_sso_profile_without_a_login_fails_with_the_exact_login_command() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let aws_config = dir.path().join("aws-config");
    std::fs::write(
        &aws_config,
        "[profile corp-dev]\nsso_session = corp\nsso_account_id = 123456789012\n\
         sso_role_name = Dev\nregion = us-east-1\n[sso-session corp]\n\
         sso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n",
    )
    .unwrap();
    // No keys in the environment, and a HOME whose ~/.aws/sso/cache holds no token.
    let unset = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_CONFIG_FILE",
    ];
    let home = dir.path().to_str().unwrap();
    let extra = [
        ("AWS_CONFIG_FILE", aws_config.to_str().unwrap()),
        ("AWS_PROFILE", "corp-dev"),
        ("HOME", home),
    ];
    let out = doctor_with(&sim, dir.path(), &["--json"], &unset, &extra);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = v["checks"].as_array().unwrap();
    let c = check(checks, "credentials");
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(c["fix"], "aws sso login --profile corp-dev", "{c}");
    assert!(c["detail"].as_str().unwrap().contains("uses SSO"), "{c}");
    assert_eq!(out.status.code(), Some(77));
    assert_eq!(status(checks, "endpoint"), "skip");
}

#[test]
fn an_offline_target_fails_with_exit_68_and_names_the_agent() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let (code, checks) = json(&sim, dir.path(), &[OFFLINE], &[]);
    assert_eq!(code, 68);
    let t = check(&checks, "target");
    assert_eq!(t["status"], "fail");
    assert!(
        t["detail"].as_str().unwrap().contains("ConnectionLost"),
        "{t}"
    );
    assert!(
        t["fix"].as_str().unwrap().contains("amazon-ssm-agent"),
        "{t}"
    );
    // By name, resolution already refuses it: only offline instances match.
    let (code, checks) = json(&sim, dir.path(), &["gone"], &[]);
    assert_eq!(code, 68);
    assert!(check(&checks, "target")["detail"]
        .as_str()
        .unwrap()
        .contains("not connected"));
}

#[test]
fn no_master_is_a_warning_and_the_run_still_succeeds() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let out = doctor(&sim, dir.path(), &[], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let master = text.lines().find(|l| l.starts_with("master")).unwrap();
    assert!(
        master.contains(" warn ") && master.contains("no master running"),
        "{master}"
    );
    assert!(
        text.contains("fix: optional: `session-proxy serve`"),
        "{text}"
    );
    assert!(text.ends_with("no failures (1 warnings)\n"), "{text}");
}

#[test]
fn a_control_socket_others_may_open_fails_with_exit_71() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let cfg = master_config(dir.path());
    let serve = Serve::start(&sim, &cfg);
    let socket = dir.path().join("control.sock");
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let args = [
        "--config",
        cfg.to_str().unwrap(),
        "--control-socket",
        socket.to_str().unwrap(),
    ];
    let (code, checks) = json(&sim, dir.path(), &args, &[]);
    assert_eq!(code, 71);
    let m = check(&checks, "master");
    assert_eq!(m["status"], "fail");
    assert!(m["detail"].as_str().unwrap().contains("mode 0666"), "{m}");
    assert!(m["fix"].as_str().unwrap().contains("chmod 600"), "{m}");
    assert_eq!(status(&checks, "upstreams"), "skip");
    serve.stop();
}

#[test]
fn json_reports_the_same_checks_as_the_text() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let (json_code, checks) = json(&sim, dir.path(), &[OFFLINE], &[]);
    let out = doctor(&sim, dir.path(), &[OFFLINE], &[]);
    assert_eq!(out.status.code(), Some(json_code));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
    // One line per check, in the same order, then the summary.
    assert_eq!(lines.len(), checks.len() + 1, "{text}");
    for (line, c) in lines.iter().zip(&checks) {
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), c["name"].as_str(), "{line}");
        let label = words.next().unwrap();
        assert_eq!(
            label.to_ascii_lowercase(),
            c["status"].as_str().unwrap(),
            "{line}"
        );
        // Timings differ between the two runs; everything else must not.
        let digitless = |s: &str| s.replace(|c: char| c.is_ascii_digit(), "");
        let first = c["detail"].as_str().unwrap().lines().next().unwrap();
        assert!(
            digitless(line).ends_with(&digitless(first)),
            "{line} vs {first}"
        );
        if let Some(fix) = c["fix"].as_str() {
            assert!(text.contains(&format!("fix: {fix}")), "{fix}");
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("first: target"), "{stderr}");
}

const BOTOCORE_STS: &str = r#"
import sys, botocore.session
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
s = botocore.session.get_session()
sts = s.create_client("sts", region_name="us-east-1", endpoint_url=sys.argv[1])
me = sts.get_caller_identity()
print("identity", me["Account"], me["Arn"], me["UserId"])
anon = s.create_client("sts", region_name="us-east-1", endpoint_url=sys.argv[1],
                       config=Config(signature_version=UNSIGNED))
try:
    anon.get_caller_identity()
    print("unsigned accepted")
except ClientError as e:
    print("unsigned", e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
print("ok")
"#;

#[test]
fn botocore_parses_the_simulated_get_caller_identity() {
    let sim = sim();
    let stdout = botocore(BOTOCORE_STS, &[&sim.endpoint], &sim.env());
    assert!(
        stdout.contains(
            "identity 123456789012 arn:aws:iam::123456789012:user/session-proxy-sim AKIASIMULATOR0000000"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("unsigned MissingAuthenticationTokenException 403"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
}

#[test]
fn a_denied_describe_permission_fails_its_check_and_names_the_action_to_allow() {
    let instances = vec![parse_target_flag(&format!("{ONLINE}=127.0.0.1:9,name=web")).unwrap()];
    let sim = SimHandle::start(SimOptions {
        instances,
        deny: vec!["ssm:DescribeInstanceInformation".into()],
        ..SimOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (code, checks) = json(&sim, dir.path(), &[], &[]);
    assert_eq!(code, 77, "{checks:?}");
    let p = check(&checks, "perm-describe");
    assert_eq!(p["status"], "fail", "{p}");
    assert!(
        p["fix"]
            .as_str()
            .unwrap()
            .contains("allow ssm:DescribeInstanceInformation"),
        "{p}"
    );
    // The service answered, so the endpoint itself is fine.
    assert_eq!(status(&checks, "endpoint"), "ok");
    assert_eq!(status(&checks, "credentials"), "ok");
}
