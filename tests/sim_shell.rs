//! The simulator plays shells (issue 14): a client session on a shell document against the
//! simulated agent, which runs a real command in a real pty. The client side here is the
//! library's own session with a plain byte stream (plus Size payloads), over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use session_proxy::sim::agent::AgentKnobs;
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

/// A byte stream that also sends the terminal sizes it is given, as a shell client does.
struct Terminal {
    stream: ByteStream<DuplexStream>,
    sizes: mpsc::UnboundedReceiver<Bytes>,
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
    seen: Vec<u8>,
}

impl Shell {
    async fn start(sim: &Sim, document: &str, parameters: &[(&str, &str)]) -> Self {
        let api = Arc::new(common::sim_api(Some(sim.endpoint_url())).await);
        let (mine, theirs) = tokio::io::duplex(256 * 1024);
        let (sizes, rx) = mpsc::unbounded_channel();
        let layer = Terminal {
            stream: ByteStream::ready(theirs),
            sizes: rx,
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
