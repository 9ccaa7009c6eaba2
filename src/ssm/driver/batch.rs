//! Reading the link in batches while the peer streams small messages steadily.
//!
//! Why: the real agent sends a ≤ 1 KiB message, sleeps 1 ms, and sends the next, so a
//! download arrives one message per wake-up. A wake-up costs about the same whatever it
//! brings (the switch into the process, epoll, a socket read, a write to stdout, an ack that
//! wakes the peer), and at that pace that fixed cost was almost all of the client's CPU: about
//! 50 µs a message on the benchmark machine, where the kernel's share alone is about 27 µs.
//!
//! So once wake-ups have come close together for a while ([`ENTER_STREAK`] link reads, each
//! within [`FAST_GAP`] of the one before), the socket's receive low-water mark (`SO_RCVLOWAT`)
//! is raised to [`LOW_WATER`]: the kernel stops waking us for every message. At each flush
//! the mark drops back to one byte, which makes the kernel wake us at once if anything is
//! queued; that read delivers and acknowledges everything that came meanwhile in one go, and
//! the mark goes up again. A stream fast enough to queue [`LOW_WATER`] bytes sooner wakes us
//! then. The first flush comes [`FIRST_FLUSH`] after batching starts, and the interval doubles
//! with each flush that finds the stream still steady, up to [`MAX_FLUSH`]: a burst is held
//! back little, and a long download wakes the process about once per [`MAX_FLUSH`].
//!
//! Batching is for a peer that streams on its own, not for one that answers us: only reads
//! with nothing sent in between count toward starting, so request/response traffic (an
//! upload's acks included) never batches, however fast it is. Once a stream batches, sending
//! does not stop it: OpenSSH sends a window adjust every few batches during a download, and
//! ending the batch for each made the reader wake for every message again for a while. So an
//! answer to something sent *during* a stream, like a keystroke's echo in a terminal that is
//! busy printing, waits for the next flush. A flush that finds fewer than [`MIN_FLUSH`]
//! messages means the stream slowed: batching ends and the mark stays at one byte. The added
//! wait is at most one flush interval, and only while the peer streams.
//!
//! The acks of a batch leave together at its end, in order. The real agent's RTO follows
//! its last few RTT samples (reference §6.3), and a batch ends on samples near zero, so its
//! 100 ms resend tick can find the first message of the next batch held past that RTO and
//! resend it: a model of §6.3 puts that at about four messages a second at a 50 ms hold and
//! six at 100 ms, out of a thousand (each duplicate is discarded and acknowledged again).
//!
//! This is the state machine only; the driver applies its answers to the link
//! ([`super::Link::set_read_low_water`]) and arms its timer from [`Batching::deadline`].

use std::time::{Duration, Instant};

/// Link reads this close together count toward starting to batch.
pub(super) const FAST_GAP: Duration = Duration::from_millis(3);

/// Consecutive close reads that start batching.
pub(super) const ENTER_STREAK: u32 = 8;

/// How long a reader that has just started to batch lets messages queue before it reads
/// them: short, so a burst (a screen redraw, a directory listing) is held back little.
pub(super) const FIRST_FLUSH: Duration = Duration::from_millis(25);

/// The longest a batching reader lets messages queue: the interval doubles with each full
/// flush up to this (25, 50, 100 ms), so only a stream steady for about 75 ms gets here. With
/// this cap instead of a fixed 50 ms, a download at the agent's pace wakes the reader about
/// 40 % less often and costs about a fifth less CPU per message (`bench/paced.sh`).
pub(super) const MAX_FLUSH: Duration = Duration::from_millis(100);

/// Bytes queued that wake a batching reader before its flush: a fast stream is read in pieces
/// this size. At the agent's pace (1 KiB messages, about 1.1 KiB framed, one a millisecond) a
/// [`MAX_FLUSH`] brings about 115 KiB, so the timer, not the mark, ends those batches.
pub(super) const LOW_WATER: usize = 128 * 1024;

/// A flush that finds fewer messages than this ends batching: the stream has slowed.
pub(super) const MIN_FLUSH: u32 = 4;

/// Where the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    /// One read per wake-up (the kernel's default mark), counting close reads.
    #[default]
    Single,
    /// The mark is raised; flush at this instant unless [`LOW_WATER`] wakes us first.
    Batching { flush_at: Instant },
    /// The mark was lowered to flush; the next read shows whether the stream is still steady.
    Flushing,
}

