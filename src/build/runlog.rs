//! The run log: `<gold>.pagila_runs`, one row per run and per step, and
//! `<gold>.pagila_check_results`, written on the extension's log connection in
//! transactions of their own, so that they survive a failed build.
//!
//! Each commit of a file database costs a WAL write and an fsync (about 1.6 ms
//! here), and an incremental build has some 55 steps of a few milliseconds: one
//! commit per step start and end was about a tenth of such a build. So the step
//! rows are kept in memory and written together, in one transaction, whenever
//! [`FLUSH_EVERY`] has passed since the last write, and always when the run
//! ends (finished or failed). The run's own row is written RUNNING at once: a
//! process killed mid-build leaves it RUNNING, with the steps written so far.

use std::cell::RefCell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::models::{self, sql_or_null, str_or_null, timestamptz_us, Schemas};
use super::run::CheckRow;
use crate::inner::Inner;
use crate::pg::quote_literal;

/// The longest a finished step waits before its row is written.
const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// The name of the row that stands for the whole run.
pub const RUN_STEP: &str = "build";

/// One row of `pagila_runs`, as this process knows it.
struct Row {
    step: String,
    status: String,
    rows: Option<i64>,
    seconds: Option<f64>,
    started_us: i64,
    finished_us: Option<i64>,
    message: Option<String>,
    /// Already in the table (as RUNNING): finished by an UPDATE.
    written: bool,
}

impl Row {
    /// A step that has just started; `written` when its RUNNING row is already in the table.
    fn running(step: &str, started_us: i64, written: bool) -> Row {
        Row {
            step: step.to_string(),
            status: "RUNNING".into(),
            rows: None,
            seconds: None,
            started_us,
            finished_us: None,
            message: None,
            written,
        }
    }

    /// Not in the table yet, or finished since it was written RUNNING.
    fn dirty(&self) -> bool {
        !self.written || self.status != "RUNNING"
    }
}

pub struct RunLog<'a> {
    inner: &'a Inner,
    table: String,
    gold: String,
    pub run_id: i64,
    rows: RefCell<Vec<Row>>,
    last_flush: RefCell<Instant>,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

impl<'a> RunLog<'a> {
    /// Creates the tables if need be and takes the next run id.
    pub fn open(inner: &'a Inner, schemas: &Schemas) -> Result<RunLog<'a>, String> {
        let gold = models::quote_ident(&schemas.gold);
        let table = format!("{gold}.pagila_runs");
        let log = inner.log()?;
        log.query(&format!(
            "CREATE SCHEMA IF NOT EXISTS {gold}; \
             CREATE TABLE IF NOT EXISTS {table} (run_id BIGINT, step VARCHAR, status VARCHAR, \"rows\" BIGINT, \
             seconds DOUBLE, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, message VARCHAR); \
             CREATE TABLE IF NOT EXISTS {gold}.pagila_check_results (run_id BIGINT, \"check\" VARCHAR, \
             expected VARCHAR, actual VARCHAR, ok BOOLEAN, checked_at TIMESTAMPTZ)"
        ))
        .map_err(|e| format!("creating the run log: {e}"))?;
        // The next run id and the run's RUNNING row in one statement, under the log
        // connection's lock: builds started at the same time on other connections of
        // this database get ids of their own.
        let started_us = now_us();
        let rows = log
            .query(&format!(
                "INSERT INTO {table} (run_id, step, status, started_at) \
                 SELECT coalesce(max(run_id), 0) + 1, {}, 'RUNNING', {} FROM {table} RETURNING run_id",
                quote_literal(RUN_STEP),
                timestamptz_us(Some(started_us))
            ))
            .map_err(|e| format!("writing the run log: {e}"))?;
        let run_id = rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|v| v.parse().ok())
            .ok_or("writing the run log: no run id came back")?;
        Ok(RunLog {
            inner,
            table,
            gold,
            run_id,
            rows: RefCell::new(vec![Row::running(RUN_STEP, started_us, true)]),
            last_flush: RefCell::new(Instant::now()),
        })
    }

