//! End to end: an upstream `Pool` through the in-process SSM simulator to a real loopback sshd.
//! Streams are spread over the pool's connections and instances and carry megabytes byte
//! exactly; a session killed on the service side is rebuilt; refusals keep their SOCKS code;
//! a lazy pool fails over from an offline instance; shutdown terminates every session.
//!
//! Each test runs its own simulator and sshd; the pools are pointed at their simulator through
//! `PoolOptions::endpoint_url`, so the tests run in parallel in one process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::future::Future;
use std::num::NonZeroUsize;
use std::time::Duration;

use common::echo::{echo_server, echo_through, payload};
use common::{refusing_port, Sshd};
use session_proxy::config::{
    HostKeyPolicy, InlineCredentials, SshUpstream, Upstream, UpstreamKind,
};
use session_proxy::redact::Redacted;
use session_proxy::sim::instances::Instance;
use session_proxy::sim::{Sim, SimOptions};
use session_proxy::upstream::state::BackoffPolicy;
use session_proxy::upstream::{Pool, PoolOptions, PoolState, PoolStatus, UpstreamError};

const ID_A: &str = "i-0aaaaaaaaaaaaaaa1";
const ID_B: &str = "i-0bbbbbbbbbbbbbbb2";
const ID_OFF: &str = "i-0ccccccccccccccc3";

fn credentials() -> InlineCredentials {
    InlineCredentials {
        access_key_id: "AKIASIMULATOR0000000".into(),
        secret_access_key: Redacted::new("simulator-secret".into()),
        session_token: None,
    }
}

fn config(sshd: &Sshd, name: &str, targets: &[&str], pool_size: usize, lazy: bool) -> Upstream {
    Upstream {
        name: name.into(),
        targets: targets.iter().map(|t| t.parse().unwrap()).collect(),
        profile: None,
        region: Some("us-east-1".into()),
        credentials: Some(credentials()),
        kind: UpstreamKind::Ssh(SshUpstream {
            user: sshd.user.clone(),
            identity_files: vec![sshd.client_key.clone()],
            ssh_agent: false,
            instance_connect: false,
            port: 22,
            pool_size: NonZeroUsize::new(pool_size).unwrap(),
            host_key_policy: HostKeyPolicy::AcceptNew,
            lazy,
            keepalive: Some(Duration::from_secs(15)),
        }),
    }
}

/// Options for a pool talking to `sim`, never to the real AWS configuration.
fn options(sim: &Sim, sshd: &Sshd) -> PoolOptions {
    PoolOptions {
        backoff: BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            stable_after: Duration::from_secs(30),
        },
        connect_timeout: Duration::from_secs(30),
        open_wait: Duration::from_secs(30),
        endpoint_url: Some(sim.endpoint_url()),
        ..PoolOptions::new(&sshd.dir.path().join("state"))
    }
}

