//! `session-proxy ssh-config`, end to end: the snippet it prints is used as it is by the real
//! `ssh -F` against the simulator and a real `sshd`, by instance id and by `hosts:` alias, with
//! the binary and the config in directories whose names have spaces; `--write` replaces the
//! file atomically, is idempotent, and only reads the user's ~/.ssh/config.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use session_proxy::sim::SimOptions;

const ID: &str = "i-0123456789abcdef0";

/// This binary under a path with a space (a hard link next to it, else a copy): the
/// ProxyCommand names the binary by the path it was started from.
fn spaced_binary() -> (tempfile::TempDir, PathBuf) {
    let bin = Path::new(BIN);
    let dir = tempfile::Builder::new()
        .prefix("bin dir ")
        .tempdir_in(bin.parent().unwrap())
        .unwrap();
    let exe = dir.path().join("session proxy");
    if std::fs::hard_link(bin, &exe).is_err() {
        std::fs::copy(bin, &exe).unwrap();
    }
    (dir, exe)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// `ssh -F <snippet>` with only the test's key, known_hosts and user added on the command line.
fn ssh_with(snippet: &Path, sim: &SimHandle, sshd: &Sshd, host: &str) -> Command {
    let mut c = Command::new("ssh");
    c.arg("-F")
        .arg(snippet)
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .args(["-o", "HostKeyAlias=sim-target"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", sshd.known_hosts.display()))
        .arg("-i")
        .arg(&sshd.client_key)
        .arg("-l")
        .arg(user())
        .arg(host);
    for (k, v) in sim.env() {
        c.env(k, v);
    }
    c
}

#[test]
fn printed_snippet_lets_ssh_reach_instance_id_and_alias_from_spaced_paths() {
    let sshd = Sshd::start();
    let sim = SimHandle::start(SimOptions {
        instances: vec![instance(ID, sshd.addr)],
        ..SimOptions::default()
    });
    let (_bin_dir, exe) = spaced_binary();
    let cfg_dir = tempfile::Builder::new()
        .prefix("my config ")
        .tempdir()
        .unwrap();
    let cfg = cfg_dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        format!("hosts:\n  web:\n    target: {ID}\n    port: 22\n"),
    )
    .unwrap();
    let out = Command::new(&exe)
        .arg("--config")
        .arg(&cfg)
        .args(["ssh-config", "--region", "us-east-1"])
        .current_dir(cfg_dir.path())
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(text.contains("\nHost web\n    Port 22\n"), "{text}");
    assert!(text.contains("\nHost i-* mi-*\n"), "{text}");
    assert!(text.contains(&format!("'{}'", exe.display())), "{text}");
    let snippet = cfg_dir.path().join("ssh_config");
    std::fs::write(&snippet, &text).unwrap();
    // Run from elsewhere: the ProxyCommand must not depend on the working directory.
    let other = tempfile::tempdir().unwrap();
    let payload = random_file(other.path(), "payload.bin", 2);
    let want = sha256_file(&payload);
    for host in [ID, "web"] {
        let up = ssh_with(&snippet, &sim, &sshd, host)
            .arg("sha256sum")
            .current_dir(other.path())
            .stdin(std::fs::File::open(&payload).unwrap())
            .output()
            .unwrap();
        let got = ok(&up);
        assert_eq!(
            got.split_whitespace().next(),
            Some(want.as_str()),
            "via {host}"
        );
    }
}

/// `ssh-config` with HOME, the working directory and XDG dirs in `home`: no config file.
fn ssh_config_in(home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("ssh-config")
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .current_dir(home)
        .output()
        .unwrap()
}

#[test]
fn write_is_atomic_idempotent_and_never_touches_the_users_ssh_config() {
    let home = tempfile::tempdir().unwrap();
    let target = home.path().join(".ssh/config.d/session-proxy");
    let t = target.to_str().unwrap();
    let printed = ok(&ssh_config_in(home.path(), &[]));

    let first = ok(&ssh_config_in(home.path(), &["--write", t]));
    assert!(first.starts_with(&format!("wrote {t}\n")), "{first}");
    assert!(first.contains(&format!("\nInclude {t}\n")), "{first}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), printed);
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
    let entries: Vec<_> = std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries.len(), 1, "temporary file left behind: {entries:?}");

    let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let before = ino(&target);
    let again = ok(&ssh_config_in(home.path(), &["--write", t]));
    assert!(again.starts_with(&format!("unchanged: {t}\n")), "{again}");
    assert_eq!(ino(&target), before, "an unchanged file was rewritten");

    // A stale file is replaced by rename (a new inode), never edited in place.
    std::fs::write(&target, "stale").unwrap();
    let stale = ino(&target);
    let updated = ok(&ssh_config_in(home.path(), &["--write", t]));
    assert!(updated.starts_with(&format!("updated {t}\n")), "{updated}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), printed);
    assert_ne!(ino(&target), stale);

    let user_config = home.path().join(".ssh/config");
    let mine = "Include ~/.ssh/config.d/session-proxy\n\nHost mine\n    User me\n";
    std::fs::write(&user_config, mine).unwrap();
    let known = ok(&ssh_config_in(home.path(), &["--write", t]));
    assert!(
        known.contains("~/.ssh/config already has: Include"),
        "{known}"
    );
    assert_eq!(std::fs::read_to_string(&user_config).unwrap(), mine);
}

#[test]
fn write_path_with_spaces_gets_a_quoted_include_line() {
    let home = tempfile::tempdir().unwrap();
    let target = home.path().join("my ssh/session proxy");
    let t = target.to_str().unwrap();
    let out = ok(&ssh_config_in(home.path(), &["--write", t]));
    assert!(out.contains(&format!("\nInclude \"{t}\"\n")), "{out}");
    // ssh itself accepts the line: the included Host block applies.
    let main = home.path().join("main_config");
    std::fs::write(&main, format!("Include \"{t}\"\n")).unwrap();
    let g = Command::new("ssh")
        .arg("-F")
        .arg(&main)
        .args(["-G", ID])
        .output()
        .unwrap();
    let conf = ok(&g);
    assert!(
        conf.lines()
            .any(|l| l.starts_with("proxycommand ") && l.contains(" stdio %h -p %p")),
        "{conf}"
    );
}