    /// A step starts: RUNNING. (The run's own row is written by [`RunLog::open`].)
    pub fn start(&self, step: &str) {
        self.rows.borrow_mut().push(Row::running(step, now_us(), false));
        self.flush_if(false);
    }

    /// A step (or the run) ends with `status`; the run's end writes every row.
    pub fn end(&self, step: &str, status: &str, rows: Option<i64>, seconds: f64, message: Option<&str>) {
        {
            let mut all = self.rows.borrow_mut();
            if let Some(r) = all.iter_mut().rev().find(|r| r.step == step && r.status == "RUNNING") {
                r.status = status.to_string();
                r.rows = rows;
                r.seconds = Some(seconds);
                r.finished_us = Some(now_us());
                r.message = message.map(str::to_string);
            }
        }
        self.flush_if(step == RUN_STEP);
    }

    /// The checks' results, written with the rows not written yet.
    pub fn checks(&self, rows: &[CheckRow]) {
        if rows.is_empty() {
            return;
        }
        let values: Vec<String> = rows
            .iter()
            .map(|c| {
                format!(
                    "({}, {}, {}, {}, {}, now())",
                    self.run_id,
                    quote_literal(&c.check),
                    str_or_null(c.expected.as_deref()),
                    str_or_null(c.actual.as_deref()),
                    c.ok
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO {}.pagila_check_results VALUES {}",
            self.gold,
            values.join(", ")
        );
        self.write(Some(sql));
    }

    fn flush_if(&self, now: bool) {
        if now || self.last_flush.borrow().elapsed() >= FLUSH_EVERY {
            self.write(None);
        }
    }

    /// Writes the changed rows (and `extra`) in one transaction. Best effort: a
    /// failing log never fails the build.
    fn write(&self, extra: Option<String>) {
        let mut all = self.rows.borrow_mut();
        let mut sql = Vec::new();
        let mut values = Vec::new();
        for r in all.iter().filter(|r| r.dirty()) {
            if r.written {
                sql.push(format!(
                    "UPDATE {} SET status = {}, \"rows\" = {}, seconds = {}, finished_at = {}, message = {} \
                     WHERE run_id = {} AND step = {} AND status = 'RUNNING'",
                    self.table,
                    quote_literal(&r.status),
                    sql_or_null(r.rows),
                    sql_or_null(r.seconds),
                    timestamptz_us(r.finished_us),
                    str_or_null(r.message.as_deref()),
                    self.run_id,
                    quote_literal(&r.step)
                ));
            } else {
                values.push(format!(
                    "({}, {}, {}, {}, {}, {}, {}, {})",
                    self.run_id,
                    quote_literal(&r.step),
                    quote_literal(&r.status),
                    sql_or_null(r.rows),
                    sql_or_null(r.seconds),
                    timestamptz_us(Some(r.started_us)),
                    timestamptz_us(r.finished_us),
                    str_or_null(r.message.as_deref())
                ));
            }
        }
        if !values.is_empty() {
            sql.push(format!("INSERT INTO {} VALUES {}", self.table, values.join(", ")));
        }
        sql.extend(extra);
        *self.last_flush.borrow_mut() = Instant::now();
        if sql.is_empty() {
            return;
        }
        let Ok(log) = self.inner.log() else { return };
        let batch = format!("BEGIN TRANSACTION; {}; COMMIT", sql.join("; "));
        if log.query(&batch).is_err() {
            let _ = log.query("ROLLBACK");
            return;
        }
        // Finished rows are final; a RUNNING one is finished later by an UPDATE.
        all.retain(|r| r.status == "RUNNING");
        for r in all.iter_mut() {
            r.written = true;
        }
    }
}

impl Drop for RunLog<'_> {
    /// Whatever was not written yet (a panic between start and end).
    fn drop(&mut self) {
        if self.rows.borrow().iter().any(Row::dirty) {
            self.write(None);
        }
    }
}