/// Polls `check` on the pool's status until it holds, or fails with the last status.
async fn wait_status(pool: &Pool, what: &str, check: impl Fn(&PoolStatus) -> bool) -> PoolStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = pool.snapshot();
        if check(&s) {
            return s;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}; status: {s:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// A simulator with instances A, B (Name tag `bastion-b`) and an offline one, all leading to one
/// loopback sshd, and an echo server behind it.
struct Fixture {
    sim: Sim,
    sshd: Sshd,
    echo: std::net::SocketAddr,
    _echo_task: tokio::task::JoinHandle<()>,
}

impl Fixture {
    async fn start() -> Self {
        // Shown only when a test fails; RUST_LOG=debug for more.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "session_proxy=info".into()),
            )
            .with_test_writer()
            .try_init();
        let sshd = Sshd::start();
        let (echo, _echo_task) = echo_server().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b = Instance {
            name: Some("bastion-b".into()),
            ..Instance::new(ID_B, sshd.addr)
        };
        let off = Instance {
            online: false,
            ..Instance::new(ID_OFF, sshd.addr)
        };
        let opts = SimOptions {
            instances: vec![Instance::new(ID_A, sshd.addr), b, off],
            ..SimOptions::default()
        };
        let sim = Sim::start(listener, opts).unwrap();
        Self {
            sim,
            sshd,
            echo,
            _echo_task,
        }
    }

    fn pool(&self, name: &str, targets: &[&str], size: usize, lazy: bool) -> Pool {
        Pool::new(
            config(&self.sshd, name, targets, size, lazy),
            options(&self.sim, &self.sshd),
        )
        .unwrap()
    }

    /// A started pool of two over A and B (B by its Name tag), both connections up.
    async fn pool_of_two(&self) -> Pool {
        let pool = self.pool("main", &[ID_A, "bastion-b"], 2, false);
        pool.start();
        within("ready", pool.wait_ready(Duration::from_secs(30)))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.sshd.log()));
        wait_status(&pool, "both connections up", |s| s.connections_up == 2).await;
        pool
    }

    async fn echo_once(&self, pool: &Pool, len: usize, seed: u64) {
        let st = within("open", pool.open_stream("127.0.0.1", self.echo.port()))
            .await
            .unwrap_or_else(|e| panic!("open (seed {seed}): {e}"));
        let data = payload(len, seed);
        assert!(echo_through(st, &data).await == data, "seed {seed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_two_puts_one_connection_on_each_instance_and_two_streams_on_each() {
    let f = Fixture::start().await;
    let pool = f.pool_of_two().await;
    let s = pool.snapshot();
    assert_eq!(s.state, PoolState::Up);
    assert_eq!(s.instances, [ID_A, ID_B], "one connection per instance");
    let mut streams = Vec::new();
    for _ in 0..4 {
        let st = within("open", pool.open_stream("127.0.0.1", f.echo.port())).await;
        streams.push(st.unwrap());
    }
    let s = pool.snapshot();
    assert_eq!(s.open_streams, 4);
    let per_conn: Vec<usize> = s.connections.iter().map(|c| c.open_streams).collect();
    assert_eq!(per_conn, [2, 2], "least-loaded placement: {s:#?}");
    let mut used: Vec<&str> = streams.iter().filter_map(|st| st.instance()).collect();
    used.sort();
    used.dedup();
    assert_eq!(used, [ID_A, ID_B]);
    drop(streams);
    within("shutdown", pool.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_streams_carry_megabytes_byte_exactly_and_are_counted() {
    const LEN: usize = 2 << 20;
    let f = Fixture::start().await;
    let pool = f.pool_of_two().await;
    let mut streams = Vec::new();
    for _ in 0..4 {
        let st = within("open", pool.open_stream("127.0.0.1", f.echo.port())).await;
        streams.push(st.unwrap());
    }
    let transfers = streams.into_iter().enumerate().map(|(i, st)| {
        tokio::spawn(async move {
            let data = payload(LEN, i as u64 + 10);
            let back = echo_through(st, &data).await;
            let (got, want) = (back.len(), data.len());
            assert!(back == data, "stream {i}: {got} bytes back of {want}");
        })
    });
    for t in within("transfers", futures_util::future::join_all(transfers)).await {
        t.unwrap();
    }
    let s = wait_status(&pool, "streams closed", |s| s.open_streams == 0).await;
    assert_eq!(s.bytes_out, 4 * LEN as u64);
    assert_eq!(s.bytes_in, 4 * LEN as u64);
    for c in &s.connections {
        assert_eq!(c.bytes_in, 2 * LEN as u64, "{c:?}");
    }
    within("shutdown", pool.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bastion_refusal_keeps_its_socks_reply_code() {
    let f = Fixture::start().await;
    let pool = f.pool_of_two().await;
    let (_reserved, closed) = refusing_port();
    let e = within("refused", pool.open_stream("127.0.0.1", closed))
        .await
        .unwrap_err();
    assert!(matches!(e, UpstreamError::Rejected { .. }), "{e}");
    assert_eq!(e.socks_reply(), 5, "connection refused: {e}");
    within("shutdown", pool.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_killed_on_the_service_side_is_rebuilt_while_streams_keep_opening() {
    let f = Fixture::start().await;
    let pool = f.pool_of_two().await;
    let killed = pool.snapshot().connections[0].session_id.clone().unwrap();
    f.sim.registry().terminate_session(&killed);
    // Streams opened while the pool is still noticing go to (or are retried on) the live one.
    for i in 0..4 {
        f.echo_once(&pool, 16 * 1024, 100 + i).await;
    }
    let s = wait_status(&pool, "slot 0 rebuilt", |s| {
        let c = &s.connections[0];
        c.connects == 2 && c.phase == "up" && c.session_id.as_deref() != Some(killed.as_str())
    })
    .await;
    assert!(s.connections[0].last_error.is_some(), "{s:#?}");
    for i in 0..4 {
        f.echo_once(&pool, 64 * 1024, i).await;
    }
    within("shutdown", pool.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_terminates_every_session_and_refuses_new_streams() {
    let f = Fixture::start().await;
    let pool = f.pool_of_two().await;
    f.echo_once(&pool, 1024, 1).await;
    within("shutdown", pool.shutdown()).await;
    assert_eq!(pool.snapshot().state, PoolState::Stopped);
    let e = pool
        .open_stream("127.0.0.1", f.echo.port())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            UpstreamError::ShutDown { .. } | UpstreamError::NotReady { .. }
        ),
        "{e}"
    );
    wait_open_sessions(&f.sim, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_pool_opens_no_session_before_first_use() {
    let f = Fixture::start().await;
    let lazy = f.pool("lazy", &[ID_A], 1, true);
    // Give an eager start every chance to show up; a lazy pool must stay idle.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(lazy.snapshot().state, PoolState::Idle);
    assert_eq!(f.sim.open_sessions(), 0, "connected before use");
    f.echo_once(&lazy, 4, 7).await;
    assert_eq!(f.sim.open_sessions(), 1);
    within("lazy shutdown", lazy.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_pool_fails_over_from_an_offline_instance_and_reports_the_failed_attempt() {
    let f = Fixture::start().await;
    let lazy = f.pool("lazy", &[ID_OFF, ID_A], 1, true);
    let st = within("lazy open", lazy.open_stream("127.0.0.1", f.echo.port()))
        .await
        .unwrap();
    assert_eq!(st.instance(), Some(ID_A));
    assert_eq!(echo_through(st, b"lazy").await, b"lazy");
    let s = lazy.snapshot();
    let err = s.connections[0].last_error.clone().unwrap_or_default();
    assert!(
        err.contains(ID_OFF),
        "the failed first attempt is reported: {s:#?}"
    );
    within("lazy shutdown", lazy.shutdown()).await;
    wait_open_sessions(&f.sim, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_whose_only_instance_is_offline_says_so_quickly_naming_it() {
    let f = Fixture::start().await;
    let dead = f.pool("dead", &[ID_OFF], 1, true);
    let started = tokio::time::Instant::now();
    let e = within("dead open", dead.open_stream("127.0.0.1", f.echo.port()))
        .await
        .unwrap_err();
    assert!(matches!(e, UpstreamError::NotReady { .. }), "{e}");
    assert!(e.to_string().contains(ID_OFF), "{e}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
    dead.shutdown().await;
    wait_open_sessions(&f.sim, 0).await;
}

async fn wait_open_sessions(sim: &Sim, want: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while sim.open_sessions() != want {
        if tokio::time::Instant::now() > deadline {
            panic!(
                "{} sessions still open, expected {want}",
                sim.open_sessions()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A key sshd refuses, or one we cannot use, is no reason to log in again and again (a
/// fail2ban ban on a real bastion): each connection tries once, then the pool gives up at
/// once with the SSH authentication error and its exit code (77).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_or_unusable_keys_cost_one_login_per_connection_then_the_pool_gives_up() {
    use session_proxy::exit::{code_for, codes};
    let f = Fixture::start().await;
    let stranger = f.sshd.dir.path().join("stranger_key");
    common::sshd::keygen(&stranger, "");
    let locked = f.sshd.dir.path().join("locked_key");
    common::sshd::keygen(&locked, "a passphrase");
    for (key, says) in [
        (&stranger, "not accepted"),
        (&locked, "passphrase-protected"),
    ] {
        let before = f.sim.registry().session_ids().len();
        let mut cfg = config(&f.sshd, "keys", &[ID_A], 2, false);
        cfg.ssh_mut().unwrap().identity_files = vec![key.clone()];
        let pool = Pool::new(cfg, options(&f.sim, &f.sshd)).unwrap();
        pool.start();
        let e = within("gave up", pool.wait_ready(Duration::from_secs(30)))
            .await
            .unwrap_err();
        assert!(matches!(e, UpstreamError::GaveUp { .. }), "{e}");
        assert!(e.to_string().contains(says), "{e}");
        assert_eq!(code_for(&anyhow::Error::from(e)), codes::NO_PERM);
        let s = pool.snapshot();
        assert!(s.connections.iter().all(|c| c.phase == "failed"), "{s:#?}");
        assert_eq!(
            f.sim.registry().session_ids().len() - before,
            2,
            "one StartSession per connection"
        );
        pool.shutdown().await;
    }
    wait_open_sessions(&f.sim, 0).await;
}