/// Whether the link's reads are batched, and what decides the next change.
#[derive(Debug, Default)]
pub(super) struct Batching {
    mode: Mode,
    /// Messages taken since the link last ran dry.
    taken: u32,
    /// When the link last ran dry after giving messages.
    last_dry: Option<Instant>,
    /// Consecutive dry points within [`FAST_GAP`] of the one before.
    streak: u32,
    /// The current flush interval, from [`FIRST_FLUSH`] to [`MAX_FLUSH`].
    every: Duration,
    /// The link cannot batch (no socket of its own, or the mark was refused): stop asking.
    refused: bool,
    /// Link reads that gave messages, over the session (one per wake-up of the reader).
    reads: u64,
}

/// A change of the link's receive low-water mark the driver must make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LowWater {
    /// Wake only once [`LOW_WATER`] bytes are queued.
    Raise,
    /// Wake for any byte (and at once, if some are queued).
    Lower,
}

impl Batching {
    /// The link gave a message.
    pub(super) fn on_message(&mut self) {
        self.taken = self.taken.saturating_add(1);
    }

    /// The link has nothing more to read right now. After a read that gave messages, this is
    /// the end of a wake-up's batch: count it toward starting, judge a flush, or move the
    /// next flush on.
    pub(super) fn on_dry(&mut self, now: Instant) -> Option<LowWater> {
        let taken = std::mem::take(&mut self.taken);
        if taken == 0 {
            return None;
        }
        self.reads += 1;
        let close = self
            .last_dry
            .is_some_and(|t| now.saturating_duration_since(t) <= FAST_GAP);
        self.last_dry = Some(now);
        match self.mode {
            _ if self.refused => None,
            Mode::Batching { .. } => {
                self.mode = Mode::Batching {
                    flush_at: now + self.every,
                };
                None
            }
            Mode::Flushing if taken >= MIN_FLUSH => {
                self.every = (self.every * 2).min(MAX_FLUSH);
                self.start(now)
            }
            Mode::Flushing => {
                self.mode = Mode::Single;
                self.streak = 1;
                None
            }
            Mode::Single => {
                self.streak = if close {
                    self.streak.saturating_add(1)
                } else {
                    1
                };
                if self.streak < ENTER_STREAK {
                    return None;
                }
                self.every = FIRST_FLUSH;
                self.start(now)
            }
        }
    }

    fn start(&mut self, now: Instant) -> Option<LowWater> {
        self.mode = Mode::Batching {
            flush_at: now + self.every,
        };
        Some(LowWater::Raise)
    }

    /// When the driver must call [`Batching::on_timeout`], while batching.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.mode {
            Mode::Batching { flush_at } => Some(flush_at),
            Mode::Single | Mode::Flushing => None,
        }
    }

    /// Time passed: at the flush instant, lower the mark so whatever is queued is read now.
    pub(super) fn on_timeout(&mut self, now: Instant) -> Option<LowWater> {
        match self.mode {
            Mode::Batching { flush_at } if flush_at <= now => {
                self.mode = Mode::Flushing;
                Some(LowWater::Lower)
            }
            _ => None,
        }
    }

    /// The application sent something: before batching, the streak starts over (answers are
    /// not a stream). A stream that already batches goes on.
    pub(super) fn on_sent(&mut self) {
        if self.mode == Mode::Single {
            self.streak = 0;
            self.last_dry = None;
        }
    }

    /// The link did not take a raised mark: read one wake-up at a time on this link.
    pub(super) fn on_refused(&mut self) {
        self.mode = Mode::Single;
        self.refused = true;
    }

    /// True while reads are batched or being flushed (acks then leave at the end of each
    /// batch).
    pub(super) fn is_batching(&self) -> bool {
        self.mode != Mode::Single
    }

    /// Link reads that gave messages so far (kept across links).
    pub(super) fn reads(&self) -> u64 {
        self.reads
    }

    /// A new link starts with the kernel's default mark: start over.
    pub(super) fn reset(&mut self) {
        *self = Self {
            reads: self.reads,
            ..Self::default()
        };
    }
}

