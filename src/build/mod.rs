//! `CALL pagila_build_star()` and `CALL pagila_check()`.
//!
//! Nothing happens at bind (EXPLAIN and PREPARE run bind). Init starts the
//! build's thread, which begins at the first scan and reports each finished step
//! as a row of the CALL's result; if the query is interrupted, the build is
//! interrupted too and rolled back before the CALL returns.

pub mod models;
pub mod run;
pub mod runlog;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::extract::params;
use crate::ffi::chunk::OutputChunk;
use crate::ffi::table::{BindInput, Bound, TableFunction};
use crate::ffi::BoxError;
use crate::state::ExtensionState;
use crate::types::DuckType;
use models::Schemas;
use run::{BuildParams, CheckRow, Mode, OnCheckFailure, StepRow};

fn schemas_from(input: &BindInput) -> Result<Schemas, BoxError> {
    let mut s = Schemas::default();
    for (name, slot) in [
        ("bronze", &mut s.bronze),
        ("silver", &mut s.silver),
        ("gold", &mut s.gold),
        ("compat", &mut s.compat),
    ] {
        if let Some(v) = input.named_str(name) {
            if v.trim().is_empty() {
                return Err(format!("{name} must name a schema, not ''").into());
            }
            *slot = v;
        }
    }
    let all = [&s.bronze, &s.silver, &s.gold, &s.compat];
    for (i, a) in all.iter().enumerate() {
        if all[i + 1..].iter().any(|b| b.eq_ignore_ascii_case(a)) {
            return Err(
                format!("the bronze, silver, gold and compat schemas must differ ('{a}' is used twice)").into(),
            );
        }
    }
    Ok(s)
}

/// "10 minutes", "1 hour 30 minutes", "0 seconds": number-unit pairs that
/// Postgres and DuckDB read the same way.
fn is_interval(s: &str) -> bool {
    const UNITS: &[&str] = &[
        "microsecond",
        "millisecond",
        "second",
        "minute",
        "hour",
        "day",
        "week",
        "month",
        "year",
    ];
    let words: Vec<&str> = s.split_whitespace().collect();
    !words.is_empty()
        && words.len().is_multiple_of(2)
        && words.chunks(2).all(|p| {
            let unit = p[1].to_ascii_lowercase();
            p[0].parse::<u32>().is_ok() && UNITS.iter().any(|u| unit == *u || unit == format!("{u}s"))
        })
}

fn schema_parameters() -> Vec<(&'static str, DuckType)> {
    let mut v = params::connection_parameters();
    v.extend([
        ("bronze", DuckType::Varchar),
        ("silver", DuckType::Varchar),
        ("gold", DuckType::Varchar),
        ("compat", DuckType::Varchar),
    ]);
    v
}

pub struct BuildFunction;

pub struct BuildGlobal {
    rx: Mutex<Receiver<StepRow>>,
    /// Starts the build: sent by the first scan (see [`HAND_OVER_PAUSE`]).
    go: Mutex<Option<Sender<()>>>,
    thread: Mutex<Option<JoinHandle<Result<(), String>>>>,
    cancel: Arc<AtomicBool>,
    state: Arc<ExtensionState>,
}

impl Drop for BuildGlobal {
    /// The CALL ended: normally (the thread is done), by an error, or by an
    /// interrupt. In the last case stop the build and wait for its rollback.
    fn drop(&mut self) {
        // A build that never started ends at once.
        drop(self.go.lock().ok().and_then(|mut g| g.take()));
        let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) else {
            return;
        };
        if !t.is_finished() {
            self.cancel.store(true, Ordering::SeqCst);
            self.state.inner.interrupt_work();
        }
        let _ = t.join();
    }
}

pub struct BuildBind {
    /// The client thread: DuckDB binds there, and usually runs the scan there too.
    client: std::thread::ThreadId,
    params: BuildParams,
    state: Arc<ExtensionState>,
}

impl TableFunction for BuildFunction {
    type Bind = BuildBind;
    type Global = BuildGlobal;
    type Local = ();
    const NAME: &'static str = "pagila_build_star";
    const DEFER_BIND_ERRORS: bool = true;

    fn named_parameters() -> Vec<(&'static str, DuckType)> {
        let mut v = schema_parameters();
        v.extend([
            ("mode", DuckType::Varchar),
            ("lookback", DuckType::Varchar),
            ("detect_deletes", DuckType::Boolean),
            ("on_check_failure", DuckType::Varchar),
            ("threads", DuckType::BigInt),
        ]);
        v
    }

