//! EC2 Instance Connect end to end (issue 15, point 4). The instance is a real OpenSSH `sshd`
//! with NO authorized_keys file: like an EC2 instance, it asks an `AuthorizedKeysCommand`,
//! which curls the simulator's per-instance metadata path for the keys pushed with
//! SendSSHPublicKey. So a login succeeds only through a push, and only within its lifetime.
//! botocore checks the simulated API's shapes; the demo SSH server honours pushes too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    botocore, http_server, instance, random_file, sha256_file, sim_settings, ssh_cmd, user, Serve,
    SimHandle, Sshd,
};
use session_proxy::instance_connect::{key, InstanceConnect};
use session_proxy::sim::instance_connect::PushedKeys;
use session_proxy::sim::SimOptions;

const ID: &str = "i-0a1b2c3d4e5f60718";

/// A simulator whose pushed keys last `lifetime`, with [`ID`] behind a real sshd that takes
/// keys only from the simulator's metadata path.
struct Rig {
    sim: SimHandle,
    sshd: Sshd,
    script_dir: tempfile::TempDir,
}

fn rig(lifetime: Duration) -> Rig {
    rig_denying(lifetime, &[])
}

/// [`rig`] whose simulator answers the IAM actions `deny` with a refusal (`sim --deny`).
fn rig_denying(lifetime: Duration, deny: &[&str]) -> Rig {
    // sshd runs an AuthorizedKeysCommand only from a root-owned path that no group or other
    // user can write, all the way up: not under /tmp. Cargo's per-target scratch dir is.
    let script_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let script = script_dir.path().join("eic-keys");
    let keys = PushedKeys::new(lifetime);
    let sshd_extra = format!(
        "AuthorizedKeysCommand {} %u\nAuthorizedKeysCommandUser {}\n",
        script.display(),
        user()
    );
    let sshd = Sshd::start_with(&sshd_extra);
    // No authorized_keys at all: only pushed keys can log in.
    std::fs::remove_file(sshd.dir.path().join("authorized_keys")).unwrap();
    let sim = SimHandle::start(SimOptions {
        instances: vec![instance(ID, sshd.addr)],
        pushed_keys: keys,
        deny: deny.iter().map(|d| d.to_string()).collect(),
        ..SimOptions::default()
    });
    let url = format!(
        "{}/_sim/imds/{ID}/latest/meta-data/managed-ssh-keys/active-keys",
        sim.endpoint
    );
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1\" >> {calls}\nexec curl -sf --max-time 20 \"{url}/$1/\"\n",
            calls = script_dir.path().join("calls").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    Rig {
        sim,
        sshd,
        script_dir,
    }
}

/// `ssh … true` through `stdio` with `proxy_args`; HOME is `home` (where `--send-key` looks).
/// The `echo logged-in` login succeeded (sshd's log in the message when not).
fn assert_logged_in(r: &Rig, out: &std::process::Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ssh failed: {err}\nsshd: {}",
        r.sshd.log()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "logged-in");
}

fn ssh_login(r: &Rig, home: &Path, proxy_args: &str) -> std::process::Output {
    let mut c = ssh_cmd(&r.sim, &r.sshd, ID, proxy_args);
    c.env("HOME", home).arg("echo logged-in");
    c.output().unwrap()
}

/// A HOME whose ~/.ssh/id_ed25519.pub is the sshd harness's client key.
fn home_with_key(r: &Rig) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".ssh")).unwrap();
    let public = r.sshd.client_key.with_extension("pub");
    std::fs::copy(public, home.path().join(".ssh/id_ed25519.pub")).unwrap();
    home
}

#[test]
fn ssh_with_send_key_logs_into_an_sshd_that_has_no_authorized_keys() {
    let r = rig(Duration::from_secs(60));
    let home = home_with_key(&r);
    let refused = ssh_login(&r, home.path(), "");
    assert!(
        !refused.status.success(),
        "without --send-key the login must fail (no authorized_keys)"
    );
    let ok = ssh_login(&r, home.path(), &format!("--send-key --os-user {}", user()));
    assert_logged_in(&r, &ok);
    let pushed = r.sim.sim().registry().pushed_keys();
    let active = pushed.active(ID, &user(), Instant::now());
    let mine = std::fs::read_to_string(home.path().join(".ssh/id_ed25519.pub")).unwrap();
    let blob = mine.split_whitespace().nth(1).unwrap();
    assert!(active.iter().any(|k| k.contains(blob)), "{active:?}");
}

