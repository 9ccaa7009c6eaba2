//! `session-proxy shell` in a real terminal: the binary runs inside tmux (a real pty, real
//! keys, real resizes) against the in-process simulator, whose agent runs a real shell in a
//! real pty. Every wait polls the pane for the text it expects, with a generous deadline that
//! only guards against hangs; nothing is timed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::SimHandle;
use session_proxy::sim::faults::FaultPlan;
use session_proxy::sim::SimOptions;

const BIN: &str = env!("CARGO_BIN_EXE_session-proxy");
const ID: &str = "i-0123456789abcdef0";
/// Hang guard for one expected piece of output (a loaded 2-core CI machine is slow).
const GUARD: Duration = Duration::from_secs(60);

/// A simulator whose instance `ID` offers shells.
fn shell_sim(faults: FaultPlan) -> SimHandle {
    SimHandle::start(SimOptions {
        instances: vec![common::instance(ID, "127.0.0.1:9".parse().unwrap())],
        faults,
        ..SimOptions::default()
    })
}

/// A tmux server of its own (socket in a temp dir) with one 80x24 window running a local
/// `sh`, from which the test starts `session-proxy shell` through `run.sh`.
struct Tmux {
    dir: tempfile::TempDir,
}

impl Tmux {
    fn start(sim: &SimHandle) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("tmux.conf");
        std::fs::write(&conf, "set -g status off\nset -g history-limit 5000\n").unwrap();
        let mut script = String::from("#!/bin/sh\n");
        for (k, v) in sim.env() {
            script.push_str(&format!("export {k}='{v}'\n"));
        }
        script.push_str(&format!(
            "echo $$ > '{}'\nexec '{BIN}' shell {ID} \"$@\"\n",
            dir.path().join("pid").display()
        ));
        let run = dir.path().join("run.sh");
        std::fs::write(&run, script).unwrap();
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let t = Self { dir };
        // The pane's own environment is set on its command line: tmux gives panes the
        // server's global environment, not the client's.
        let local_sh = format!(
            "PS1='local$ ' HOME='{}' ENV= exec sh",
            t.dir.path().display()
        );
        let ok = t
            .cmd()
            .args(["-f", conf.to_str().unwrap(), "new-session", "-d"])
            .args(["-x", "80", "-y", "24", "-s", "t", &local_sh])
            .current_dir(t.dir.path())
            .status()
            .expect("these tests need tmux (apt-get install tmux; .ci/run installs it)");
        assert!(ok.success(), "tmux new-session failed");
        // capture-pane drops trailing blanks.
        t.wait_for("local$");
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(self.dir.path().join("sock"));
        c
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tmux(&self, args: &[&str]) {
        let st = self.cmd().args(args).status().unwrap();
        assert!(st.success(), "tmux {args:?} failed");
    }

    /// Types `text` and presses Enter.
    fn line(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
        self.tmux(&["send-keys", "-t", "t", "Enter"]);
    }