    fn bind(state: &Arc<ExtensionState>, input: &BindInput) -> Result<Bound<BuildBind>, BoxError> {
        let f = Self::NAME;
        let mode_name = input
            .named_str("mode")
            .unwrap_or_else(|| "full".into())
            .to_ascii_lowercase();
        let lookback = input.named_str("lookback").unwrap_or_else(|| "10 minutes".into());
        // The interval goes into Postgres and DuckDB SQL: only "<number> <unit>" pairs.
        if !is_interval(&lookback) {
            return Err(format!(
                "{f}: lookback must be an interval such as '10 minutes' or '1 hour 30 minutes', not '{lookback}'"
            )
            .into());
        }
        let detect_deletes = input.named_bool("detect_deletes").unwrap_or(false);
        let mode = match mode_name.as_str() {
            "full" => Mode::Full,
            "incremental" => Mode::Incremental {
                lookback,
                detect_deletes,
            },
            other => return Err(format!("{f}: mode must be 'full' or 'incremental', not '{other}'").into()),
        };
        let on_check_failure = match input
            .named_str("on_check_failure")
            .as_deref()
            .map(str::to_ascii_lowercase)
        {
            None => OnCheckFailure::Error,
            Some(s) if s == "error" => OnCheckFailure::Error,
            Some(s) if s == "warn" => OnCheckFailure::Warn,
            Some(s) => return Err(format!("{f}: on_check_failure must be 'error' or 'warn', not '{s}'").into()),
        };
        let threads = match input.named_i64("threads") {
            Some(t) if t < 1 => return Err(format!("{f}: threads must be at least 1, not {t}").into()),
            t => t.map(|t| t as u64),
        };
        let cfg = params::resolve_config(input, state).map_err(|e| format!("{f}: {e}"))?;
        let schemas = schemas_from(input).map_err(|e| format!("{f}: {e}"))?;
        Ok(Bound {
            data: BuildBind {
                client: std::thread::current().id(),
                params: BuildParams {
                    cfg,
                    schemas,
                    on_check_failure,
                    threads,
                    mode,
                },
                state: state.clone(),
            },
            columns: vec![
                ("step".into(), DuckType::Varchar),
                ("rows".into(), DuckType::BigInt),
                ("seconds".into(), DuckType::Double),
                ("status".into(), DuckType::Varchar),
            ],
            cardinality: Some(models::MODELS.len() as u64 + models::SOURCE_TABLES.len() as u64 + 3),
        })
    }

    fn init(bind: &BuildBind, _projection: Vec<usize>) -> Result<(BuildGlobal, u64), BoxError> {
        let (tx, rx) = channel();
        let (go, wait_for_scan) = channel::<()>();
        let cancel = Arc::new(AtomicBool::new(false));
        let state = bind.state.clone();
        let params = bind.params.clone();
        let c = cancel.clone();
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("pagila_star-build".into())
            .spawn(move || {
                // Dropped unsent: the CALL ended before its scan started.
                if wait_for_scan.recv().is_err() {
                    return Ok(());
                }
                let r =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run::build(&st.inner, &params, &tx, &c)));
                r.unwrap_or_else(|p| {
                    Err(format!(
                        "internal error (panic): {}",
                        crate::ffi::panic_message(p.as_ref())
                    ))
                })
            })?;
        pause_for_hand_over(bind.client);
        Ok((
            BuildGlobal {
                rx: Mutex::new(rx),
                go: Mutex::new(Some(go)),
                thread: Mutex::new(Some(thread)),
                cancel,
                state,
            },
            1,
        ))
    }

    fn local(_: &BuildBind, _: &BuildGlobal) -> Result<(), BoxError> {
        Ok(())
    }

    fn scan(_: &BuildBind, g: &BuildGlobal, _: &mut (), out: &mut OutputChunk) -> Result<(), BoxError> {
        if let Some(go) = g.go.lock().map_err(|_| "pagila_build_star: poisoned")?.take() {
            let _ = go.send(());
        }
        let next = g.rx.lock().map_err(|_| "pagila_build_star: poisoned")?.recv();
        match next {
            Ok(row) => {
                out.vector(0).set_bytes(0, row.step.as_bytes());
                match row.rows {
                    Some(n) => out.vector(1).set::<i64>(0, n),
                    None => out.vector(1).set_null(0),
                }
                out.vector(2).set::<f64>(0, row.seconds);
                out.vector(3).set_bytes(0, row.status.as_bytes());
                out.set_len(1);
                Ok(())
            }
            Err(_) => {
                // The build thread ended: report its outcome.
                let t = g.thread.lock().ok().and_then(|mut t| t.take());
                out.set_len(0);
                match t.map(|t| t.join()) {
                    Some(Ok(Err(e))) => Err(format!("pagila_build_star: {e}").into()),
                    Some(Err(_)) => Err("pagila_build_star: the build thread died".into()),
                    _ => Ok(()),
                }
            }
        }
    }
}

