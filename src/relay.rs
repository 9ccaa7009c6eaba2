//! Bidirectional byte relay ("splice") between two streams, used once a SOCKS CONNECT or a
//! stdio bridge has both ends. It owns the copy loops, half-close propagation, the optional idle
//! timeout and the byte counters; it knows nothing about what the streams carry.
//!
//! Half-close matters for protocols such as `ssh` exit or HTTP/1.0 requests where one side
//! says "I'm done sending" and still waits for the answer: on EOF from one side the relay shuts
//! down the *write* half of the other and keeps copying the opposite direction until it ends too.
//! Memory is one buffer per direction. It starts at [`MIN_BUF_SIZE`] and doubles, up to
//! [`BUF_SIZE`], each time a read fills it: a thousand interactive or trickling tunnels then
//! hold a page per direction each instead of 32 KiB, while a bulk transfer reaches full-size
//! reads after three of them ([`ReadSize`]).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Any bidirectional byte stream the crate relays or carries: TCP and Unix sockets, an SSH
/// channel, a port session's stream, a test's in-memory pipe.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + ?Sized> AsyncStream for T {}

/// A boxed [`AsyncStream`].
pub type BoxedStream = Box<dyn AsyncStream>;

/// Reads what `io` has into `buf` and says how much; `Ok(0)` is end of file. The slice form
/// of `AsyncRead::poll_read`, for the poll-based layers (byte streams, port sessions).
pub fn poll_read_into<R: AsyncRead + Unpin + ?Sized>(
    io: &mut R,
    cx: &mut std::task::Context<'_>,
    buf: &mut [u8],
) -> std::task::Poll<io::Result<usize>> {
    let mut rb = tokio::io::ReadBuf::new(buf);
    std::task::ready!(std::pin::Pin::new(io).poll_read(cx, &mut rb))?;
    std::task::Poll::Ready(Ok(rb.filled().len()))
}

/// Largest buffer per direction (bulk transfers).
pub const BUF_SIZE: usize = 32 * 1024;
/// First buffer per direction; enough for keystrokes and small request/response traffic.
pub const MIN_BUF_SIZE: usize = 4 * 1024;

/// \[core\] The read size for one direction: [`MIN_BUF_SIZE`] until a read fills the buffer,
/// then doubling per full read up to [`BUF_SIZE`]. It never shrinks: a stream that once moved
/// bulk data is likely to again, and reallocating on every burst would cost more than it saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSize(usize);

impl Default for ReadSize {
    fn default() -> Self {
        Self(MIN_BUF_SIZE)
    }
}

impl ReadSize {
    pub fn get(self) -> usize {
        self.0
    }

    /// The size for the next read after one that returned `n` bytes.
    pub fn after_read(self, n: usize) -> Self {
        if n >= self.0 {
            Self((self.0 * 2).min(BUF_SIZE))
        } else {
            self
        }
    }
}

/// Live byte counters, updated as data is written, so a status command can read them while a
/// relay runs (and so bytes moved before an error are still accounted for). One instance may be
/// shared by many relays to keep totals.
#[derive(Debug, Default)]
pub struct RelayCounters {
    a_to_b: AtomicU64,
    b_to_a: AtomicU64,
}

impl RelayCounters {
    /// Bytes written from `a` to `b` so far.
    pub fn a_to_b(&self) -> u64 {
        self.a_to_b.load(Ordering::Relaxed)
    }

    /// Bytes written from `b` to `a` so far.
    pub fn b_to_a(&self) -> u64 {
        self.b_to_a.load(Ordering::Relaxed)
    }
}

/// Copies `a → b` and `b → a` concurrently until both directions have reached EOF, and returns
/// `(bytes a→b, bytes b→a)`. The first I/O error ends both directions.
pub async fn relay<A, B>(a: A, b: B) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    relay_with(a, b, None, &[]).await
}

