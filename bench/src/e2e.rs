//! What end-to-end encryption costs the Rust client: sealing and opening a message of
//! `--bytes` of data (the JSON text), timed over `--iterations` in `--batches`, with the CPU time
//! of the thread that ran them. The JavaScript client's figures come from `bench/e2e.mjs`.

use std::time::Instant;

use clap::Args;
use echo_client::e2e::{Key, decrypt};
use serde_json::json;

#[derive(Args)]
pub struct E2eArgs {
    /// Bytes of data per message (its JSON text).
    #[arg(long, default_value_t = 1024)]
    bytes: usize,
    #[arg(long, default_value_t = 20_000)]
    iterations: usize,
    #[arg(long, default_value_t = 5)]
    batches: usize,
}

pub fn run(args: &E2eArgs) -> crate::Result {
    let key = Key::from_bytes([7; 32]);
    // {"text":"xxx…"}: 11 bytes around the text.
    let data = json!({"text": "x".repeat(args.bytes.saturating_sub(11))});
    let len = data.to_string().len();
    let mut per_message = Vec::with_capacity(args.batches);
    for _ in 0..args.batches {
        let cpu_before = crate::stats::thread_cpu();
        let started = Instant::now();
        for _ in 0..args.iterations {
            let envelope = key.encrypt("room", &data);
            let opened = decrypt(std::slice::from_ref(&key), "room", &envelope)?;
            std::hint::black_box(opened);
        }
        let wall = started.elapsed();
        let cpu = crate::stats::thread_cpu()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before));
        let us = |d: std::time::Duration| d.as_secs_f64() * 1e6 / args.iterations as f64;
        println!(
            "seal + open of {len} bytes: {:.2} µs wall{}",
            us(wall),
            cpu.map(|c| format!(", {:.2} µs CPU", us(c)))
                .unwrap_or_default()
        );
        per_message.push(us(wall));
    }
    per_message.sort_by(f64::total_cmp);
    println!(
        "median of {} batches of {}: {:.2} µs per message sealed and opened (target: at most 50)",
        args.batches,
        args.iterations,
        per_message[per_message.len() / 2]
    );
    Ok(())
}
