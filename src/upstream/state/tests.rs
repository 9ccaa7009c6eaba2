use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn backoff_doubles_from_half_a_second_to_thirty_seconds_with_jitter_in_the_upper_half() {
    let p = BackoffPolicy::default();
    // (failures, unit, expected)
    let cases = [
        (1, 0.0, ms(250)),
        (1, 0.999_999, ms(500)),
        (2, 0.0, ms(500)),
        (2, 0.5, ms(750)),
        (3, 0.0, ms(1000)),
        (4, 1.0, ms(4000)),
        (6, 0.0, ms(8_000)),
        (7, 0.0, ms(15_000)), // 32 s capped at 30 s
        (8, 0.0, ms(15_000)),
        (8, 1.0, ms(30_000)),
        (1000, 1.0, ms(30_000)),
        (0, 0.0, ms(250)),
    ];
    for (failures, unit, want) in cases {
        let got = p.delay(failures, unit);
        assert!(
            got.abs_diff(want) <= ms(1),
            "failures={failures} unit={unit}: {got:?} != {want:?}"
        );
    }
}

#[test]
fn backoff_tolerates_bad_randomness() {
    let p = BackoffPolicy::default();
    assert_eq!(p.delay(1, f64::NAN), ms(250));
    assert_eq!(p.delay(1, -3.0), ms(250));
    assert_eq!(p.delay(1, 7.0), ms(500));
}

#[test]
fn slots_start_round_robin_over_targets_and_fail_over_to_the_next() {
    let starts: Vec<usize> = (0..5).map(|i| Slot::new(i, 3).target).collect();
    assert_eq!(starts, [0, 1, 2, 0, 1]);
    let p = BackoffPolicy::default();
    let now = Instant::now();
    let mut s = Slot::new(2, 3);
    s.on_connecting();
    s.on_connect_failed(now, "boom".into(), &p, 0.0);
    assert_eq!(s.target, 0);
    assert_eq!(s.last_error.as_deref(), Some("boom"));
    s.on_connect_failed(now, "boom".into(), &p, 0.0);
    assert_eq!(s.target, 1);
    // A single target fails over to itself.
    let mut one = Slot::new(3, 1);
    one.on_connect_failed(now, "x".into(), &p, 0.0);
    assert_eq!(one.target, 0);
}

#[test]
fn consecutive_failures_grow_the_delay_and_a_stable_connection_resets_it() {
    let p = BackoffPolicy::default();
    let t0 = Instant::now();
    let mut s = Slot::new(0, 1);
    let d: Vec<Duration> = (0..4)
        .map(|_| s.on_connect_failed(t0, "e".into(), &p, 0.0))
        .collect();
    assert_eq!(d, [ms(250), ms(500), ms(1000), ms(2000)]);
    assert_eq!(
        s.phase,
        Phase::Waiting {
            until: t0 + ms(2000)
        }
    );
    // Up briefly, then lost: still backing off.
    s.on_up(t0);
    assert!(s.is_up());
    assert_eq!(s.on_lost(t0 + ms(100), "lost".into(), &p, 0.0), ms(4000));
    // Up for longer than `stable_after`, then lost: back to the first step.
    s.on_up(t0);
    assert_eq!(
        s.on_lost(t0 + p.stable_after, "lost".into(), &p, 0.0),
        ms(250)
    );
    assert_eq!(s.connects, 2);
}

fn slot(phase: Phase, failures: u32) -> Slot {
    Slot {
        phase,
        failures,
        ..Slot::new(0, 1)
    }
}

