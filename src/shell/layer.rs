//! The shell's application layer: [`Input`]s out as Output and Size payloads, the shell's
//! Output in to stdout, StdErr (not expected from a shell, §8) in to stderr, and ExitCode
//! (never sent for shells) logged and dropped.
//!
//! Bytes go out exactly as they came: the plugin's rewrite of a lone LF into CR is not
//! copied. A terminal in raw mode already sends CR for Enter, and a piped script's LFs are
//! what a pty's line discipline expects.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;

use super::input::{eof_keys, size_payload, Input};
use crate::ssm::driver::{AppLayer, Outgoing};
use crate::ssm::message::PayloadType;

/// A shell session's layer; `O` is stdout, `E` stderr.
pub struct ShellLayer<O, E> {
    input: mpsc::Receiver<Input>,
    /// Keys taken from `input` that did not fit the channel's buffer yet.
    pending: Bytes,
    last_sent: Option<u8>,
    /// stdin ended and its end was sent: nothing more will come.
    input_done: bool,
    out: Pin<Box<O>>,
    err: Pin<Box<E>>,
}

impl<O, E> ShellLayer<O, E> {
    pub fn new(input: mpsc::Receiver<Input>, out: O, err: E) -> Self {
        Self {
            input,
            pending: Bytes::new(),
            last_sent: None,
            input_done: false,
            out: Box::pin(out),
            err: Box::pin(err),
        }
    }

    /// Copies as much of `pending` as fits into `buf`.
    fn take_pending(&mut self, buf: &mut [u8]) -> Outgoing {
        let n = self.pending.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), self.pending.get(..n)) {
            dst.copy_from_slice(src);
        }
        if let Some(&b) = self.pending.get(n.wrapping_sub(1)) {
            self.last_sent = Some(b);
        }
        self.pending.advance(n);
        Outgoing::Data(n)
    }
}

impl<O, E> AppLayer for ShellLayer<O, E>
where
    O: AsyncWrite + Send + 'static,
    E: AsyncWrite + Send + 'static,
{
    fn poll_outgoing(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<Outgoing>> {
        if !self.pending.is_empty() && !buf.is_empty() {
            return Poll::Ready(Ok(self.take_pending(buf)));
        }
        if self.input_done {
            // Never `Outgoing::End`: a shell has no end of input on the wire, and the session
            // stays open until the service closes it.
            return Poll::Pending;
        }
        match self.input.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Input::Keys(keys))) => {
                self.pending = keys;
                Poll::Ready(Ok(self.take_pending(buf)))
            }
            Poll::Ready(Some(Input::Resize { cols, rows })) => Poll::Ready(Ok(Outgoing::Payload(
                PayloadType::Size,
                size_payload(cols, rows),
            ))),
            Poll::Ready(Some(Input::Eof) | None) => {
                self.input_done = true;
                self.pending = Bytes::from_static(eof_keys(self.last_sent));
                Poll::Ready(Ok(self.take_pending(buf)))
            }
        }
    }

    fn poll_deliver(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.out.as_mut().poll_write(cx, data)
    }

    fn poll_deliver_other(
        &mut self,
        cx: &mut Context<'_>,
        ptype: PayloadType,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if ptype == PayloadType::StdErr {
            // Another destination, same order: stdout's bytes so far go first.
            std::task::ready!(self.out.as_mut().poll_flush(cx))?;
            let n = std::task::ready!(self.err.as_mut().poll_write(cx, data))?;
            std::task::ready!(self.err.as_mut().poll_flush(cx))?;
            return Poll::Ready(Ok(n));
        }
        tracing::debug!(
            "ignoring {} bytes of payload type {} in a shell session",
            data.len(),
            ptype.to_u32()
        );
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.out.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // stdout stays open: the CLI still writes its closing line to stderr after this.
        self.out.as_mut().poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    fn layer() -> (mpsc::Sender<Input>, ShellLayer<Vec<u8>, Vec<u8>>) {
        let (tx, rx) = mpsc::channel(8);
        (tx, ShellLayer::new(rx, Vec::new(), Vec::new()))
    }

    async fn next(l: &mut ShellLayer<Vec<u8>, Vec<u8>>, room: usize) -> (Outgoing, Vec<u8>) {
        let mut buf = vec![0u8; room];
        let o = poll_fn(|cx| l.poll_outgoing(cx, &mut buf)).await.unwrap();
        let data = match o {
            Outgoing::Data(n) => buf[..n].to_vec(),
            _ => vec![],
        };
        (o, data)
    }

    #[tokio::test]
    async fn keys_go_out_as_typed_in_order_with_sizes_between() {
        let (tx, mut l) = layer();
        tx.send(Input::Resize { cols: 80, rows: 24 }).await.unwrap();
        tx.send(Input::Keys(Bytes::from_static(b"ls\n\x03\x1a\x1c")))
            .await
            .unwrap();
        match next(&mut l, 64).await.0 {
            Outgoing::Payload(PayloadType::Size, b) => {
                assert_eq!(&b[..], br#"{"cols":80,"rows":24}"#)
            }
            other => panic!("expected a Size payload, got {other:?}"),
        }
        // No LF→CR rewrite, control keys untouched; a small buffer takes the rest later.
        assert_eq!(next(&mut l, 4).await.1, b"ls\n\x03");
        assert_eq!(next(&mut l, 64).await.1, b"\x1a\x1c");
    }

    #[tokio::test]
    async fn end_of_piped_input_sends_ctrl_d_once_and_then_nothing() {
        let (tx, mut l) = layer();
        tx.send(Input::Keys(Bytes::from_static(b"echo hi")))
            .await
            .unwrap();
        tx.send(Input::Eof).await.unwrap();
        drop(tx);
        assert_eq!(next(&mut l, 64).await.1, b"echo hi");
        assert_eq!(next(&mut l, 64).await.1, b"\x04\x04");
        let mut buf = [0u8; 8];
        let again = poll_fn(|cx| Poll::Ready(l.poll_outgoing(cx, &mut buf).is_pending())).await;
        assert!(again, "input after its end must stay pending, never End");
    }

    #[tokio::test]
    async fn stderr_bytes_go_to_stderr_and_exit_codes_are_dropped() {
        let (_tx, mut l) = layer();
        let n = poll_fn(|cx| l.poll_deliver(cx, b"out")).await.unwrap();
        assert_eq!(n, 3);
        poll_fn(|cx| l.poll_deliver_other(cx, PayloadType::StdErr, b"err"))
            .await
            .unwrap();
        poll_fn(|cx| l.poll_deliver_other(cx, PayloadType::ExitCode, b"EXIT_CODE: 1"))
            .await
            .unwrap();
        assert_eq!(&**l.out, b"out");
        assert_eq!(&**l.err, b"err");
    }
}