/// [`relay`] with an idle timeout (no byte moved in either direction for that long ends the
/// relay with [`io::ErrorKind::TimedOut`]) and caller-owned counters, each of which counts
/// every byte: e.g. a server's totals and this connection's own (which, unlike the return
/// value, still hold what moved when the relay ends with an error).
pub async fn relay_with<A, B>(
    a: A,
    b: B,
    idle_timeout: Option<Duration>,
    counters: &[&RelayCounters],
) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (a_read, a_write) = tokio::io::split(a);
    let (b_read, b_write) = tokio::io::split(b);
    let activity = Activity::new();
    // try_join: an error in one direction drops (cancels) the other, so a reset on one side
    // cannot leave the other copy loop waiting forever on an idle peer.
    let copy = async {
        tokio::try_join!(
            pump(a_read, b_write, counters, |c| &c.a_to_b, &activity),
            pump(b_read, a_write, counters, |c| &c.b_to_a, &activity),
        )
    };
    match idle_timeout {
        None => copy.await,
        Some(idle) => tokio::select! {
            res = copy => res,
            err = activity.expire_after(idle) => Err(err),
        },
    }
}

/// One direction: read into a fixed buffer, write it all, flush (the writer may buffer, e.g. an
/// SSH channel), and on EOF shut down the writer so the peer sees the half-close.
async fn pump<R, W>(
    mut reader: R,
    mut writer: W,
    counters: &[&RelayCounters],
    direction: fn(&RelayCounters) -> &AtomicU64,
    activity: &Activity,
) -> io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut size = ReadSize::default();
    let mut buf = vec![0u8; size.get()];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).await?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            // A peer that already went away makes shutdown fail; the other direction still
            // deserves to finish, so this is not an error for the relay.
            if let Err(e) = writer.shutdown().await {
                tracing::debug!(error = %e, "relay: shutdown after EOF failed");
            }
            return Ok(total);
        };
        writer.write_all(chunk).await?;
        writer.flush().await?;
        total += n as u64;
        for c in counters {
            direction(c).fetch_add(n as u64, Ordering::Relaxed);
        }
        activity.touch();
        size = size.after_read(n);
        buf.resize(size.get(), 0);
    }
}