#[test]
fn pool_state_summarises_slots() {
    let w = Phase::Waiting {
        until: Instant::now(),
    };
    let cases = [
        (vec![], PoolState::Stopped),
        (
            vec![slot(Phase::Idle, 0), slot(Phase::Idle, 0)],
            PoolState::Idle,
        ),
        (
            vec![slot(Phase::Connecting, 0), slot(Phase::Idle, 0)],
            PoolState::Connecting,
        ),
        (vec![slot(Phase::Up, 0), slot(Phase::Up, 0)], PoolState::Up),
        (vec![slot(Phase::Up, 0), slot(w, 1)], PoolState::Degraded),
        (
            vec![slot(Phase::Connecting, 2), slot(w, 1)],
            PoolState::Down,
        ),
        (
            vec![slot(Phase::Stopped, 0), slot(Phase::Stopped, 3)],
            PoolState::Stopped,
        ),
    ];
    for (slots, want) in cases {
        assert_eq!(pool_state(&slots), want, "{slots:?}");
    }
}

#[test]
fn pool_state_labels_are_its_json_names() {
    use PoolState::*;
    for st in [Idle, Connecting, Up, Degraded, Down, Stopped] {
        let json = serde_json::to_value(st).unwrap();
        assert_eq!(json, st.label(), "{st:?}");
        assert_eq!(serde_json::from_value::<PoolState>(json).unwrap(), st);
    }
}

#[test]
fn up_since_and_reconnects_follow_the_slot_life() {
    let p = BackoffPolicy::default();
    let t0 = Instant::now();
    let mut s = Slot::new(0, 1);
    assert_eq!((s.up_since(), s.reconnects()), (None, 0));
    s.on_up(t0);
    assert_eq!((s.up_since(), s.reconnects()), (Some(t0), 0));
    s.on_lost(t0 + ms(10), "lost".into(), &p, 0.0);
    assert_eq!(s.up_since(), None);
    s.on_up(t0 + ms(20));
    assert_eq!((s.up_since(), s.reconnects()), (Some(t0 + ms(20)), 1));
}

#[test]
fn last_error_is_the_most_recent_failure_of_any_slot() {
    let p = BackoffPolicy::default();
    let t0 = Instant::now();
    let mut a = Slot::new(0, 2);
    let mut b = Slot::new(1, 2);
    assert_eq!(last_error(&[a.clone(), b.clone()]), None);
    b.on_connect_failed(t0 + ms(5), "newer".into(), &p, 0.0);
    a.on_connect_failed(t0, "older".into(), &p, 0.0);
    assert_eq!(last_error(&[a.clone(), b.clone()]), Some("newer"));
    assert_eq!(last_failure(&[a, b]), Some((t0 + ms(5), "newer")));
}

#[test]
fn only_repeated_failures_of_every_slot_count_as_persistent() {
    let cases = [
        (vec![], false),
        (
            vec![slot(Phase::Connecting, 2), slot(Phase::Connecting, 3)],
            true,
        ),
        (
            vec![slot(Phase::Connecting, 2), slot(Phase::Connecting, 1)],
            false,
        ),
        (vec![slot(Phase::Up, 2), slot(Phase::Connecting, 3)], false),
        (vec![slot(Phase::Idle, 0)], false),
    ];
    for (slots, want) in cases {
        assert_eq!(failing_persistently(&slots), want, "{slots:?}");
    }
}

#[test]
fn a_permanent_error_tries_each_target_once_then_gives_up() {
    let p = BackoffPolicy::default();
    let t0 = Instant::now();
    let mut s = Slot::new(0, 2);
    assert_eq!(
        s.on_permanent_failure(t0, "no".into(), &p, 0.0),
        Some(ms(250))
    );
    assert_eq!(s.target, 1);
    assert_eq!(s.on_permanent_failure(t0, "no".into(), &p, 0.0), None);
    assert_eq!(s.phase, Phase::Failed);
    assert_eq!(s.phase.label(), "failed");
    assert_eq!(s.last_error.as_deref(), Some("no"));
    assert!(gave_up(&[s.clone()]));
    // A transient failure in between restarts the count: target 0 may have been down.
    let mut t = Slot::new(0, 2);
    t.on_permanent_failure(t0, "no".into(), &p, 0.0);
    t.on_connect_failed(t0, "net".into(), &p, 0.0);
    assert!(t.on_permanent_failure(t0, "no".into(), &p, 0.0).is_some());
    // One target: the first permanent error is the last.
    let mut one = Slot::new(0, 1);
    assert_eq!(one.on_permanent_failure(t0, "no".into(), &p, 0.0), None);
    assert!(!gave_up(&[one, Slot::new(1, 1)]));
    assert!(!gave_up(&[]));
}

