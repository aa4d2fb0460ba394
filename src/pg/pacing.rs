//! Paced reads of a big COPY from a server on the same machine, while the CPUs are saturated.
//!
//! Postgres writes a COPY's rows to its socket 8 kB at a time. When the client drains the
//! socket as fast as the bytes come, every such write leaves as its own TCP segment, and over
//! loopback the server's backend also runs the receiving side's TCP processing and the client's
//! acknowledgements: on 10M rentals that was 115,000 to 135,000 segments, 36,000 to 44,000 of
//! them pure ACKs from the client. A client that lets the bytes wait a little lets the window
//! fill; Postgres' writes then queue and leave in 64 kB segments (DuckDB's postgres extension,
//! whose reading threads also decode and store, gets this by being slower: 56,000 to 59,000
//! segments, its backends 0.4 CPU-s cheaper than ours on the same rows).
//!
//! So when a connection has drained its socket it waits [`PAUSE`] before reading again, but
//! only where that cannot cost time: the server is on this machine (loopback), and the
//! machine's CPUs were saturated over the last sample (less than [`IDLE_BELOW`] of them idle,
//! from `/proc/stat`). A stalled backend then gives its core to DuckDB's work. With idle CPUs a
//! stall would only slow the server down, so reads stay eager. On 10M rentals over 2 cores
//! (2026-12-07): 115,000–135,000 segments → 74,000–84,000 in every run; the statement 5.86 →
//! 5.29 s over 6 interleaved pairs (medians), 2.7% over 10 more with the order alternated
//! (median of the paired ratios, 7 of 10 faster). On payment (10 pairs) it came out level.
//! Where `/proc/stat` is missing (not Linux) reads stay eager.
//!
//! `SET pagila_read_pacing = false` (DuckDB ≥ 1.5.6; `PAGILA_READ_PACING=false` in the
//! environment on every host) turns it off.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a connection that drained its socket waits before its next read.
pub const PAUSE: Duration = Duration::from_millis(4);
/// The CPUs count as saturated when less than this share of their time was idle.
const IDLE_BELOW: f64 = 0.05;
/// How often the CPU counters are read (they are shared by all connections).
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Whether pacing is on: the setting, else the environment, else on.
pub fn enabled(setting: Option<String>) -> bool {
    crate::settings::switch(setting, "PAGILA_READ_PACING")
}

/// The last reading of the CPU counters.
struct Sample {
    at: Instant,
    /// Idle and total time of all CPUs, in clock ticks.
    idle: u64,
    total: u64,
    saturated: bool,
}

static LAST: Mutex<Option<Sample>> = Mutex::new(None);

/// Whether the machine's CPUs were saturated between the last two readings (at most
/// [`SAMPLE_EVERY`] old). False where `/proc/stat` cannot be read.
pub fn cpus_saturated() -> bool {
    let Ok(mut last) = LAST.lock() else { return false };
    let now = Instant::now();
    if let Some(s) = last.as_ref() {
        if now.duration_since(s.at) < SAMPLE_EVERY {
            return s.saturated;
        }
    }
    let Some((idle, total)) = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| t.lines().next().and_then(idle_and_total))
    else {
        return false;
    };
    let saturated = last.as_ref().is_some_and(|s| saturated(s.idle, s.total, idle, total));
    *last = Some(Sample {
        at: now,
        idle,
        total,
        saturated,
    });
    saturated
}

/// Idle (idle + iowait) and total ticks from `/proc/stat`'s first line
/// (`cpu  user nice system idle iowait irq softirq steal ...`).
fn idle_and_total(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = fields.take(8).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    if v.len() < 5 {
        return None;
    }
    Some((v[3] + v[4], v.iter().sum()))
}

fn saturated(idle0: u64, total0: u64, idle1: u64, total1: u64) -> bool {
    let total = total1.saturating_sub(total0);
    total > 0 && (idle1.saturating_sub(idle0) as f64) < IDLE_BELOW * total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_stat_and_tells_saturation() {
        let line = "cpu  4705 356 584 3699 23 0 11 7 0 0";
        assert_eq!(
            idle_and_total(line),
            Some((3722, 4705 + 356 + 584 + 3699 + 23 + 11 + 7))
        );
        assert_eq!(idle_and_total("cpu0 1 2 3 4 5"), None);
        assert_eq!(idle_and_total("cpu  1 2"), None);
        // 200 ticks, 4 idle: saturated; 40 idle: not; no time passed: not.
        assert!(saturated(100, 1000, 104, 1200));
        assert!(!saturated(100, 1000, 140, 1200));
        assert!(!saturated(100, 1000, 100, 1000));
    }
}
