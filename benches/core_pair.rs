//! Throughput of the protocol core alone: a client and an agent `Channel` joined in memory on
//! one thread (no sockets, no faults). Prints a table; run with `cargo bench --bench core_pair`.

use std::time::{Duration, Instant};

use session_proxy::ssm::channel::{Channel, Config, Event, Role};

fn run(total: usize, chunk: usize) -> (Duration, u64) {
    let t0 = Instant::now();
    let now = t0;
    let mut c = Config::new(Role::Client);
    c.chunk_size = chunk;
    let mut a = Config::new(Role::Agent);
    a.chunk_size = chunk;
    let mut client = Channel::new(c, now);
    let mut agent = Channel::new(a, now);
    let data = vec![0x5au8; 256 * 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let (mut sent, mut got, mut frames) = (0usize, 0usize, 0u64);
    while got < total {
        if agent.is_ready() && sent < total {
            let n = agent.write(now, &data[..(total - sent).min(data.len())]);
            sent += n;
        }
        while let Some(f) = agent.poll_transmit() {
            frames += 1;
            let _ = client.handle_frame(now, &f);
        }
        while let Some(f) = client.poll_transmit() {
            frames += 1;
            let _ = agent.handle_frame(now, &f);
        }
        loop {
            let n = client.read(&mut buf);
            if n == 0 {
                break;
            }
            got += n;
        }
        while let Some(e) = client.poll_event() {
            if let Event::HandshakeFailed(r) = e {
                panic!("{r}");
            }
        }
        while agent.poll_event().is_some() {}
    }
    (t0.elapsed(), frames)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and there one small pass per chunk size is enough to show the pair still works.
    let measuring = std::env::args().any(|a| a == "--bench");
    let (total, runs) = if measuring {
        (200 * 1024 * 1024, 5)
    } else {
        (2 * 1024 * 1024, 1)
    };
    println!("| chunk | MB moved | best MB/s | median MB/s | frames/s (median) |");
    println!("|---:|---:|---:|---:|---:|");
    for chunk in [1024usize, 4096, 16384] {
        let mut rates = Vec::new();
        let mut fps = Vec::new();
        for _ in 0..runs {
            let (d, frames) = run(total, chunk);
            rates.push(total as f64 / d.as_secs_f64() / 1e6);
            fps.push(frames as f64 / d.as_secs_f64());
        }
        rates.sort_by(|a, b| a.total_cmp(b));
        fps.sort_by(|a, b| a.total_cmp(b));
        println!(
            "| {chunk} | {} | {:.0} | {:.0} | {:.0} |",
            total / (1024 * 1024),
            rates[runs - 1],
            rates[runs / 2],
            fps[runs / 2]
        );
    }
}