fn c(healthy: bool, open_streams: usize) -> ConnView {
    ConnView {
        healthy,
        open_streams,
    }
}

#[test]
fn pick_chooses_the_least_loaded_healthy_connection() {
    let cases: [(&[ConnView], Option<usize>); 6] = [
        (&[], None),
        (&[c(false, 0), c(false, 0)], None),
        (&[c(true, 3), c(true, 1), c(true, 2)], Some(1)),
        (&[c(false, 0), c(true, 5)], Some(1)),
        (&[c(true, 2), c(true, 2)], Some(0)),
        (&[c(true, 1), c(false, 0), c(true, 1)], Some(0)),
    ];
    for (conns, want) in cases {
        assert_eq!(pick(conns), want, "{conns:?}");
    }
}

#[test]
fn pick_from_breaks_ties_round_robin_from_the_cursor() {
    let conns = [c(true, 0), c(false, 0), c(true, 0)];
    assert_eq!(pick_from(&conns, 0), Some(0));
    assert_eq!(pick_from(&conns, 1), Some(2));
    assert_eq!(pick_from(&conns, 2), Some(2));
    assert_eq!(pick_from(&conns, 3), Some(0));
    // Load still wins over the cursor.
    assert_eq!(pick_from(&[c(true, 0), c(true, 1)], 1), Some(0));
}

#[test]
fn a_slot_whose_credentials_expired_retries_slowly_on_the_same_target_and_says_so() {
    let now = Instant::now();
    let mut s = Slot::new(0, 2);
    s.on_up(now);
    let delay =
        s.on_credentials_expired(now, "run `aws sso login`".into(), Duration::from_secs(30));
    assert_eq!(delay, Duration::from_secs(30));
    assert_eq!(
        s.target, 0,
        "credentials are the same for every target: no failover"
    );
    assert_eq!(s.phase.label(), "credentials expired");
    assert!(s.awaits_credentials() && !s.is_up());
    assert_eq!(s.last_error.as_deref(), Some("run `aws sso login`"));
    let slots = [s.clone()];
    assert_eq!(pool_state(&slots), PoolState::CredentialsExpired);
    assert!(awaiting_credentials(&slots));
    assert!(!gave_up(&slots), "unlike Failed, the slot keeps retrying");
    s.on_connecting();
    s.on_up(now);
    assert_eq!(
        pool_state(&[s]),
        PoolState::Up,
        "comes back once credentials work"
    );
}

#[test]
fn a_pool_with_one_slot_up_is_degraded_not_credentials_expired() {
    let now = Instant::now();
    let mut a = Slot::new(0, 1);
    a.on_up(now);
    let mut b = Slot::new(1, 1);
    b.on_credentials_expired(now, "e".into(), Duration::from_secs(30));
    assert_eq!(pool_state(&[a.clone(), b.clone()]), PoolState::Degraded);
    assert!(!awaiting_credentials(&[a, b]));
}

#[test]
fn credentials_expired_is_its_own_status_word_and_json_form() {
    assert_eq!(PoolState::CredentialsExpired.label(), "credentials expired");
    let json = serde_json::to_string(&PoolState::CredentialsExpired).unwrap();
    assert_eq!(json, "\"credentials-expired\"");
}

#[test]
fn credentials_retry_is_30s_unless_the_environment_names_positive_seconds() {
    assert_eq!(credentials_retry(None), Duration::from_secs(30));
    assert_eq!(credentials_retry(Some(" 2 ")), Duration::from_secs(2));
    assert_eq!(credentials_retry(Some("0")), Duration::from_secs(30));
    assert_eq!(credentials_retry(Some("soon")), Duration::from_secs(30));
}