/// How long init pauses on the client thread before DuckDB queues the scan.
///
/// DuckDB runs the CALL's single scan task on whichever thread takes it first:
/// the client thread, which then waits in the scan while DuckDB's workers help
/// the build's SQL, or a worker, which then waits there while the build's SQL
/// runs on the build thread alone (and DuckDB 1.4.4's client thread polls the
/// query on the other core). In the bench (DuckDB 1.4.4 from Python) 6 of 16
/// CALLs ran their scan on the worker although init ran on the client thread,
/// and an incremental run then took about 0.4 s longer. The worker, just woken
/// for the query's first task that the client thread took, is still awake when
/// the scan's task is queued. Pausing here lets it go back to sleep, and nothing
/// wakes it before the task is queued: the build itself starts only at the first
/// scan. With both, 16 of 16 scans ran on the client thread.
const HAND_OVER_PAUSE: Duration = Duration::from_millis(2);

/// Init's pause, on the client thread only (the thread that bound the function).
fn pause_for_hand_over(client: std::thread::ThreadId) {
    if std::thread::current().id() == client {
        std::thread::sleep(HAND_OVER_PAUSE);
    }
}

/// `CALL pagila_check()`: the build's checks, on demand, against Postgres now.
pub struct CheckFunction;

pub struct CheckBind {
    /// The client thread (see [`HAND_OVER_PAUSE`]).
    client: std::thread::ThreadId,
    cfg: crate::pg::PgConfig,
    schemas: Schemas,
    state: Arc<ExtensionState>,
}

pub struct CheckGlobal {
    rows: Mutex<Option<std::vec::IntoIter<CheckRow>>>,
}

impl TableFunction for CheckFunction {
    type Bind = CheckBind;
    type Global = CheckGlobal;
    type Local = ();
    const NAME: &'static str = "pagila_check";
    const DEFER_BIND_ERRORS: bool = true;

    fn named_parameters() -> Vec<(&'static str, DuckType)> {
        schema_parameters()
    }

    fn bind(state: &Arc<ExtensionState>, input: &BindInput) -> Result<Bound<CheckBind>, BoxError> {
        let f = Self::NAME;
        Ok(Bound {
            data: CheckBind {
                client: std::thread::current().id(),
                cfg: params::resolve_config(input, state).map_err(|e| format!("{f}: {e}"))?,
                schemas: schemas_from(input).map_err(|e| format!("{f}: {e}"))?,
                state: state.clone(),
            },
            columns: vec![
                ("check".into(), DuckType::Varchar),
                ("expected".into(), DuckType::Varchar),
                ("actual".into(), DuckType::Varchar),
                ("ok".into(), DuckType::Boolean),
            ],
            cardinality: None,
        })
    }

    fn init(bind: &CheckBind, _: Vec<usize>) -> Result<(CheckGlobal, u64), BoxError> {
        // The checks run in the scan: on the client thread, DuckDB's workers help them.
        pause_for_hand_over(bind.client);
        Ok((CheckGlobal { rows: Mutex::new(None) }, 1))
    }

    fn local(_: &CheckBind, _: &CheckGlobal) -> Result<(), BoxError> {
        Ok(())
    }

    fn scan(bind: &CheckBind, g: &CheckGlobal, _: &mut (), out: &mut OutputChunk) -> Result<(), BoxError> {
        let f = Self::NAME;
        let mut slot = g.rows.lock().map_err(|_| "pagila_check: poisoned")?;
        if slot.is_none() {
            let work = bind.state.inner.work()?;
            run::require_star(&work, &bind.schemas).map_err(|e| format!("{f}: {e}"))?;
            let mut pg = crate::pg::Connection::connect(&bind.cfg).map_err(|e| format!("{f}: {e}"))?;
            let figures = run::source_figures(&mut pg).map_err(|e| format!("{f}: {e}"))?;
            let rows = run::run_checks(&work, &bind.schemas, 0, &figures, models::CHECKS, &[], false)
                .map_err(|e| format!("{f}: {e}"))?;
            *slot = Some(rows.into_iter());
        }
        let it = slot.as_mut().expect("set above");
        let mut n = 0;
        while n < out.capacity() {
            let Some(r) = it.next() else { break };
            out.vector(0).set_bytes(n, r.check.as_bytes());
            for (col, v) in [(1, &r.expected), (2, &r.actual)] {
                match v {
                    Some(s) => out.vector(col).set_bytes(n, s.as_bytes()),
                    None => out.vector(col).set_null(n),
                }
            }
            out.vector(3).set::<bool>(n, r.ok);
            n += 1;
        }
        out.set_len(n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::is_interval;

    #[test]
    fn lookback_intervals() {
        for ok in ["10 minutes", "1 hour 30 minutes", "0 seconds", "2 DAYS", "1 week"] {
            assert!(is_interval(ok), "{ok}");
        }
        for bad in [
            "",
            "banana",
            "10 minutes ago",
            "1; drop",
            "10",
            "-5 minutes",
            "10 'minutes'",
        ] {
            assert!(!is_interval(bad), "{bad}");
        }
    }
}
