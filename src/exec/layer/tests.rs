use super::*;
use crate::exec::marker::{LineEnd, Token};
use std::future::poll_fn;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

struct Rig {
    layer: ExecLayer,
    stdout: DuplexStream,
    stderr: DuplexStream,
    control: mpsc::Sender<Control>,
    outcome: watch::Receiver<Outcome>,
}

fn rig(input: Input, output: Output) -> Rig {
    let (out_w, stdout) = tokio::io::duplex(1 << 16);
    let (err_w, stderr) = tokio::io::duplex(1 << 16);
    let (control, rx) = mpsc::channel(4);
    let (tx, outcome) = watch::channel(Outcome::Unknown);
    let layer = ExecLayer::new(input, output, Box::pin(out_w), Box::pin(err_w), rx, tx);
    Rig {
        layer,
        stdout,
        stderr,
        control,
        outcome,
    }
}

impl Rig {
    async fn deliver(&mut self, ptype: PayloadType, data: &[u8]) {
        let n = poll_fn(|cx| match ptype {
            PayloadType::Output => self.layer.poll_deliver(cx, data),
            other => self.layer.poll_deliver_other(cx, other, data),
        })
        .await
        .unwrap();
        assert_eq!(n, data.len());
    }

    async fn end(mut self) -> (Vec<u8>, Vec<u8>, Outcome) {
        poll_fn(|cx| self.layer.poll_shutdown(cx)).await.unwrap();
        let outcome = self.outcome.borrow().clone();
        drop(self.layer);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        self.stdout.read_to_end(&mut out).await.unwrap();
        self.stderr.read_to_end(&mut err).await.unwrap();
        (out, err, outcome)
    }

    /// The next thing the layer sends, if it has one now.
    fn outgoing(&mut self) -> Option<Vec<u8>> {
        let mut buf = [0u8; 256];
        let mut cx = Context::from_waker(Waker::noop());
        match self.layer.poll_outgoing(&mut cx, &mut buf) {
            Poll::Ready(Ok(Outgoing::Data(n))) => Some(buf[..n].to_vec()),
            Poll::Ready(Ok(Outgoing::Payload(t, b))) => {
                let mut v = format!("{t:?}:").into_bytes();
                v.extend_from_slice(&b);
                Some(v)
            }
            Poll::Ready(Ok(Outgoing::End)) => Some(b"END".to_vec()),
            Poll::Ready(Err(e)) => panic!("{e}"),
            Poll::Pending => None,
        }
    }
}

#[tokio::test]
async fn wrapped_output_reaches_stdout_without_the_marker_and_the_status_is_kept() {
    let t = Token::random();
    let mut r = rig(
        Input::None,
        Output::Marked(MarkerFilter::new(&t, LineEnd::Lf)),
    );
    let stream = format!("line 1\npartial\n{}42\n", t.tag());
    for chunk in stream.as_bytes().chunks(5) {
        r.deliver(PayloadType::Output, chunk).await;
    }
    let (out, err, outcome) = r.end().await;
    assert_eq!(out, b"line 1\npartial");
    assert!(err.is_empty());
    assert_eq!(outcome, Outcome::Exited(42));
}

#[tokio::test]
async fn stderr_goes_to_stderr_and_the_exit_code_payload_sets_the_status() {
    let mut r = rig(Input::None, Output::Plain);
    r.deliver(PayloadType::StdErr, b"oops\n").await;
    r.deliver(PayloadType::Output, b"fine\n").await;
    r.deliver(PayloadType::ExitCode, b"EXIT_CODE: ").await;
    r.deliver(PayloadType::ExitCode, b"3").await;
    let (out, err, outcome) = r.end().await;
    assert_eq!(
        (out.as_slice(), err.as_slice()),
        (&b"fine\n"[..], &b"oops\n"[..])
    );
    assert_eq!(outcome, Outcome::Exited(3));
}

#[tokio::test]
async fn a_hostile_exit_code_payload_is_an_outcome_not_a_panic() {
    let mut r = rig(Input::None, Output::Plain);
    r.deliver(PayloadType::ExitCode, &[b'9'; 500]).await;
    let (_, _, outcome) = r.end().await;
    assert!(matches!(outcome, Outcome::BadExitCode(_)), "{outcome:?}");
}

#[tokio::test]
async fn framed_stdin_waits_for_ready_and_the_exit_marker_sends_the_end_line() {
    let t = Token::random();
    let (mut stdin_w, stdin_r) = tokio::io::duplex(1024);
    let input = Input::Framed(Box::pin(stdin_r), StdinFramer::new(&t));
    let mut r = rig(input, Output::Marked(MarkerFilter::new(&t, LineEnd::Lf)));
    stdin_w.write_all(b"abc").await.unwrap();
    assert_eq!(r.outgoing(), None, "nothing before the wrapper is ready");
    let ready = format!("\n{}ready\n", t.tag());
    r.deliver(PayloadType::Output, ready.as_bytes()).await;
    assert_eq!(r.outgoing(), Some(b"YWJj\n".to_vec()));
    let exit = format!("\n{}0\n", t.tag());
    r.deliver(PayloadType::Output, exit.as_bytes()).await;
    assert_eq!(r.outgoing(), Some(format!("{}eof\n", t.tag()).into_bytes()));
    stdin_w.write_all(b"more").await.unwrap();
    assert_eq!(
        r.outgoing(),
        None,
        "stdin is not read after the command exited"
    );
}

#[tokio::test]
async fn interrupts_and_sizes_go_out_even_without_stdin() {
    let mut r = rig(Input::None, Output::Plain);
    assert_eq!(r.outgoing(), None);
    r.control.send(Control::Interrupt).await.unwrap();
    assert_eq!(r.outgoing(), Some(vec![INTERRUPT]));
    let size = Control::Size { cols: 80, rows: 24 };
    r.control.send(size).await.unwrap();
    assert_eq!(
        r.outgoing(),
        Some(br#"Size:{"cols":80,"rows":24}"#.to_vec())
    );
}