    /// The pane's text, its scrollback included.
    fn capture(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-J", "-S", "-", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls the pane until `text` shows up; returns the pane.
    fn wait_for(&self, text: &str) -> String {
        self.wait_until(text, || {})
    }

    /// Like `wait_for`, doing `again` between polls (to resend what a race may have eaten).
    fn wait_until(&self, text: &str, mut again: impl FnMut()) -> String {
        let deadline = Instant::now() + GUARD;
        let mut last_try = Instant::now();
        loop {
            let pane = self.capture();
            if pane.contains(text) {
                return pane;
            }
            assert!(
                Instant::now() < deadline,
                "`{text}` did not appear in the pane:\n{pane}"
            );
            std::thread::sleep(Duration::from_millis(100));
            if last_try.elapsed() > Duration::from_secs(3) {
                last_try = Instant::now();
                again();
            }
        }
    }

    /// Starts `session-proxy shell` from the local shell: the local terminal settings are saved
    /// before and after, and the exit code is printed as `exit-code-N`.
    fn start_shell(&self, extra: &str) {
        self.line(&format!(
            "stty -a > before; ./run.sh {extra}; echo exit-code-$?; stty -a > after"
        ));
    }

    /// Waits for `session-proxy shell` to end; its exit code and the pane.
    fn exit_code(&self) -> (i32, String) {
        let deadline = Instant::now() + GUARD;
        loop {
            let pane = self.capture();
            // The typed command line has `exit-code-$?`, which is no number.
            let code = pane
                .lines()
                .find_map(|l| l.split("exit-code-").nth(1)?.trim().parse().ok());
            if let Some(code) = code {
                return (code, pane);
            }
            assert!(Instant::now() < deadline, "shell did not end:\n{pane}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().args(["kill-server"]).status();
    }
}

fn wait_file(p: &Path) -> String {
    let deadline = Instant::now() + GUARD;
    loop {
        if let Ok(s) = std::fs::read_to_string(p) {
            if s.ends_with('\n') {
                return s;
            }
        }
        assert!(Instant::now() < deadline, "{} was not written", p.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_document_that_does_not_exist_exits_69_naming_it() {
    let sim = shell_sim(FaultPlan::default());
    let out = Command::new(BIN)
        .args(["shell", ID, "--document", "No-Such-Document"])
        .envs(sim.env())
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{err}");
    assert!(err.contains("No-Such-Document"), "{err}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", out.stdout);
}

#[test]
fn echo_round_trips_and_exit_restores_the_terminal_and_exits_0() {
    let sim = shell_sim(FaultPlan::default());
    let t = Tmux::start(&sim);
    t.start_shell("");
    // The command line echoes as typed; only the remote shell computes the product.
    t.line("echo round-$((6*7))");
    t.wait_for("round-42");
    t.line("exit");
    let (code, pane) = t.exit_code();
    assert_eq!(code, 0, "{pane}");
    assert!(pane.contains("session-proxy: session closed"), "{pane}");
    wait_file(&t.path("after"));
    assert_eq!(t.read("before"), t.read("after"), "stty -a changed");
    assert!(t.read("before").contains("icanon"), "{}", t.read("before"));
}

#[test]
fn stty_size_follows_the_window_before_and_after_a_resize() {
    let sim = shell_sim(FaultPlan::default());
    let t = Tmux::start(&sim);
    t.start_shell("");
    t.line("stty size");
    t.wait_for("24 80");
    t.tmux(&["resize-window", "-t", "t", "-x", "100", "-y", "30"]);
    t.line("stty size");
    // SIGWINCH and the next keys race inside tmux; ask again until the new size shows.
    t.wait_until("30 100", || t.line("stty size"));
}

/// Runs `sleep 100` in the remote shell and stops it with `key` (a tmux key name). The key
/// is a byte for the remote pty (raw mode: no signal here). If it lands before `sleep` runs,
/// the next round sends it again; 100 s is past the hang guard, so only a stopped sleep lets
/// the answer appear, and `$KEEP` proves it is the same shell.
fn stop_sleep_with(t: &Tmux, key: &str, n: u32) {
    t.line(&format!("echo sleeping-$(({n}*1000)); sleep 100"));
    t.wait_for(&format!("sleeping-{}", n * 1000));
    let again = || {
        t.tmux(&["send-keys", "-t", "t", key]);
        t.line(&format!("echo ok-$(({n}+1000)) $KEEP"));
    };
    again();
    let pane = t.wait_until(&format!("ok-{} k-12", n + 1000), again);
    assert!(
        !pane.contains("\nexit-code-"),
        "session-proxy ended: {pane}"
    );
}

#[test]
fn ctrl_c_ctrl_backslash_and_ctrl_z_stop_sleep_remotely_and_the_shell_survives() {
    let sim = shell_sim(FaultPlan::default());
    let t = Tmux::start(&sim);
    t.start_shell("");
    t.line("KEEP=k-$((3*4))");
    stop_sleep_with(&t, "C-c", 1);
    stop_sleep_with(&t, "C-\\", 2);
    // Ctrl-Z stops it remotely (the remote shell has job control); the shell answers.
    stop_sleep_with(&t, "C-z", 3);
}

#[test]
fn a_websocket_kill_resumes_the_same_shell_with_its_environment_and_says_so() {
    // Killed by time, not by bytes: a byte threshold below the agent's resend window would
    // kill every resume before its first acknowledge.
    let sim = shell_sim(FaultPlan {
        kill_every: Some(Duration::from_secs(2)),
        ..FaultPlan::default()
    });
    let t = Tmux::start(&sim);
    t.start_shell("");
    t.line("export KEPT=v-$((5*5))");
    t.wait_for("session-proxy: resumed");
    // Output across further kills arrives whole and in order.
    t.line("seq 1 4000; echo seq-$((40*100))-done");
    t.wait_for("seq-4000-done");
    t.line("echo kept=$KEPT");
    let pane = t.wait_for("kept=v-25");
    assert!(
        pane.contains("session-proxy: connection lost; resuming session"),
        "{pane}"
    );
    let kills: u64 = sim.sim().stats().iter().map(|s| s.faults.kills).sum();
    assert!(kills >= 1, "no WebSocket was killed");
    assert!(
        !pane.contains("\nexit-code-"),
        "session-proxy ended: {pane}"
    );
}

#[test]
fn sigterm_terminates_the_session_restores_the_terminal_and_exits_143() {
    let sim = shell_sim(FaultPlan::default());
    let t = Tmux::start(&sim);
    t.start_shell("");
    t.line("echo up-$((7*7))");
    t.wait_for("up-49");
    let pid = wait_file(&t.path("pid"));
    let st = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(st.success());
    let (code, pane) = t.exit_code();
    assert_eq!(code, 143, "{pane}");
    wait_file(&t.path("after"));
    assert_eq!(t.read("before"), t.read("after"), "stty -a changed");
    assert_eq!(sim.wait_no_open_sessions(GUARD), 0, "session left open");
}

/// Runs `session-proxy shell ID ARGS…` with `input` piped to it; its output once it ends.
fn run_piped(sim: &SimHandle, args: &[&str], input: &'static [u8]) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(["shell", ID])
        .args(args)
        .envs(sim.env())
        .env("HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    rx.recv_timeout(GUARD)
        .expect("shell did not end at stdin EOF")
        .unwrap()
}

#[test]
fn piped_stdin_runs_the_script_and_its_end_ends_the_shell_with_0() {
    let sim = shell_sim(FaultPlan::default());
    let out = run_piped(&sim, &[], b"echo hi-$((2*3))\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("hi-6"), "{stdout}");
    assert!(
        !stdout.contains("session closed"),
        "notices stay off stdout: {stdout}"
    );
    assert!(stderr.contains("session closed"), "{stderr}");
}

#[test]
fn an_interactive_commands_document_runs_its_command_parameter() {
    let sim = shell_sim(FaultPlan::default());
    let out = run_piped(
        &sim,
        &[
            "--document",
            "AWS-StartInteractiveCommand",
            "--parameter",
            "command=echo param-$((4*4))",
        ],
        b"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("param-16"), "{stdout}");
}