/// A real `ssh-agent` on a socket in `dir`, holding `key`; killed on drop.
struct Agent(std::process::Child, PathBuf);

impl Agent {
    fn start(dir: &Path, key: &Path) -> Self {
        let sock = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ssh-agent (openssh-client)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !sock.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let add = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &sock)
            .output()
            .unwrap();
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        Self(child, sock)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn send_key_without_key_files_pushes_the_ssh_agent_s_key() {
    let r = rig(Duration::from_secs(60));
    let empty_home = tempfile::tempdir().unwrap();
    let agent = Agent::start(empty_home.path(), &r.sshd.client_key);
    let mut c = ssh_cmd(
        &r.sim,
        &r.sshd,
        ID,
        &format!("--send-key --os-user {}", user()),
    );
    c.env("HOME", empty_home.path())
        .env("SSH_AUTH_SOCK", &agent.1)
        .arg("echo logged-in");
    assert_logged_in(&r, &c.output().unwrap());
}

#[test]
fn an_expired_push_is_refused() {
    let r = rig(Duration::from_secs(1));
    let home = home_with_key(&r);
    let public = std::fs::read_to_string(home.path().join(".ssh/id_ed25519.pub")).unwrap();
    r.sim.rt.block_on(async {
        let eic = InstanceConnect::new(&sim_settings(Some(r.sim.endpoint.clone()))).await;
        eic.send_key(ID, &user(), public.trim()).await.unwrap();
    });
    // Past the 1 s lifetime (the store compares times, so this is not a race).
    std::thread::sleep(Duration::from_millis(1500));
    let late = ssh_login(&r, home.path(), "");
    assert!(!late.status.success(), "an expired key must not log in");
    // sshd did ask the metadata path, for this user: the key was there and had expired.
    let calls = std::fs::read_to_string(r.script_dir.path().join("calls")).unwrap_or_default();
    assert!(
        calls.lines().any(|u| u == user()),
        "AuthorizedKeysCommand calls: {calls:?}"
    );
}

#[test]
fn send_key_to_a_managed_node_fails_naming_ec2_with_a_usage_code() {
    let r = rig(Duration::from_secs(60));
    let out = Command::new(common::BIN)
        .args([
            "stdio",
            "mi-0123456789abcdef0",
            "--send-key",
            "--os-user",
            "x",
        ])
        .envs(r.sim.env())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("needs an EC2 instance"), "{err}");
}

#[test]
fn a_refused_push_names_the_permission_and_exits_77() {
    let r = rig_denying(
        Duration::from_secs(60),
        &["ec2-instance-connect:SendSSHPublicKey"],
    );
    let home = home_with_key(&r);
    let out = Command::new(common::BIN)
        .args(["stdio", ID, "--send-key", "--os-user", "ec2-user"])
        .envs(r.sim.env())
        .env("HOME", home.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(
        err.contains("needs ec2-instance-connect:SendSSHPublicKey"),
        "{err}"
    );
    assert!(!err.contains("AuthException {"), "no Debug dump: {err}");
}

const BOTOCORE_SCRIPT: &str = r#"
import os, sys
import botocore.session
from botocore.exceptions import ClientError
eic = botocore.session.get_session().create_client("ec2-instance-connect",
    region_name="us-east-1", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
key = sys.argv[1]
out = eic.send_ssh_public_key(InstanceId=sys.argv[2], InstanceOSUser="ec2-user", SSHPublicKey=key)
assert out["Success"] is True, out
assert out["RequestId"], out
def code(**kw):
    try:
        eic.send_ssh_public_key(**kw)
    except ClientError as e:
        return e.response["Error"]["Code"] + " " + e.response["Error"]["Message"]
    return "no error"
print("unknown", code(InstanceId="i-0ffffffffffffffff", InstanceOSUser="ec2-user", SSHPublicKey=key))
print("managed", code(InstanceId="mi-0123456789abcdef0", InstanceOSUser="ec2-user", SSHPublicKey=key))
print("ok")
"#;

#[test]
fn botocore_parses_send_ssh_public_key_answers_and_errors() {
    let r = rig(Duration::from_secs(60));
    let public = key::openssh_line(key::ephemeral().public_key()).unwrap();
    let stdout = botocore(BOTOCORE_SCRIPT, &[&public, ID], &r.sim.env());
    assert!(
        stdout.contains("unknown EC2InstanceNotFoundException"),
        "{stdout}"
    );
    assert!(stdout.contains("managed InvalidArgsException"), "{stdout}");
    let active = r.sim.sim().registry().pushed_keys();
    assert_eq!(active.active(ID, "ec2-user", Instant::now()), [public]);
}

/// Every file under `dir` (recursively), skipping sockets.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let (p, t) = (e.path(), e.file_type().unwrap());
        if t.is_dir() {
            out.extend(files_under(&p));
        } else if t.is_file() {
            out.push(p);
        }
    }
    out
}

