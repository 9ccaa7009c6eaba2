//! End to end: an upstream `Pool` through the in-process SSM simulator to a real loopback sshd.
//! Streams are spread over the pool's connections and instances and carry megabytes byte
//! exactly; a session killed on the service side is rebuilt; refusals keep their SOCKS code;
//! a lazy pool fails over from an offline instance; shutdown terminates every session.
//!
//! The AWS SDK reads its endpoint from the environment, which is process-wide, so each test
//! binary runs one simulator and one test function.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sshd_harness;

use std::future::Future;
use std::num::NonZeroUsize;
use std::time::Duration;

use session_proxy::config::{HostKeyPolicy, InlineCredentials, Upstream};
use session_proxy::redact::Redacted;
use session_proxy::sim::instances::Instance;
use session_proxy::sim::{Sim, SimOptions};
use session_proxy::upstream::state::BackoffPolicy;
use session_proxy::upstream::{Pool, PoolOptions, PoolState, PoolStatus, UpstreamError};
use sshd_harness::{echo_server, echo_through, payload, Sshd};

const ID_A: &str = "i-0aaaaaaaaaaaaaaa1";
const ID_B: &str = "i-0bbbbbbbbbbbbbbb2";
const ID_OFF: &str = "i-0ccccccccccccccc3";

fn point_aws_at(sim: &Sim) {
    // One simulator per process (see the file comment), set before any SDK client exists.
    std::env::set_var("AWS_ENDPOINT_URL", sim.endpoint_url());
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_CONFIG_FILE", "/dev/null");
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    std::env::remove_var("AWS_PROFILE");
}

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
        user: sshd.user.clone(),
        identity_files: vec![sshd.client_key.clone()],
        ssh_agent: false,
        port: 22,
        pool_size: NonZeroUsize::new(pool_size).unwrap(),
        host_key_policy: HostKeyPolicy::AcceptNew,
        lazy,
        keepalive: Some(Duration::from_secs(15)),
    }
}

fn options(sshd: &Sshd) -> PoolOptions {
    PoolOptions {
        backoff: BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            stable_after: Duration::from_secs(30),
        },
        connect_timeout: Duration::from_secs(30),
        open_wait: Duration::from_secs(30),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pool_spreads_streams_rebuilds_killed_sessions_fails_over_and_terminates_on_shutdown() {
    // Shown only when the test fails; RUST_LOG=debug for more.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "session_proxy=info".into()),
        )
        .with_test_writer()
        .try_init();
    let sshd = Sshd::start("").await;
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
    point_aws_at(&sim);

    // --- A pool of two over two instances (one given by its Name tag). ---
    let pool = Pool::new(
        config(&sshd, "main", &[ID_A, "bastion-b"], 2, false),
        options(&sshd),
    );
    pool.start();
    within("ready", pool.wait_ready(Duration::from_secs(30)))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    let s = wait_status(&pool, "both connections up", |s| s.connections_up == 2).await;
    assert_eq!(s.state, PoolState::Up);
    assert_eq!(s.instances, [ID_A, ID_B], "one connection per instance");

    // Four streams: least-loaded placement puts two on each connection.
    let mut streams = Vec::new();
    for _ in 0..4 {
        streams.push(
            within("open", pool.open_stream("127.0.0.1", echo.port()))
                .await
                .unwrap(),
        );
    }
    let s = pool.snapshot();
    assert_eq!(s.open_streams, 4);
    let per_conn: Vec<usize> = s.connections.iter().map(|c| c.open_streams).collect();
    assert_eq!(per_conn, [2, 2], "{s:#?}");
    let mut used: Vec<&str> = streams.iter().map(|st| st.instance()).collect();
    used.sort();
    used.dedup();
    assert_eq!(used, [ID_A, ID_B]);

    // 4 x 2 MiB in parallel, byte exact.
    const LEN: usize = 2 << 20;
    let transfers = streams.into_iter().enumerate().map(|(i, st)| {
        tokio::spawn(async move {
            let data = payload(LEN, i as u64 + 10);
            let back = echo_through(st, &data).await;
            assert!(
                back == data,
                "stream {i}: {} bytes back of {}",
                back.len(),
                data.len()
            );
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

    // The bastion's refusal keeps its meaning.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = within("refused", pool.open_stream("127.0.0.1", closed))
        .await
        .unwrap_err();
    assert!(matches!(e, UpstreamError::Rejected { .. }), "{e}");
    assert_eq!(e.socks_reply(), 5, "{e}");

    // --- Kill one connection's session on the service side: the slot rebuilds. ---
    let killed = s.connections[0].session_id.clone().unwrap();
    sim.registry().terminate_session(&killed);
    // Streams opened while the pool is still noticing go to (or are retried on) the live one.
    for i in 0..4 {
        let st = within(
            "open during loss",
            pool.open_stream("127.0.0.1", echo.port()),
        )
        .await
        .unwrap_or_else(|e| panic!("open {i} while one connection dies: {e}"));
        let data = payload(16 * 1024, 100 + i);
        assert!(echo_through(st, &data).await == data);
    }
    let s = wait_status(&pool, "slot 0 rebuilt", |s| {
        let c = &s.connections[0];
        c.connects == 2 && c.phase == "up" && c.session_id.as_deref() != Some(killed.as_str())
    })
    .await;
    assert!(s.connections[0].last_error.is_some(), "{s:#?}");
    for i in 0..4 {
        let st = within(
            "open after rebuild",
            pool.open_stream("127.0.0.1", echo.port()),
        )
        .await
        .unwrap();
        let data = payload(64 * 1024, i);
        assert!(echo_through(st, &data).await == data);
    }

    // --- Shutdown terminates every session. ---
    within("shutdown", pool.shutdown()).await;
    assert_eq!(pool.snapshot().state, PoolState::Stopped);
    let e = pool
        .open_stream("127.0.0.1", echo.port())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            UpstreamError::ShutDown { .. } | UpstreamError::NotReady { .. }
        ),
        "{e}"
    );
    wait_open_sessions(&sim, 0).await;

    // --- A lazy pool connects on first use and fails over from an offline instance. ---
    let lazy = Pool::new(
        config(&sshd, "lazy", &[ID_OFF, ID_A], 1, true),
        options(&sshd),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(lazy.snapshot().state, PoolState::Idle);
    assert_eq!(
        sim.open_sessions(),
        0,
        "a lazy pool must not connect before use"
    );
    let st = within("lazy open", lazy.open_stream("127.0.0.1", echo.port()))
        .await
        .unwrap();
    assert_eq!(st.instance(), ID_A);
    assert_eq!(echo_through(st, b"lazy").await, b"lazy");
    let s = lazy.snapshot();
    let err = s.connections[0].last_error.clone().unwrap_or_default();
    assert!(
        err.contains(ID_OFF),
        "the failed first attempt is reported: {s:#?}"
    );
    within("lazy shutdown", lazy.shutdown()).await;

    // --- A pool whose only instance is offline says so quickly instead of hanging. ---
    let dead = Pool::new(config(&sshd, "dead", &[ID_OFF], 1, true), options(&sshd));
    let started = tokio::time::Instant::now();
    let e = within("dead open", dead.open_stream("127.0.0.1", echo.port()))
        .await
        .unwrap_err();
    assert!(matches!(e, UpstreamError::NotReady { .. }), "{e}");
    assert!(e.to_string().contains(ID_OFF), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    dead.shutdown().await;
    wait_open_sessions(&sim, 0).await;
    sim.shutdown().await;
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