/// Last-activity clock shared by both directions, stored as milliseconds since the start so
/// it fits an atomic (the two copy futures run in one task but must stay `Send`).
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `idle`.
    async fn expire_after(&self, idle: Duration) -> io::Error {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return io::Error::new(io::ErrorKind::TimedOut, format!("relay idle for {idle:?}"));
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// Accepts one connection on a fresh loopback listener while connecting to it.
    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.unwrap(), accepted.unwrap().0)
    }

    #[test]
    fn read_size_stays_small_for_small_reads_and_doubles_on_full_ones() {
        let mut size = ReadSize::default();
        for n in [1, 100, MIN_BUF_SIZE - 1, 0] {
            size = size.after_read(n);
        }
        assert_eq!(size.get(), MIN_BUF_SIZE);
        let mut grown = Vec::new();
        for _ in 0..5 {
            size = size.after_read(size.get());
            grown.push(size.get() / 1024);
        }
        assert_eq!(grown, [8, 16, 32, 32, 32]);
        assert_eq!(size.after_read(10).get(), BUF_SIZE, "never shrinks");
    }

    #[tokio::test]
    async fn half_close_lets_the_client_still_receive_the_reply_over_tcp() {
        // client ⇄ front … relay … back ⇄ server
        let (mut client, front) = tcp_pair().await;
        let (back, mut server) = tcp_pair().await;
        let relay = tokio::spawn(relay(front, back));
        let server_task = tokio::spawn(async move {
            let mut request = Vec::new();
            server.read_to_end(&mut request).await.unwrap(); // needs the client's FIN
            let answer = format!("got {} bytes", request.len());
            server.write_all(answer.as_bytes()).await.unwrap();
            server.shutdown().await.unwrap();
        });
        client.write_all(b"hello").await.unwrap();
        client.shutdown().await.unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert_eq!(answer, "got 5 bytes");
        server_task.await.unwrap();
        assert_eq!(relay.await.unwrap().unwrap(), (5, 11));
    }

    #[tokio::test]
    async fn large_transfers_both_ways_arrive_intact_and_are_counted() {
        let (mut a_outer, a_inner) = duplex(8 * 1024);
        let (b_inner, mut b_outer) = duplex(8 * 1024);
        let counters = std::sync::Arc::new(RelayCounters::default());
        let c = counters.clone();
        let relay = tokio::spawn(async move { relay_with(a_inner, b_inner, None, &[&*c]).await });
        let up: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        let down: Vec<u8> = (0..700_001u32).map(|i| (i % 239) as u8).collect();
        let (up2, down2) = (up.clone(), down.clone());
        let a_side = tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(&mut a_outer);
            let send = async {
                w.write_all(&up2).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut got = Vec::new();
            tokio::join!(send, r.read_to_end(&mut got)).1.unwrap();
            got
        });
        let (mut r, mut w) = tokio::io::split(&mut b_outer);
        let send = async {
            w.write_all(&down2).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let mut got_b = Vec::new();
        tokio::join!(send, r.read_to_end(&mut got_b)).1.unwrap();
        assert_eq!(got_b, up);
        assert_eq!(a_side.await.unwrap(), down);
        assert_eq!(
            relay.await.unwrap().unwrap(),
            (up.len() as u64, down.len() as u64)
        );
        assert_eq!(
            (counters.a_to_b(), counters.b_to_a()),
            (up.len() as u64, down.len() as u64)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_timeout_ends_a_silent_relay_with_timed_out() {
        let (_a_outer, a_inner) = duplex(1024);
        let (b_inner, _b_outer) = duplex(1024);
        let counters = RelayCounters::default();
        let err = relay_with(
            a_inner,
            b_inner,
            Some(Duration::from_millis(50)),
            &[&counters],
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn traffic_keeps_the_idle_timer_from_firing() {
        let (mut a_outer, a_inner) = duplex(1024);
        let (b_inner, mut b_outer) = duplex(1024);
        let relay = tokio::spawn(async move {
            let counters = RelayCounters::default();
            relay_with(
                a_inner,
                b_inner,
                Some(Duration::from_millis(600)),
                &[&counters],
            )
            .await
        });
        // Eight writes 100 ms apart span 800 ms, longer than the idle limit.
        for _ in 0..8 {
            a_outer.write_all(b"x").await.unwrap();
            let mut one = [0u8; 1];
            b_outer.read_exact(&mut one).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(a_outer);
        drop(b_outer);
        assert_eq!(relay.await.unwrap().unwrap(), (8, 0));
    }

    #[tokio::test]
    async fn every_counter_keeps_the_bytes_moved_before_an_error() {
        let (mut client, front) = tcp_pair().await;
        let (back, mut server) = tcp_pair().await;
        let (totals, own) = (
            std::sync::Arc::new(RelayCounters::default()),
            std::sync::Arc::new(RelayCounters::default()),
        );
        let (t, o) = (totals.clone(), own.clone());
        let relay = tokio::spawn(async move { relay_with(front, back, None, &[&*t, &*o]).await });
        client.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        server.read_exact(&mut got).await.unwrap();
        server.write_all(b"hi").await.unwrap();
        let mut back_got = [0u8; 2];
        client.read_exact(&mut back_got).await.unwrap();
        client.set_zero_linger().unwrap();
        drop(client);
        let res = tokio::time::timeout(Duration::from_secs(5), relay)
            .await
            .unwrap()
            .unwrap();
        assert!(res.is_err(), "{res:?}");
        for c in [&totals, &own] {
            assert_eq!((c.a_to_b(), c.b_to_a()), (5, 2));
        }
    }

    #[tokio::test]
    async fn a_reset_on_one_side_ends_the_relay_with_an_error() {
        let (client, front) = tcp_pair().await;
        let (back, _server_kept_open) = tcp_pair().await;
        // SO_LINGER 0 turns close into an RST.
        client.set_zero_linger().unwrap();
        let relay = tokio::spawn(relay(front, back));
        drop(client);
        let res = tokio::time::timeout(Duration::from_secs(5), relay)
            .await
            .unwrap()
            .unwrap();
        assert!(res.is_err(), "{res:?}");
    }
}
