//! `config.example.yaml` as a new user copies it: the real `serve` started on a copy in which
//! only what a test must change is changed (the TCP listener's port, since tests never bind
//! fixed ports), with the example's own profiles provided in `~/.aws/credentials`, its first
//! target played by the simulator's demo instance, and its identity file at `~/.ssh/id_ed25519`.
//! The master must start and keep every path it creates inside the user's own directories.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{wait_ready_file, SimHandle, BIN};
use session_proxy::sim::demo::Demo;
use session_proxy::sim::SimOptions;

const EXAMPLE: &str = include_str!("../config.example.yaml");

/// `~/.aws/credentials` with the profiles the example names (the only credentials change).
fn write_aws_profiles(home: &Path) {
    let aws = home.join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    let profile = |name: &str| {
        format!(
            "[{name}]\naws_access_key_id = AKIASIMULATOR0000000\naws_secret_access_key = simulator-secret\n"
        )
    };
    std::fs::write(
        aws.join("credentials"),
        profile("default") + &profile("prod"),
    )
    .unwrap();
}

fn as_user(home: &Path, endpoint: &str) -> Command {
    let mut c = Command::new(BIN);
    c.env("HOME", home)
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .current_dir(home)
        .stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") && k != "AWS_ENDPOINT_URL" && k != "AWS_EC2_METADATA_DISABLED" {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn the_example_config_starts_serve_with_only_credentials_and_the_port_changed() {
    assert!(
        !EXAMPLE.contains("/run/user/"),
        "the example hard-codes one user's runtime dir"
    );
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    // The example's first target, i-0123456789abcdef0, is the demo instance's id.
    let sim_rt = tokio::runtime::Runtime::new().unwrap();
    let demo = sim_rt.block_on(Demo::start(&home.join("demo"))).unwrap();
    let sim = SimHandle::start(SimOptions {
        instances: vec![demo.instance()],
        ..SimOptions::default()
    });
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::copy(&demo.files.client_key, home.join(".ssh/id_ed25519")).unwrap();
    write_aws_profiles(home);
    let config = home.join("config.yaml");
    let copy = EXAMPLE
        .replace("127.0.0.1:1080", "127.0.0.1:0")
        .replace("127.0.0.1:3128", "127.0.0.1:0");
    std::fs::write(&config, &copy).unwrap();

    let ready = home.join("ready");
    // A file, not a pipe nobody reads while serve runs.
    let log = home.join("serve.stderr");
    let mut child = as_user(home, &sim.endpoint)
        .args(["serve", "--foreground", "--config"])
        .arg(&config)
        .arg("--ready-file")
        .arg(&ready)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stderr = || std::fs::read_to_string(&log).unwrap_or_default();
    if let Err(e) = wait_ready_file(&ready, &mut child, Duration::from_secs(90)) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{e}: {}", stderr());
    }
    let listeners = std::fs::read_to_string(&ready).unwrap();
    let unix = home.join(".local/state/session-proxy/socks5.sock");
    assert!(
        listeners.contains(&unix.display().to_string()),
        "the Unix listener is in the user's state dir: {listeners}"
    );
    // The control socket is the default one, in the user's runtime dir: `status` finds it
    // with no flags, and sees the eager upstream up.
    assert!(home.join("run/session-proxy/control.sock").exists());
    let out = as_user(home, &sim.endpoint).arg("status").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && table.contains("bastion-prod"),
        "status: {table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_user(home, &sim.endpoint).arg("stop").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = child.wait().unwrap();
    assert!(st.success(), "serve exit {st}: {}", stderr());
    sim_rt.block_on(demo.shutdown());
}