/// Sets `SO_RCVLOWAT` on a socket. Linux signals readiness at once when the new mark is
/// already met, which is what ends a batch at its deadline.
pub(super) fn set_receive_low_water(
    socket: &impl std::os::fd::AsRawFd,
    bytes: usize,
) -> std::io::Result<()> {
    let value = libc::c_int::try_from(bytes.max(1)).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live local c_int; the
    // descriptor is borrowed from a socket that stays open for the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Feeds `n` wake-ups of `per` messages each, `gap` apart from `t`; returns the last
    /// instant and every low-water change asked for.
    fn wakes(
        b: &mut Batching,
        t: Instant,
        n: u32,
        per: u32,
        gap: Duration,
    ) -> (Instant, Vec<LowWater>) {
        let mut now = t;
        let mut asked = Vec::new();
        for _ in 0..n {
            now += gap;
            for _ in 0..per {
                b.on_message();
            }
            asked.extend(b.on_dry(now));
        }
        (now, asked)
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_steady_stream_of_single_messages_starts_batching_after_the_streak() {
        let mut b = Batching::default();
        let t = Instant::now();
        let (now, asked) = wakes(&mut b, t, ENTER_STREAK - 1, 1, MS);
        assert!(asked.is_empty() && !b.is_batching());
        let (now, asked) = wakes(&mut b, now, 1, 1, MS);
        assert_eq!(asked, [LowWater::Raise]);
        assert_eq!(b.deadline(), Some(now + FIRST_FLUSH));
        // A fast stream that reaches the mark first only moves the next flush on.
        let (now, asked) = wakes(&mut b, now, 3, 50, 5 * MS);
        assert!(asked.is_empty());
        assert_eq!(b.deadline(), Some(now + FIRST_FLUSH));
    }

    #[test]
    fn keystroke_paced_traffic_never_batches() {
        let mut b = Batching::default();
        let (_, asked) = wakes(&mut b, Instant::now(), 200, 1, FAST_GAP * 2);
        assert!(asked.is_empty() && !b.is_batching());
    }

    #[test]
    fn one_slow_gap_restarts_the_streak() {
        let mut b = Batching::default();
        let t = Instant::now();
        let (now, _) = wakes(&mut b, t, ENTER_STREAK - 1, 1, MS);
        let (now, asked) = wakes(&mut b, now, 1, 1, FAST_GAP * 3);
        assert!(asked.is_empty());
        let (_, asked) = wakes(&mut b, now, ENTER_STREAK - 2, 1, MS);
        assert!(asked.is_empty() && !b.is_batching());
    }

    #[test]
    fn each_flush_lowers_the_mark_and_a_full_flush_raises_it_again() {
        let mut b = Batching::default();
        let (now, _) = wakes(&mut b, Instant::now(), ENTER_STREAK, 1, MS);
        let flush_at = now + FIRST_FLUSH;
        assert_eq!(b.on_timeout(flush_at - MS), None, "not yet");
        assert_eq!(b.on_timeout(flush_at), Some(LowWater::Lower));
        assert_eq!(b.deadline(), None, "the flush read decides what next");
        assert!(b.is_batching());
        // The flush read brings what queued meanwhile: the stream is still steady.
        let (now, asked) = wakes(&mut b, flush_at, 1, 30, Duration::ZERO);
        assert_eq!(asked, [LowWater::Raise]);
        assert_eq!(b.deadline(), Some(now + FIRST_FLUSH * 2));
    }

    /// Flushes a batching reader at its deadline `n` times, each read bringing `per`
    /// messages, the first deadline counting from `since` (the last read); returns the last
    /// read's instant and how long each flush let messages queue.
    fn flushes(b: &mut Batching, since: Instant, n: u32, per: u32) -> (Instant, Vec<Duration>) {
        let mut last = since;
        let mut waited = Vec::new();
        for _ in 0..n {
            let Some(due) = b.deadline() else { break };
            waited.push(due - last);
            assert_eq!(b.on_timeout(due), Some(LowWater::Lower));
            (last, _) = wakes(b, due, 1, per, Duration::ZERO);
        }
        (last, waited)
    }

    #[test]
    fn a_steady_stream_waits_longer_with_each_full_flush_up_to_the_cap() {
        let mut b = Batching::default();
        let (now, _) = wakes(&mut b, Instant::now(), ENTER_STREAK, 1, MS);
        let (_, waited) = flushes(&mut b, now, 5, 40);
        let ms = |n| Duration::from_millis(n);
        assert_eq!(waited, [ms(25), ms(50), ms(100), ms(100), ms(100)]);
        assert_eq!((FIRST_FLUSH, MAX_FLUSH), (ms(25), ms(100)));
    }

    #[test]
    fn a_stream_that_batches_again_starts_from_the_short_interval() {
        let mut b = Batching::default();
        let (now, _) = wakes(&mut b, Instant::now(), ENTER_STREAK, 1, MS);
        let (last, _) = flushes(&mut b, now, 3, 40);
        let (_, waited) = flushes(&mut b, last, 1, MIN_FLUSH - 1);
        assert_eq!(waited, [MAX_FLUSH]);
        assert!(!b.is_batching());
        let (now, _) = wakes(&mut b, now + Duration::from_secs(1), ENTER_STREAK, 1, MS);
        assert_eq!(b.deadline(), Some(now + FIRST_FLUSH));
    }

    #[test]
    fn a_thin_flush_ends_batching_and_it_takes_a_new_streak_to_start_again() {
        let mut b = Batching::default();
        let (now, _) = wakes(&mut b, Instant::now(), ENTER_STREAK, 1, MS);
        let flush_at = now + FIRST_FLUSH;
        assert_eq!(b.on_timeout(flush_at), Some(LowWater::Lower));
        let (now, asked) = wakes(&mut b, flush_at, 1, MIN_FLUSH - 1, Duration::ZERO);
        assert!(asked.is_empty(), "the mark is already down");
        assert!(!b.is_batching() && b.deadline().is_none());
        let (_, asked) = wakes(&mut b, now, ENTER_STREAK - 2, 1, MS);
        assert!(asked.is_empty() && !b.is_batching());
    }

    #[test]
    fn ping_pong_never_batches_however_fast() {
        let mut b = Batching::default();
        let mut now = Instant::now();
        for _ in 0..10 * ENTER_STREAK {
            b.on_sent();
            now += Duration::from_micros(200);
            b.on_message();
            assert_eq!(b.on_dry(now), None);
        }
        assert!(!b.is_batching());
    }

    #[test]
    fn sending_does_not_stop_a_stream_that_batches() {
        let mut b = Batching::default();
        let (now, _) = wakes(&mut b, Instant::now(), ENTER_STREAK, 1, MS);
        b.on_sent();
        assert!(b.is_batching());
        assert_eq!(b.deadline(), Some(now + FIRST_FLUSH));
    }

    #[test]
    fn a_dry_link_without_messages_changes_nothing() {
        let mut b = Batching::default();
        let t = Instant::now();
        for i in 0..100 {
            assert_eq!(b.on_dry(t + Duration::from_micros(i)), None);
        }
        assert!(!b.is_batching());
        assert_eq!(b.reads(), 0);
    }

    #[test]
    fn a_link_that_refuses_the_mark_is_never_asked_again() {
        let mut b = Batching::default();
        let (now, asked) = wakes(&mut b, Instant::now(), ENTER_STREAK, 1, Duration::ZERO);
        assert_eq!(asked, [LowWater::Raise]);
        b.on_refused();
        assert!(!b.is_batching() && b.deadline().is_none());
        let (_, asked) = wakes(&mut b, now, 10 * ENTER_STREAK, 1, Duration::ZERO);
        assert!(asked.is_empty() && !b.is_batching());
    }

    #[test]
    fn a_new_link_starts_unbatched_and_reads_count_the_whole_session() {
        let mut b = Batching::default();
        wakes(&mut b, Instant::now(), ENTER_STREAK, 1, MS);
        assert!(b.is_batching());
        b.reset();
        assert!(!b.is_batching() && b.deadline().is_none());
        assert_eq!(b.reads(), u64::from(ENTER_STREAK));
    }

    /// Whether `s` polls readable within `ms`.
    fn readable(s: &std::net::TcpStream, ms: i32) -> bool {
        use std::os::fd::AsRawFd;
        let mut p = libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd, for the length given.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        n == 1 && p.revents & libc::POLLIN != 0
    }

    /// The kernel behaviour batching rests on: below the mark a socket does not poll readable;
    /// reaching it, or lowering the mark under what is queued, makes it readable.
    #[test]
    fn a_socket_wakes_its_reader_only_at_the_mark_or_when_the_mark_is_lowered() {
        use std::io::Write;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut tx = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (rx, _) = l.accept().unwrap();
        set_receive_low_water(&rx, LOW_WATER).unwrap();
        tx.write_all(&[1; 1024]).unwrap();
        assert!(!readable(&rx, 50), "1 KiB under the mark woke the reader");
        set_receive_low_water(&rx, 1).unwrap();
        assert!(
            readable(&rx, 5000),
            "lowering the mark did not wake the reader"
        );
        set_receive_low_water(&rx, LOW_WATER).unwrap();
        assert!(!readable(&rx, 50));
        tx.write_all(&[2; LOW_WATER]).unwrap();
        assert!(
            readable(&rx, 5000),
            "reaching the mark did not wake the reader"
        );
    }
}