#[test]
fn an_instance_connect_upstream_carries_socks_traffic_with_no_key_files() {
    let r = rig(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let blob = random_file(dir.path(), "blob.bin", 1);
    let want = sha256_file(&blob);
    let web = http_server(
        "127.10.0.1:0",
        vec![("/blob".into(), std::fs::read(&blob).unwrap())],
    );
    std::fs::remove_file(&blob).unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let cfg = format!(
        "listeners:\n  - socks5: 127.0.0.1:0\nupstreams:\n  eic:\n    targets: [{ID}]\n    user: {user}\n    instance_connect: true\n    pool_size: 1\nroutes:\n  - match: 127.10.0.0/16\n    via: eic\ndefault: reject\nstate_dir: {state}\n",
        user = user(),
        state = run.join("state").display(),
    );
    let config = run.join("config.yaml");
    std::fs::write(&config, cfg).unwrap();
    let home = run.display().to_string();
    let env = [
        ("HOME", home.as_str()),
        ("TMPDIR", home.as_str()),
        ("SESSION_PROXY_LOG", "debug"),
    ];
    let serve = Serve::start_logged(&r.sim, &config, &env);
    let (code, body, err) = common::curl(serve.socks, &format!("http://{web}/blob"), &[]);
    assert_eq!(code, 0, "curl: {err}\nsshd: {}", r.sshd.log());
    let got = dir.path().join("got.bin");
    std::fs::write(&got, &body).unwrap();
    assert_eq!(sha256_file(&got), want);
    serve.stop();

    let pushed = r.sim.sim().registry().pushed_keys();
    let active = pushed.active(ID, &user(), Instant::now());
    let pushed_line = active.first().expect("the pool pushed a key");
    let public_b64 = pushed_line.split_whitespace().nth(1).unwrap();
    for f in files_under(&run) {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert!(!text.contains("PRIVATE KEY"), "{} holds a key", f.display());
        assert!(!text.contains(public_b64), "{} names the key", f.display());
    }
    let log = std::fs::read_to_string(run.join("serve.log")).unwrap();
    assert!(log.contains("EC2 Instance Connect"), "debug log: {log}");
}

#[test]
fn the_demo_ssh_server_accepts_a_pushed_key() {
    use session_proxy::sim::demo::{Demo, INSTANCE_ID};
    use session_proxy::ssh::{HostKeyPolicy, KnownHosts, SshConnection, SshError, SshSettings};
    use std::sync::Arc;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let demo = Demo::start(&dir.path().join("demo")).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = session_proxy::sim::Sim::start(
            listener,
            SimOptions {
                instances: vec![demo.instance()],
                pushed_keys: demo.pushed_keys(),
                ..SimOptions::default()
            },
        )
        .unwrap();
        let k = key::ephemeral();
        let settings = SshSettings {
            user: "ec2-user".into(),
            identity_files: Vec::new(),
            ssh_agent: false,
            pushed_key: Some(session_proxy::redact::Redacted::new(Arc::new(k.clone()))),
            host_key_policy: HostKeyPolicy::AcceptNew,
            known_hosts: KnownHosts::new(dir.path().join("kh")),
            keepalive: Duration::from_secs(15),
        };
        let login = || async {
            let tcp = tokio::net::TcpStream::connect(demo.ssh_addr())
                .await
                .unwrap();
            let c = SshConnection::connect(tcp, INSTANCE_ID, &settings);
            tokio::time::timeout(Duration::from_secs(20), c)
                .await
                .unwrap()
        };
        assert!(matches!(login().await, Err(SshError::Auth { .. })));
        let eic = InstanceConnect::new(&sim_settings(Some(sim.endpoint_url()))).await;
        let public = key::openssh_line(k.public_key()).unwrap();
        eic.send_key(INSTANCE_ID, "ec2-user", &public)
            .await
            .unwrap();
        login().await.expect("the pushed key logs in");
        sim.shutdown().await;
        demo.shutdown().await;
    });
}
