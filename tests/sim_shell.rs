//! The simulator plays shells (issue 14): a client session on a shell document against the
//! simulated agent, which runs a real command in a real pty. The client side here is the
//! library's own session with a plain byte stream (plus Size payloads), over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use session_proxy::sim::agent::AgentKnobs;
use session_proxy::sim::documents::CreateDocument;
use session_proxy::sim::{Sim, SimOptions};
use session_proxy::ssm::api::SessionRequest;
use session_proxy::ssm::driver::{AppLayer, ByteStream, End, Outgoing};
use session_proxy::ssm::message::PayloadType;
use session_proxy::ssm::session::{Session, SessionOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const ID: &str = "i-0123456789abcdef0";
/// A hang guard only: every wait below ends as soon as its output shows up.
const GUARD: Duration = Duration::from_secs(60);

async fn sim(knobs: AgentKnobs) -> Sim {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let instance = common::instance(ID, "127.0.0.1:22".parse().unwrap());
    let opts = SimOptions {
        instances: vec![instance],
        knobs,
        ..SimOptions::default()
    };
    Sim::start(l, opts).unwrap()
}

/// Typed payloads other than Output that reached the client (StdErr, ExitCode), in order.
type Others = Arc<Mutex<Vec<(PayloadType, Vec<u8>)>>>;

/// A byte stream that also sends the terminal sizes it is given, as a shell client does, and
/// keeps the StdErr and ExitCode payloads it gets.
struct Terminal {
    stream: ByteStream<DuplexStream>,
    sizes: mpsc::UnboundedReceiver<Bytes>,
    others: Others,
}

impl AppLayer for Terminal {
    fn poll_outgoing(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<Outgoing>> {
        if let Poll::Ready(Some(size)) = self.sizes.poll_recv(cx) {
            return Poll::Ready(Ok(Outgoing::Payload(PayloadType::Size, size)));
        }
        self.stream.poll_outgoing(cx, buf)
    }

    fn poll_deliver(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.stream.poll_deliver(cx, data)
    }

    fn poll_deliver_other(
        &mut self,
        _cx: &mut Context<'_>,
        ptype: PayloadType,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.others.lock().unwrap().push((ptype, data.to_vec()));
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.poll_shutdown(cx)
    }
}

/// Our end of a shell session: keystrokes in, screen out, sizes sent.
struct Shell {
    session: Session,
    io: DuplexStream,
    sizes: mpsc::UnboundedSender<Bytes>,
    others: Others,
    seen: Vec<u8>,
}

impl Shell {
    async fn start(sim: &Sim, document: &str, parameters: &[(&str, &str)]) -> Self {
        let api = Arc::new(common::sim_api(Some(sim.endpoint_url())).await);
        let (mine, theirs) = tokio::io::duplex(256 * 1024);
        let (sizes, rx) = mpsc::unbounded_channel();
        let others = Others::default();
        let layer = Terminal {
            stream: ByteStream::ready(theirs),
            sizes: rx,
            others: others.clone(),
        };
        let req = SessionRequest {
            target: ID.to_owned(),
            document: document.to_owned(),
            parameters: parameters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let opts = SessionOptions::default();
        let session = Session::start_layer(api, &req, layer, opts).await.unwrap();
        Self {
            session,
            io: mine,
            sizes,
            others,
            seen: Vec::new(),
        }
    }

    async fn type_line(&mut self, line: &str) {
        self.io.write_all(line.as_bytes()).await.unwrap();
        self.io.write_all(b"\n").await.unwrap();
    }

    /// Reads the screen until `want` shows up after what was already looked at; returns
    /// everything read since.
    async fn wait_for(&mut self, want: &str) -> String {
        let from = self.seen.len();
        let found = |seen: &[u8]| {
            String::from_utf8_lossy(seen.get(from..).unwrap_or_default()).contains(want)
        };
        tokio::time::timeout(GUARD, async {
            let mut buf = [0u8; 4096];
            while !found(&self.seen) {
                let n = self.io.read(&mut buf).await.unwrap();
                assert!(n > 0, "the session ended before {want:?} showed up");
                self.seen.extend_from_slice(buf.get(..n).unwrap());
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no {want:?} within {GUARD:?}; screen: {:?}",
                String::from_utf8_lossy(&self.seen)
            )
        });
        String::from_utf8_lossy(self.seen.get(from..).unwrap()).into_owned()
    }

    /// Reads to the end of the stream; returns what came.
    async fn read_to_end(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        tokio::time::timeout(GUARD, self.io.read_to_end(&mut rest))
            .await
            .expect("the session did not end")
            .unwrap();
        rest
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_session_runs_commands_in_a_real_pty_that_size_payloads_resize() {
    let sim = sim(AgentKnobs::default()).await;
    let mut sh = Shell::start(&sim, "SSM-SessionManagerRunShell", &[]).await;
    sh.type_line("echo $((6*7))").await;
    sh.wait_for("42\r\n").await;
    sh.type_line("stty size").await;
    sh.wait_for("24 80\r\n").await;
    sh.sizes
        .send(Bytes::from_static(br#"{"cols":123,"rows":45}"#))
        .unwrap();
    sh.type_line("stty size").await;
    sh.wait_for("45 123\r\n").await;
    // A Size that is not one is ignored, and the shell goes on.
    sh.sizes.send(Bytes::from_static(b"{not json")).unwrap();
    sh.type_line("echo $TERM").await;
    sh.wait_for("xterm-256color\r\n").await;
    sh.type_line("exit").await;
    sh.read_to_end().await;
    let end = tokio::time::timeout(GUARD, sh.session.finish())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(end, End::ChannelClosed { .. }), "{end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shells_skip_the_handshake_and_noninteractive_commands_do_it_with_null_properties() {
    let sim = sim(AgentKnobs::default()).await;
    let mut sh = Shell::start(&sim, "SSM-SessionManagerRunShell", &[]).await;
    sh.type_line("echo $((6*7))").await;
    sh.wait_for("42\r\n").await;
    let info = sh.session.status().borrow().session.clone().unwrap();
    assert_eq!(info.session_type, None, "no HandshakeRequest: {info:?}");
    sh.type_line("exit").await;
    sh.read_to_end().await;
    let exec = Shell::start(&sim, AWS_EXEC, &[("command", "sleep 30")]).await;
    let mut status = exec.session.status();
    let ready = status.wait_for(|s| s.ready);
    tokio::time::timeout(GUARD, ready).await.unwrap().unwrap();
    let info = status.borrow().session.clone().unwrap();
    assert_eq!(info.session_type.as_deref(), Some("NonInteractiveCommands"));
    assert_eq!(info.properties, serde_json::Value::Null);
    exec.session.request_stop().await;
    let _ = tokio::time::timeout(GUARD, exec.session.finish())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_command_sets_what_a_shell_session_runs() {
    let knobs = AgentKnobs {
        shell_command: "sh -c 'echo shell-command-ran; exec sh'".to_owned(),
        ..AgentKnobs::default()
    };
    let sim = sim(knobs).await;
    let mut sh = Shell::start(&sim, "SSM-SessionManagerRunShell", &[]).await;
    sh.wait_for("shell-command-ran").await;
    sh.type_line("exit").await;
    sh.read_to_end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_command_runs_in_a_pty_and_its_exit_ends_the_session() {
    let sim = sim(AgentKnobs::default()).await;
    let command = "test -t 0 && echo on-a-tty; read line; echo got-$line";
    let mut sh = Shell::start(&sim, "AWS-StartInteractiveCommand", &[("command", command)]).await;
    sh.wait_for("on-a-tty").await;
    sh.type_line("hello").await;
    let rest = String::from_utf8_lossy(&sh.read_to_end().await).into_owned();
    let screen = String::from_utf8_lossy(&sh.seen).into_owned() + &rest;
    assert!(screen.contains("got-hello"), "{screen:?}");
    let end = tokio::time::timeout(GUARD, sh.session.finish())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(end, End::ChannelClosed { .. }), "{end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf8_output_cut_into_small_messages_arrives_byte_exact() {
    // Three-byte characters against 4-byte messages: a blind cut would split most of them.
    let knobs = AgentKnobs {
        chunk: 4,
        ..AgentKnobs::default()
    };
    let sim = sim(knobs).await;
    let text = "€".repeat(200);
    let command = format!("printf '%s' '{text}'");
    let mut sh = Shell::start(
        &sim,
        "AWS-StartInteractiveCommand",
        &[("command", &command)],
    )
    .await;
    let out = sh.read_to_end().await;
    assert_eq!(String::from_utf8(out).unwrap(), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_a_shell_session_kills_its_processes() {
    let sim = sim(AgentKnobs::default()).await;
    let mut sh = Shell::start(&sim, "SSM-SessionManagerRunShell", &[]).await;
    // A background job (an interactive shell gives it a process group of its own).
    sh.type_line(r#"sleep 300 & echo "pid<$!>""#).await;
    let screen = sh.wait_for(">\r\n").await;
    let pid: i32 = screen
        .split("pid<")
        .find_map(|s| s.split('>').next().and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no pid in {screen:?}"));
    assert!(alive(pid), "the background job runs");
    sh.session.request_stop().await;
    let _ = tokio::time::timeout(GUARD, sh.session.finish())
        .await
        .unwrap();
    tokio::time::timeout(GUARD, async {
        while alive(pid) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("process {pid} outlived its terminated session"));
}

/// The process exists and is not a zombie waiting to be reaped.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or_default()
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// A NonInteractiveCommands document with separate output streams and these prefixes.
fn separate_output_document(sim: &Sim, name: &str, stdout_prefix: &str, stderr_prefix: &str) {
    let content = serde_json::json!({
        "schemaVersion": "1.0",
        "description": "A command with its stdout, stderr and exit code apart",
        "sessionType": "NonInteractiveCommands",
        "parameters": { "command": { "type": "String" } },
        "properties": { "linux": {
            "commands": "{{ command }}",
            "separateOutputStream": true,
            "stdOutSeparatorPrefix": stdout_prefix,
            "stdErrSeparatorPrefix": stderr_prefix,
        } },
    });
    let req = CreateDocument {
        name: name.to_owned(),
        content: content.to_string(),
        document_type: Some("Session".to_owned()),
        document_format: None,
    };
    sim.registry().create_document(req).unwrap();
}

/// Runs `command` with `document` to its end: (stdout, the other payloads).
async fn run(sim: &Sim, document: &str, command: &str) -> (Vec<u8>, Vec<(PayloadType, Vec<u8>)>) {
    let mut sh = Shell::start(sim, document, &[("command", command)]).await;
    let out = sh.read_to_end().await;
    let end = tokio::time::timeout(GUARD, sh.session.finish())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(end, End::ChannelClosed { .. }), "{end:?}");
    let others = sh.others.lock().unwrap().clone();
    (out, others)
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const AWS_EXEC: &str = "AWS-StartNonInteractiveCommand";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_noninteractive_commands_run_without_shell_or_stdin_merged_and_without_exit_code() {
    let sim = sim(AgentKnobs::default()).await;
    // No shell: the words reach echo as they are.
    let (out, others) = run(&sim, AWS_EXEC, "echo $((6*7)) '|' x").await;
    assert_eq!(text_of(&out), "$((6*7)) | x\n");
    assert!(others.is_empty(), "{others:?}");
    // stdout and stderr in one stream, in the order written; the exit status is not reported.
    let (out, others) = run(
        &sim,
        AWS_EXEC,
        "sh -c 'echo out; echo err >&2; echo out2; exit 42'",
    )
    .await;
    assert_eq!(text_of(&out), "out\nerr\nout2\n");
    assert!(others.is_empty(), "no StdErr or ExitCode: {others:?}");
    // No stdin: cat reads end of file at once.
    let (out, _) = run(&sim, AWS_EXEC, "cat").await;
    assert!(out.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_output_documents_stream_stderr_apart_and_end_with_the_exit_code() {
    let sim = sim(AgentKnobs::default()).await;
    separate_output_document(&sim, "Sim-Exec", "", "");
    separate_output_document(&sim, "Sim-Exec-Prefixed", "OUT:", "ERR:");
    let command = "sh -c 'echo out; echo err >&2; exit 42'";
    let (out, others) = run(&sim, "Sim-Exec", command).await;
    assert_eq!(text_of(&out), "out\n");
    let want = vec![
        (PayloadType::StdErr, b"err\n".to_vec()),
        (PayloadType::ExitCode, b"EXIT_CODE: 42".to_vec()),
    ];
    assert_eq!(others, want);
    // The prefix starts a pipe's first read and each read after one that ended a line.
    let command = "sh -c 'echo out; sleep 0.2; printf part; sleep 0.2; echo ial; echo err >&2'";
    let (out, others) = run(&sim, "Sim-Exec-Prefixed", command).await;
    let out = text_of(&out);
    // However the reads fell, "ial" continues a line: never prefixed.
    assert!(
        out.starts_with("OUT:out\n") && !out.contains("OUT:ial"),
        "{out:?}"
    );
    assert_eq!(out.replace("OUT:", ""), "out\npartial\n");
    let want = vec![
        (PayloadType::StdErr, b"ERR:err\n".to_vec()),
        (PayloadType::ExitCode, b"EXIT_CODE: 0".to_vec()),
    ];
    assert_eq!(others, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_megabytes_of_stdout_arrive_byte_exact_in_both_forms() {
    let sim = sim(AgentKnobs::default()).await;
    separate_output_document(&sim, "Sim-Exec", "", "");
    let dir = tempfile::tempdir().unwrap();
    let file = common::random_file(dir.path(), "twenty", 20);
    let want = common::sha256_file(&file);
    let command = format!("cat {}", file.display());
    for doc in [AWS_EXEC, "Sim-Exec"] {
        let (out, _) = run(&sim, doc, &command).await;
        let got = dir.path().join("got");
        std::fs::write(&got, &out).unwrap();
        assert_eq!(out.len(), 20 << 20, "{doc}");
        assert_eq!(common::sha256_file(&got), want, "{doc}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_bytes_from_the_client_signal_the_command() {
    let sim = sim(AgentKnobs::default()).await;
    separate_output_document(&sim, "Sim-Exec", "", "");
    let command =
        "sh -c 'trap \"echo got-int; exit 3\" INT; echo ready; while :; do sleep 0.1; done'";
    let mut sh = Shell::start(&sim, "Sim-Exec", &[("command", command)]).await;
    sh.wait_for("ready").await;
    // Other bytes are no input (the command has none); 0x03 is SIGINT.
    sh.io.write_all(b"ignored\x03").await.unwrap();
    let rest = sh.read_to_end().await;
    assert_eq!(text_of(&rest), "got-int\n");
    tokio::time::timeout(GUARD, sh.session.finish())
        .await
        .unwrap()
        .unwrap();
    let others = sh.others.lock().unwrap().clone();
    assert_eq!(
        others,
        vec![(PayloadType::ExitCode, b"EXIT_CODE: 3".to_vec())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_cannot_start_sends_the_agents_error_as_stderr_and_ends() {
    let sim = sim(AgentKnobs::default()).await;
    separate_output_document(&sim, "Sim-Exec", "", "");
    let (out, others) = run(&sim, AWS_EXEC, "no-such-program --flag").await;
    assert!(out.is_empty());
    let text = r#"exec: "no-such-program": executable file not found in $PATH"#;
    assert_eq!(
        others,
        vec![(PayloadType::StdErr, text.as_bytes().to_vec())]
    );
    // With separate output the agent reports exit code 1 first.
    let (_, others) = run(&sim, "Sim-Exec", "/nonexistent/program").await;
    let text = "fork/exec /nonexistent/program: no such file or directory";
    let want = vec![
        (PayloadType::ExitCode, b"EXIT_CODE: 1".to_vec()),
        (PayloadType::StdErr, text.as_bytes().to_vec()),
    ];
    assert_eq!(others, want);
    let (_, others) = run(&sim, AWS_EXEC, "echo 'unclosed").await;
    let [(PayloadType::StdErr, err)] = others.as_slice() else {
        panic!("one StdErr payload, got {others:?}");
    };
    assert!(
        text_of(err).starts_with("Unable to start command: "),
        "{}",
        text_of(err)
    );
}

/// botocore's SSM client against the simulator: creates, describes, gets and re-creates
/// Session documents; every answer must parse as the service's shapes, and errors must carry
/// the service's codes.
const BOTOCORE_DOCUMENTS: &str = r#"
import json, sys
import botocore.session
s = botocore.session.get_session()
c = s.create_client("ssm", region_name="us-east-1", endpoint_url=sys.argv[1],
                    aws_access_key_id="AKIASIMULATOR0000000", aws_secret_access_key="x")
content = json.dumps({"schemaVersion": "1.0", "description": "exec apart",
    "sessionType": "NonInteractiveCommands",
    "parameters": {"command": {"type": "String"}, "prefix": {"type": "String", "default": ""}},
    "properties": {"linux": {"commands": "{{ command }}", "separateOutputStream": True,
                             "stdOutSeparatorPrefix": "{{ prefix }}"}}})
d = c.create_document(Name="Sim-Exec", Content=content, DocumentType="Session",
                      DocumentFormat="JSON")["DocumentDescription"]
assert (d["Name"], d["Status"], d["DocumentType"], d["DocumentVersion"]) == \
    ("Sim-Exec", "Active", "Session", "1"), d
assert {p["Name"]: p.get("DefaultValue") for p in d["Parameters"]} == {"command": None, "prefix": ""}, d
got = c.describe_document(Name="Sim-Exec")["Document"]
assert got["Hash"] == d["Hash"] and got["CreatedDate"] == d["CreatedDate"], (got, d)
assert c.get_document(Name="Sim-Exec")["Content"] == content
yaml = "schemaVersion: '1.0'\nsessionType: Standard_Stream\ninputs:\n  shellProfile:\n    linux: echo pro$((1+1))file\n"
y = c.create_document(Name="Sim-Shell", Content=yaml, DocumentType="Session", DocumentFormat="YAML")
assert y["DocumentDescription"]["DocumentFormat"] == "YAML"
aws = c.describe_document(Name="AWS-StartNonInteractiveCommand")["Document"]
assert aws["Owner"] == "Amazon" and aws["DocumentType"] == "Session", aws
def code(call):
    try:
        call()
    except c.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("no error")
assert code(lambda: c.create_document(Name="Sim-Exec", Content=content, DocumentType="Session")) \
    == "DocumentAlreadyExists"
assert code(lambda: c.create_document(Name="Sim-Bad", Content="{\"schemaVersion\": \"1.0\"}",
                                      DocumentType="Session")) == "InvalidDocumentContent"
assert code(lambda: c.describe_document(Name="Sim-Missing")) == "InvalidDocument"
print("botocore-ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_creates_describes_and_recreates_session_documents_on_the_simulator() {
    let sim = sim(AgentKnobs::default()).await;
    let out = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(BOTOCORE_DOCUMENTS)
        .arg(sim.endpoint_url())
        .output();
    let out = tokio::time::timeout(GUARD, out).await.unwrap().unwrap();
    let stderr = text_of(&out.stderr);
    assert!(
        out.status.success(),
        "botocore (python3-botocore) failed: {stderr}"
    );
    assert_eq!(text_of(&out.stdout).trim(), "botocore-ok", "{stderr}");
    // A created document runs: its default prefix, its separate streams.
    let (out, others) = run(&sim, "Sim-Exec", "sh -c 'echo out; exit 7'").await;
    assert_eq!(text_of(&out), "out\n");
    assert_eq!(
        others,
        vec![(PayloadType::ExitCode, b"EXIT_CODE: 7".to_vec())]
    );
    let mut sh = Shell::start(&sim, "Sim-Shell", &[]).await;
    sh.wait_for("pro2file").await;
    sh.type_line("exit").await;
    sh.read_to_end().await;
}
