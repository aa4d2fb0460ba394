//! One build of the star: bronze extracts under one Postgres snapshot, then the
//! models, then the checks, on the extension's work connection; the run log is
//! written on the log connection. A full build writes new tables beside the
//! current ones and swaps them in with one transaction at the end; an
//! incremental build runs in one transaction.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Instant;

use super::models::{self, Schemas};
use super::runlog::{RunLog, RUN_STEP};
use crate::extract::params::RunDsn;
use crate::extract::snapshot;
use crate::inner::Inner;
use crate::pg::{quote_literal, PgConfig};

/// What a failed check does to the build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnCheckFailure {
    Error,
    Warn,
}

/// Full rebuild, or only what changed since the bookmarks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Full,
    Incremental {
        /// An interval ('10 minutes'): rows up to this much older than the
        /// bookmark are read again, for transactions that commit late.
        lookback: String,
        /// Find rows deleted in Postgres by a key diff.
        detect_deletes: bool,
    },
}

/// Everything a build needs, parsed from the CALL.
#[derive(Clone, Debug)]
pub struct BuildParams {
    pub cfg: PgConfig,
    pub schemas: Schemas,
    pub on_check_failure: OnCheckFailure,
    pub threads: Option<u64>,
    pub mode: Mode,
}

/// One row of the CALL's result.
#[derive(Clone, Debug)]
pub struct StepRow {
    pub step: String,
    pub rows: Option<i64>,
    pub seconds: f64,
    pub status: &'static str,
}

/// One row of a check's result.
#[derive(Clone, Debug)]
pub struct CheckRow {
    pub check: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
    pub ok: bool,
}

/// Figures read from Postgres, in the build's snapshot, that the checks compare with.
pub struct SourceFigures {
    pub payment_count: String,
    pub payment_sum: String,
    pub rental_count: String,
}

pub fn source_figures(conn: &mut crate::pg::Connection) -> Result<SourceFigures, String> {
    let rows = conn
        .simple_query(
            // One scan of payment for both of its figures.
            "SELECT count(*), coalesce(sum(amount), 0), (SELECT count(*) FROM rental) FROM payment",
        )
        .map_err(|e| format!("reading source figures: {e}"))?;
    let r = rows.into_iter().next().ok_or("reading source figures: no row")?;
    let get = |i: usize| r.get(i).cloned().flatten().unwrap_or_else(|| "0".into());
    Ok(SourceFigures {
        payment_count: get(0),
        payment_sum: get(1),
        rental_count: get(2),
    })
}

/// The same figures, read from bronze (what the build has loaded).
fn figures_from_bronze(conn: &crate::ffi::conn::Connection, schemas: &Schemas) -> Result<SourceFigures, String> {
    let b = models::quote_ident(&schemas.bronze);
    let rows = conn
        .query(&format!(
            "SELECT (SELECT count(*) FROM {b}.payment)::VARCHAR, \
             (SELECT coalesce(sum(amount), 0) FROM {b}.payment)::VARCHAR, (SELECT count(*) FROM {b}.rental)::VARCHAR"
        ))
        .map_err(|e| format!("reading bronze figures: {e}"))?;
    let r = rows.into_iter().next().ok_or("reading bronze figures: no row")?;
    let get = |i: usize| r.get(i).cloned().flatten().unwrap_or_else(|| "0".into());
    Ok(SourceFigures {
        payment_count: get(0),
        payment_sum: get(1),
        rental_count: get(2),
    })
}

/// Runs the checks on the work connection (which may be inside the build's transaction).
pub fn run_checks(
    conn: &crate::ffi::conn::Connection,
    schemas: &Schemas,
    run_id: i64,
    figures: &SourceFigures,
    list: &[models::Check],
    staged: &[models::Staged],
    incremental: bool,
) -> Result<Vec<CheckRow>, String> {
    let mut vars = schemas.vars(run_id);
    vars.extend(models::scd2_scope_vars(incremental));
    vars.push(("src_payment_count", figures.payment_count.clone()));
    vars.push(("src_payment_sum", figures.payment_sum.clone()));
    vars.push(("src_rental_count", figures.rental_count.clone()));
    let mut out = Vec::new();
    for c in list {
        let sql = models::render(&models::to_next(c.sql, staged), &vars)?;
        let rows = conn.query(&sql).map_err(|e| format!("check {}: {e}", c.name))?;
        for r in rows {
            out.push(CheckRow {
                check: r.first().cloned().flatten().unwrap_or_default(),
                expected: r.get(1).cloned().flatten(),
                actual: r.get(2).cloned().flatten(),
                ok: r.get(3).cloned().flatten().as_deref() == Some("true"),
            });
        }
    }
    Ok(out)
}

/// A source table's marks: the latest change time (µs since 1970) and, for
/// tables with a sequence key, the largest id.
#[derive(Clone, Copy, Default)]
struct Mark {
    us: Option<i64>,
    id: Option<i64>,
}

/// The marks per table, and the Postgres time (µs) of the snapshot they were read in.
struct Bookmarks {
    marks: Vec<(String, Mark)>,
    snapshot_us: Option<i64>,
}

/// The marks of the rows in `relation` (a bronze table or the changed rows).
fn marks_of(conn: &crate::ffi::conn::Connection, relation: &str, src: &models::Source) -> Result<Mark, String> {
    let id = src
        .id
        .map(|c| format!("max({})::BIGINT", models::quote_ident(c)))
        .unwrap_or_else(|| "NULL::BIGINT".into());
    let rows = conn
        .query(&format!(
            "SELECT epoch_us(max({c}))::BIGINT, {id} FROM {relation}",
            c = models::quote_ident(src.changed)
        ))
        .map_err(|e| e.to_string())?;
    let cell = |i: usize| {
        rows.first()
            .and_then(|r| r.get(i).cloned().flatten())
            .and_then(|v| v.parse().ok())
    };
    Ok(Mark {
        us: cell(0),
        id: cell(1),
    })
}

/// The bookmarks, when there is a complete star to build on: one per source
/// table, and the facts exist. None means "build in full".
fn read_bookmarks(conn: &crate::ffi::conn::Connection, schemas: &Schemas) -> Result<Option<Bookmarks>, String> {
    let gold = models::quote_ident(&schemas.gold);
    if !has_star(conn, schemas)? {
        return Ok(None);
    }
    let rows = conn
        .query(&format!(
            "SELECT source_table, high_water_us, snapshot_us, high_water_id FROM {gold}.pagila_bookmarks"
        ))
        .map_err(|e| e.to_string())?;
    let cell = |r: &Vec<Option<String>>, i: usize| r.get(i).cloned().flatten().and_then(|v| v.parse::<i64>().ok());
    let snapshot_us = rows.iter().filter_map(|r| cell(r, 2)).max();
    let marks: Vec<(String, Mark)> = rows
        .iter()
        .map(|r| {
            let mark = Mark {
                us: cell(r, 1),
                id: cell(r, 3),
            };
            (r.first().cloned().flatten().unwrap_or_default(), mark)
        })
        .collect();
    if models::SOURCES.iter().all(|s| marks.iter().any(|(t, _)| t == s.table)) {
        Ok(Some(Bookmarks { marks, snapshot_us }))
    } else {
        Ok(None)
    }
}

/// Rows of a CREATE TABLE AS / INSERT result ("Count"), if that is what came back.
fn count_of(rows: &[Vec<Option<String>>]) -> Option<i64> {
    match rows {
        [row] if row.len() == 1 => row[0].as_deref().and_then(|v| v.parse().ok()),
        _ => None,
    }
}

/// Runs a whole build. Each finished step is sent to `tx` as it ends; the
/// result is Err with a message (no secrets) when the build failed and was
/// rolled back.
pub fn build(inner: &Inner, p: &BuildParams, tx: &Sender<StepRow>, cancel: &AtomicBool) -> Result<(), String> {
    // Writes the run's RUNNING row.
    let log = RunLog::open(inner, &p.schemas)?;
    let whole = Instant::now();
    let r = build_steps(inner, p, tx, cancel, &log);
    let secs = whole.elapsed().as_secs_f64();
    match &r {
        Ok(()) => log.end(RUN_STEP, "FINISHED", None, secs, None),
        Err(e) => log.end(RUN_STEP, "FAILED", None, secs, Some(e)),
    }
    r
}

fn build_steps(
    inner: &Inner,
    p: &BuildParams,
    tx: &Sender<StepRow>,
    cancel: &AtomicBool,
    log: &RunLog<'_>,
) -> Result<(), String> {
    let run_id = log.run_id;
    // A step: logged RUNNING, then FINISHED (sent to the caller) or FAILED.
    // A step may finish with a warning (failed checks under on_check_failure := 'warn').
    let warning: std::cell::RefCell<Option<String>> = std::cell::RefCell::new(None);
    let step = |name: &str, f: &mut dyn FnMut() -> Result<Option<i64>, String>| -> Result<(), String> {
        if cancel.load(Ordering::SeqCst) {
            return Err("the build was interrupted".into());
        }
        log.start(name);
        let t = Instant::now();
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        match r {
            Ok(rows) => {
                let warned = warning.borrow_mut().take();
                let status = if warned.is_some() { "WARN" } else { "FINISHED" };
                log.end(name, status, rows, secs, warned.as_deref());
                let _ = tx.send(StepRow {
                    step: name.to_string(),
                    rows,
                    seconds: secs,
                    status,
                });
                Ok(())
            }
            Err(e) => {
                let e = if cancel.load(Ordering::SeqCst) {
                    format!("the build was interrupted ({e})")
                } else {
                    e
                };
                log.end(name, "FAILED", None, secs, Some(&e));
                Err(format!("step {name} failed: {e}"))
            }
        }
    };

    // One Postgres snapshot for every extract; its connection also reads the
    // figures the checks compare with, once the extracts are done.
    let mut snap: Option<(crate::pg::Connection, String)> = None;
    let mut snapshot_us: Option<i64> = None;
    step("snapshot", &mut || {
        let (mut conn, id) = snapshot::export(&p.cfg).map_err(|e| e.to_string())?;
        snapshot_us = conn
            .simple_query("SELECT (extract(epoch FROM now()) * 1000000)::bigint")
            .map_err(|e| format!("reading the snapshot's time: {e}"))?
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|v| v.parse::<i64>().ok());
        snap = Some((conn, id));
        Ok(None)
    })?;
    let (snap_conn, snap_id) = snap.expect("set by the snapshot step");
    let mut snap_conn = Some(snap_conn);
    let run_dsn = RunDsn::register(p.cfg.clone());

    let work = inner.work()?;
    // Lets DuckDB insert the bronze extracts with several threads (the setting
    // is per connection here, so the user's connections keep theirs).
    work.query("SET SESSION preserve_insertion_order = false")
        .map_err(|e| format!("SET preserve_insertion_order: {e}"))?;
    let bronze = models::quote_ident(&p.schemas.bronze);
    let gold = models::quote_ident(&p.schemas.gold);
    // What a build that died left behind (the process was killed mid-build).
    drop_next_tables(&work, &p.schemas)?;
    // Layer schemas this build creates; a failed build drops those it leaves empty.
    let new_schemas = missing_schemas(&work, &p.schemas)?;
    work.query(&format!("CREATE SCHEMA IF NOT EXISTS {bronze}"))
        .map_err(|e| e.to_string())?;
    // Created with the first star (in the swap of a full build).
    let bookmarks_ddl = format!(
        "CREATE TABLE IF NOT EXISTS {gold}.pagila_bookmarks \
         (source_table VARCHAR, bookmark_column VARCHAR, high_water TIMESTAMPTZ, high_water_us BIGINT, \
         run_id BIGINT, updated_at TIMESTAMPTZ); \
         ALTER TABLE {gold}.pagila_bookmarks ADD COLUMN IF NOT EXISTS snapshot_us BIGINT; \
         ALTER TABLE {gold}.pagila_bookmarks ADD COLUMN IF NOT EXISTS high_water_id BIGINT"
    );
    let bookmarks = match &p.mode {
        Mode::Incremental { .. } => {
            work.query(&bookmarks_ddl).map_err(|e| e.to_string())?;
            read_bookmarks(&work, &p.schemas)?
        }
        Mode::Full => None,
    };
    let incremental = match (&p.mode, &bookmarks) {
        (
            Mode::Incremental {
                lookback,
                detect_deletes,
            },
            Some(bm),
        ) => Some((lookback, *detect_deletes, bm)),
        (Mode::Incremental { .. }, None) => {
            step("mode: full (no bookmarks yet)", &mut || Ok(None))?;
            None
        }
        _ => None,
    };
    // A full build writes every table under its next name, committing as it goes, and swaps
    // them in at the end (see models::staged_tables). An incremental build changes a small part
    // of the tables in place, in one transaction.
    let staged: Vec<models::Staged> = if incremental.is_some() {
        Vec::new()
    } else {
        models::staged_tables()
    };
    if !staged.is_empty() {
        refuse_views_in_the_way(&work, &staged, &p.schemas)?;
    }
    let mut in_tx = false;
    // The last model, cleanup, drops the models' temp tables: it runs at the end of the checks
    // step, as the checks read the SCD2 scope of an incremental build (models::scd2_scope_vars),
    // or after a failure.
    let mut cleanup: Option<String> = None;
    let result = (|| -> Result<Vec<CheckRow>, String> {
        if incremental.is_some() {
            work.query("BEGIN TRANSACTION").map_err(|e| format!("BEGIN: {e}"))?;
            in_tx = true;
        } else {
            for st in staged.iter().filter(|s| s.merged) {
                copy_for_merge(&work, p.schemas.layer(st.layer), st)?;
            }
        }
        let extract = |table: &str, extra: &str| {
            format!(
                "pagila_extract({src}, dsn := {dsn}, snapshot := {snap}{threads}{extra})",
                src = quote_literal(&format!("public.{table}")),
                dsn = quote_literal(&run_dsn.dsn()),
                snap = quote_literal(&snap_id),
                threads = p.threads.map(|t| format!(", threads := {t}")).unwrap_or_default(),
            )
        };
        // Never copy credentials into DuckDB.
        let columns = |table: &str| if table == "staff" { "* EXCLUDE (password)" } else { "*" };
        let mut high_water: Vec<(&str, &str, Mark)> = Vec::new();
        match incremental {
            None => {
                for src in models::SOURCES {
                    let t = src.table;
                    let next = format!(
                        "{bronze}.{}",
                        models::quote_ident(&format!("{}{t}", models::NEXT_PREFIX))
                    );
                    let sql = format!(
                        "CREATE OR REPLACE TABLE {next} AS SELECT {cols}, {run_id}::BIGINT AS _run_id, \
                         now() AS _loaded_at FROM {from}",
                        cols = columns(t),
                        from = extract(t, ""),
                    );
                    step(&format!("{}.{t}", p.schemas.bronze), &mut || {
                        work.query(&sql).map(|r| count_of(&r)).map_err(|e| e.to_string())
                    })?;
                    let hw = marks_of(&work, &next, src)?;
                    high_water.push((t, src.changed, hw));
                }
            }
            Some((lookback, detect_deletes, bm)) => {
                // Bronze's columns, all tables in one catalog query: duckdb_columns() lists every
                // column of the database (3 ms here), pragma_table_info one table's (1.3 ms).
                // With each table's shape, the condition that a read row (r) equals a bronze row
                // (o) in every column, NULLs equal (as EXCEPT ALL compares rows).
                let shapes = work.query(&format!(
                    "SELECT table_name, list(column_name || ' ' || data_type ORDER BY column_index)::VARCHAR, \
                     string_agg(format('o.\"{{0}}\" IS NOT DISTINCT FROM r.\"{{0}}\"', replace(column_name, '\"', '\"\"')), \
                     ' AND ' ORDER BY column_index) \
                     FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = {} \
                     AND column_name NOT IN ('_run_id', '_loaded_at') GROUP BY table_name",
                    quote_literal(&p.schemas.bronze)
                ))?;
                for src in models::SOURCES {
                    let t = src.table;
                    let table = format!("{bronze}.{}", models::quote_ident(t));
                    let bronze_shape = shapes.iter().find(|r| r.first().and_then(|c| c.as_deref()) == Some(t));
                    let shape = bronze_shape
                        .and_then(|r| r.get(1).cloned().flatten())
                        .map(|o| quote_literal(&o))
                        .unwrap_or_else(|| "NULL".into());
                    // Without a bronze table the shape check fails first.
                    let same_row = bronze_shape
                        .and_then(|r| r.get(2).cloned().flatten())
                        .unwrap_or_else(|| "false".into());
                    let keys = src
                        .key
                        .iter()
                        .map(|k| models::quote_ident(k))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let on = src
                        .key
                        .iter()
                        .map(|k| format!("b.{0} = c.{0}", models::quote_ident(k)))
                        .collect::<Vec<_>>()
                        .join(" AND ");
                    let old = bm
                        .marks
                        .iter()
                        .find(|(n, _)| n == t)
                        .map(|(_, m)| *m)
                        .unwrap_or_default();
                    let filter = match changed_filter(src, old, bm.snapshot_us, lookback) {
                        Some(f) => format!(", filter := {}", quote_literal(&f)),
                        None => String::new(),
                    };
                    let read = format!("temp.main.pagila_read_{t}");
                    // The rows upserted into bronze, source columns only: the models' delta.
                    let delta = format!("temp.main.pagila_delta_{t}");
                    // Rows read again (the lookback window) that bronze already holds as they are
                    // are left alone: a rerun without source change writes nothing, so neither it
                    // nor the next run's checkpoint pays for rewriting them, and the models only
                    // see keys whose rows changed. The step reports the rows read from Postgres.
                    // Keys are unique on both sides, so an anti-join on every column gives what
                    // EXCEPT ALL would, without the window DuckDB runs over each side of an
                    // EXCEPT ALL (rental's 10k changed rows: 15-18 ms against 24-35).
                    // A source table whose columns changed since bronze was loaded (one added,
                    // dropped, retyped) cannot be merged by position: say so, and what to do.
                    let same_shape = format!(
                        "SET VARIABLE pagila_same_shape = (SELECT CASE WHEN n IS DISTINCT FROM o THEN error(format(\
                         'the columns of Postgres table {t} are not those of {shown} any more \
                         (Postgres: {{}}; bronze: {{}}): run a full build (mode := ''full'') to load its new shape', \
                         n::VARCHAR, o::VARCHAR)) END \
                         FROM (SELECT list(name || ' ' || type ORDER BY cid)::VARCHAR AS n, {shape} AS o \
                         FROM pragma_table_info('temp.main.pagila_read_{t}')))",
                        shown = format!("{}.{t}", p.schemas.bronze).replace('\'', "''"),
                    );
                    let read_sql = format!(
                        "CREATE OR REPLACE TEMP TABLE pagila_read_{t} AS SELECT {cols} FROM {from}; \
                         {same_shape}; SELECT count(*) FROM {read}",
                        cols = columns(t),
                        from = extract(t, &filter),
                    );
                    // Nothing read (most tables, most runs): the empty read is the delta, and
                    // bronze and the mark stay as they are.
                    let merge_sql = format!(
                        "CREATE OR REPLACE TEMP TABLE pagila_delta_{t} AS SELECT r.* FROM {read} AS r ANTI JOIN \
                         (SELECT b.* EXCLUDE (_run_id, _loaded_at) FROM {table} AS b SEMI JOIN {read} AS c ON {on}) AS o \
                         ON {same_row}; \
                         DELETE FROM {table} AS b USING {delta} AS c WHERE {on}; \
                         INSERT INTO {table} SELECT *, {run_id}::BIGINT, now() FROM {delta}; DROP TABLE {read}"
                    );
                    let empty_sql =
                        format!("CREATE OR REPLACE TEMP TABLE pagila_delta_{t} AS FROM {read}; DROP TABLE {read}");
                    let mut read_rows = 0;
                    step(&format!("{}.{t}", p.schemas.bronze), &mut || {
                        read_rows = work
                            .query(&read_sql)
                            .map(|r| count_of(&r))
                            .map_err(|e| e.to_string())?
                            // It decides whether bronze is merged: never guess it.
                            .ok_or_else(|| format!("counting the rows read from {t}: no count came back"))?;
                        work.query(if read_rows > 0 { &merge_sql } else { &empty_sql })
                            .map_err(|e| e.to_string())?;
                        Ok(Some(read_rows))
                    })?;
                    if detect_deletes {
                        // Only the key columns travel (projection pushdown).
                        let sql = format!(
                            "CREATE OR REPLACE TEMP TABLE pagila_srckeys_{t} AS SELECT {keys} FROM {from}; \
                             CREATE OR REPLACE TEMP TABLE pagila_deleted_{t} AS SELECT {keys} FROM {table} \
                             EXCEPT SELECT {keys} FROM temp.main.pagila_srckeys_{t}; \
                             DELETE FROM {table} AS b USING temp.main.pagila_deleted_{t} AS c WHERE {on}; \
                             DROP TABLE temp.main.pagila_srckeys_{t}; \
                             SELECT count(*) FROM temp.main.pagila_deleted_{t}",
                            from = extract(t, ""),
                        );
                        step(&format!("deletes.{t}"), &mut || {
                            work.query(&sql).map(|r| count_of(&r)).map_err(|e| e.to_string())
                        })?;
                    } else {
                        work.query(&format!(
                            "CREATE OR REPLACE TEMP TABLE pagila_deleted_{t} AS SELECT {keys} FROM {table} WHERE false"
                        ))
                        .map_err(|e| e.to_string())?;
                    }
                    let new = if read_rows > 0 {
                        marks_of(&work, &delta, src)?
                    } else {
                        Mark::default()
                    };
                    // Option's order puts None first: the larger known mark wins.
                    let mark = Mark {
                        us: new.us.max(old.us),
                        id: new.id.max(old.id),
                    };
                    high_water.push((t, src.changed, mark));
                }
            }
        }
        // Postgres' figures for the checks (a scan of payment and rental, in the build's
        // snapshot, on the connection that holds it) are read while DuckDB runs the models,
        // by one Postgres process (no parallel workers): it takes one core and leaves DuckDB
        // the other. A build that fails before its checks leaves the thread to finish its one
        // query and close the connection. Without detect_deletes, rows deleted in Postgres stay
        // in bronze (and so in the star) until a run looks for them: an incremental run then
        // reconciles with what bronze holds, not with Postgres' counts (no thread).
        let mut figures = match incremental {
            Some((_, false, _)) => None,
            _ => snap_conn.take().map(|mut conn| {
                std::thread::Builder::new()
                    .name("pagila_star figures".into())
                    .spawn(move || {
                        conn.simple_query("SET LOCAL max_parallel_workers_per_gather = 0")
                            .map_err(|e| format!("reading source figures: {e}"))?;
                        source_figures(&mut conn)
                    })
            }),
        }
        .transpose()
        .map_err(|e| format!("starting the source figures' thread: {e}"))?;
        // A full build's models insert in order again. With several insert threads each thread
        // leaves a part-filled row group behind, in the middle of the table; the first later
        // CHECKPOINT that sees a few deletes near one merges its neighbours into it and rewrites
        // them (DuckDB's vacuum). For stg_customer and stg_address, whose strings are dear to
        // compress again, that was half of the next incremental run's CHECKPOINT (bench/RESULTS.md).
        // The full build takes as long either way; an incremental run's small inserts would be
        // slower in order, and append at the end.
        if incremental.is_none() {
            work.query("SET SESSION preserve_insertion_order = true")
                .map_err(|e| format!("SET preserve_insertion_order: {e}"))?;
        }
        let model_list = if incremental.is_some() {
            models::INCREMENTAL_MODELS
        } else {
            models::MODELS
        };
        let vars = p.schemas.vars(run_id);
        // The compat views of a full build are created with the swap: they name the gold
        // tables, which only then have their final names.
        let mut swap_models = Vec::new();
        if let Some(m) = model_list.iter().find(|m| m.name == "cleanup") {
            let sql = models::render(&models::to_next(m.sql, &staged), &vars)?;
            cleanup = Some(sql);
        }
        for m in model_list {
            let schema = match m.layer {
                models::Layer::Silver => &p.schemas.silver,
                models::Layer::Gold => &p.schemas.gold,
                models::Layer::Compat => &p.schemas.compat,
            };
            let name = format!("{schema}.{}", m.name);
            if incremental.is_none() && m.layer == models::Layer::Compat {
                swap_models.push(models::render(m.sql, &vars)?);
                continue;
            }
            if m.name == "cleanup" {
                continue;
            }
            let sql = models::render(&models::to_next(m.sql, &staged), &vars)?;
            step(&name, &mut || {
                work.query(&sql).map(|r| count_of(&r)).map_err(|e| e.to_string())
            })?;
        }
        // The bookmarks advance with the build: in its transaction.
        let snap = models::sql_or_null(snapshot_us);
        let values: Vec<String> = high_water
            .iter()
            .map(|(t, c, m)| {
                format!(
                    "({}, {}, {}, {}, {snap}, {}, {run_id}, now())",
                    quote_literal(t),
                    quote_literal(c),
                    models::timestamptz_us(m.us),
                    models::sql_or_null(m.us),
                    models::sql_or_null(m.id)
                )
            })
            .collect();
        let write_bookmarks = format!(
            "DELETE FROM {gold}.pagila_bookmarks; INSERT INTO {gold}.pagila_bookmarks (source_table, \
             bookmark_column, high_water, high_water_us, snapshot_us, high_water_id, run_id, updated_at) VALUES {}",
            values.join(", ")
        );
        if incremental.is_some() {
            step("bookmarks", &mut || {
                work.query(&write_bookmarks)
                    .map(|r| count_of(&r))
                    .map_err(|e| e.to_string())
            })?;
        }
        let mut checks = Vec::new();
        step("checks", &mut || {
            // Postgres' figures come from the thread started after the extracts; without
            // it (incremental, no detect_deletes) from bronze.
            let against = match figures.take() {
                None => figures_from_bronze(&work, &p.schemas)?,
                Some(handle) => handle
                    .join()
                    .map_err(|_| "reading source figures: the thread panicked".to_string())??,
            };
            // An incremental run checks what it can change cheaply; the full list
            // (key resolution over every fact, fan-out) is a full build's and
            // pagila_check()'s, as it costs about a tenth of a full build.
            let list = if incremental.is_some() {
                models::INCREMENTAL_CHECKS
            } else {
                models::CHECKS
            };
            checks = run_checks(
                &work,
                &p.schemas,
                run_id,
                &against,
                list,
                &staged,
                incremental.is_some(),
            )?;
            if let Some(sql) = &cleanup {
                work.query(sql)
                    .map_err(|e| format!("dropping the models' temp tables: {e}"))?;
            }
            let failed: Vec<String> = checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| {
                    format!(
                        "{} (expected {}, got {})",
                        c.check,
                        c.expected.as_deref().unwrap_or("NULL"),
                        c.actual.as_deref().unwrap_or("NULL")
                    )
                })
                .collect();
            if !failed.is_empty() {
                let msg = format!("{} check(s) failed: {}", failed.len(), failed.join("; "));
                if p.on_check_failure == OnCheckFailure::Error {
                    return Err(format!(
                        "{msg} (use on_check_failure := 'warn' to keep the build anyway)"
                    ));
                }
                *warning.borrow_mut() = Some(msg);
            }
            Ok(Some(checks.len() as i64))
        })?;
        step("commit", &mut || {
            if incremental.is_none() {
                // The swap: every table takes its final name, the compat views and the
                // bookmarks follow, in one short transaction.
                work.query("BEGIN TRANSACTION").map_err(|e| format!("BEGIN: {e}"))?;
                in_tx = true;
                let mut sql = String::new();
                for st in &staged {
                    let schema = models::quote_ident(p.schemas.layer(st.layer));
                    sql.push_str(&format!(
                        "DROP TABLE IF EXISTS {schema}.{live}; ALTER TABLE {schema}.{next} RENAME TO {live};\n",
                        live = models::quote_ident(&st.table),
                        next = models::quote_ident(&st.next_name()),
                    ));
                }
                work.query(&sql)
                    .map_err(|e| format!("swapping the new tables in: {e}"))?;
                for m in &swap_models {
                    work.query(m).map_err(|e| e.to_string())?;
                }
                work.query(&bookmarks_ddl).map_err(|e| format!("bookmarks: {e}"))?;
                work.query(&write_bookmarks).map_err(|e| format!("bookmarks: {e}"))?;
            }
            work.query("COMMIT").map_err(|e| e.to_string())?;
            in_tx = false;
            Ok(None)
        })?;
        Ok(checks)
    })();
    match result {
        Ok(checks) => {
            log.checks(&checks);
            // A CHECKPOINT cannot run inside the CALL: DuckDB refuses one while a
            // transaction that began before the build's commit (the caller's) is
            // still open. The watcher runs one once the database is quiet.
            inner.want_checkpoint();
            Ok(())
        }
        Err(e) => {
            if in_tx {
                let _ = work.query("ROLLBACK");
            }
            if let Some(sql) = &cleanup {
                let _ = work.query(sql);
            }
            // Nothing half-written stays behind: the previous star is untouched.
            let _ = drop_next_tables(&work, &p.schemas);
            // Nor an empty schema this build created (the run log's stays: it holds the log).
            for schema in &new_schemas {
                let _ = work.query(&format!("DROP SCHEMA IF EXISTS {}", models::quote_ident(schema)));
            }
            Err(e)
        }
    }
}

/// The filter an incremental build sends with a source table's COPY: rows changed past its
/// mark, or None (no mark yet: read it all).
fn changed_filter(src: &models::Source, old: Mark, snapshot_us: Option<i64>, lookback: &str) -> Option<String> {
    // Rows past the mark, and rows that may have committed after the
    // last run's snapshot with an older timestamp (last_update is the
    // writing transaction's start): those start at most `lookback`
    // before that snapshot. Old bulk-loaded rows at the mark itself are
    // not read again.
    let col = crate::pg::quote_ident(src.changed);
    let ts = |us: i64| format!("timestamptz 'epoch' + {us} * interval '1 microsecond'");
    // One range on the change column where possible, so that an index
    // on it serves the read. For payment, (payment_date, payment_id) past
    // the marks: the order of its primary key.
    let window = |snap: i64| format!("{} - interval '{lookback}'", ts(snap));
    let conds: Vec<String> = match (old.us, snapshot_us, src.id.zip(old.id)) {
        // A payment recorded late with an earlier date still has a
        // new id: ids past the mark are read too (Postgres scans for
        // them unless payment_id has an index of its own).
        (Some(us), Some(snap), Some((c, id))) => vec![
            format!("({col}, {}) > ({}, {id})", crate::pg::quote_ident(c), ts(us)),
            format!("{col} >= {}", window(snap)),
            format!("{} > {id}", crate::pg::quote_ident(c)),
        ],
        (Some(us), Some(snap), None) => vec![format!(
            "{col} >= LEAST({} + interval '1 microsecond', {})",
            ts(us),
            window(snap)
        )],
        (Some(us), None, _) => vec![format!("{col} >= {} - interval '{lookback}'", ts(us))],
        (None, _, _) => Vec::new(),
    };
    (!conds.is_empty()).then(|| conds.join(" OR "))
}

/// Fails before any work when a view holds the name of a table the build writes (the swap at
/// the end could not replace it).
fn refuse_views_in_the_way(
    conn: &crate::ffi::conn::Connection,
    staged: &[models::Staged],
    schemas: &Schemas,
) -> Result<(), String> {
    let names: Vec<String> = staged
        .iter()
        .map(|st| {
            format!(
                "({}, {})",
                quote_literal(schemas.layer(st.layer)),
                quote_literal(&st.table)
            )
        })
        .collect();
    let rows = conn
        .query(&format!(
            "SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = current_database() \
             AND (schema_name, view_name) IN ({}) ORDER BY ALL",
            names.join(", ")
        ))
        .map_err(|e| format!("listing views: {e}"))?;
    match rows.first() {
        Some(r) => Err(format!(
            "{}.{} is a view, and the build writes a table of that name: drop or rename the view",
            r.first().cloned().flatten().unwrap_or_default(),
            r.get(1).cloned().flatten().unwrap_or_default()
        )),
        None => Ok(()),
    }
}

/// Whether the gold schema of this database holds a star: both fact tables exist.
fn has_star(conn: &crate::ffi::conn::Connection, schemas: &Schemas) -> Result<bool, String> {
    let rows = conn
        .query(&format!(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() \
             AND schema_name = {} AND table_name IN ('fact_sales', 'fact_rental')",
            quote_literal(&schemas.gold)
        ))
        .map_err(|e| e.to_string())?;
    Ok(count_of(&rows) == Some(2))
}

/// Fails, saying what to do, unless the gold schema holds a star to check.
pub fn require_star(conn: &crate::ffi::conn::Connection, schemas: &Schemas) -> Result<(), String> {
    if has_star(conn, schemas).map_err(|e| format!("looking for the star: {e}"))? {
        return Ok(());
    }
    Err(format!(
        "there is no star in schema {} of this database: build one with CALL pagila_build_star() first, \
         or name the schema that holds it with gold := '…'",
        models::quote_ident(&schemas.gold)
    ))
}

/// The layer schemas that do not exist yet.
fn missing_schemas(conn: &crate::ffi::conn::Connection, schemas: &Schemas) -> Result<Vec<String>, String> {
    let names = [&schemas.bronze, &schemas.silver, &schemas.gold, &schemas.compat];
    let rows = conn
        .query(&format!(
            "SELECT schema_name FROM duckdb_schemas() WHERE database_name = current_database() \
             AND schema_name IN ({})",
            names.iter().map(|n| quote_literal(n)).collect::<Vec<_>>().join(", ")
        ))
        .map_err(|e| format!("listing schemas: {e}"))?;
    let existing: Vec<String> = rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    Ok(names.into_iter().filter(|n| !existing.contains(n)).cloned().collect())
}

/// Drops the tables a full build writes before its swap (`<prefix><table>` in the three layer
/// schemas): after a failed build, and before every build in case a process died mid-build.
fn drop_next_tables(conn: &crate::ffi::conn::Connection, schemas: &Schemas) -> Result<(), String> {
    let rows = conn
        .query(&format!(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() \
             AND schema_name IN ({}, {}, {}) AND starts_with(table_name, {})",
            quote_literal(&schemas.bronze),
            quote_literal(&schemas.silver),
            quote_literal(&schemas.gold),
            quote_literal(models::NEXT_PREFIX)
        ))
        .map_err(|e| format!("listing unfinished tables: {e}"))?;
    for r in rows {
        if let (Some(Some(schema)), Some(Some(table))) = (r.first(), r.get(1)) {
            conn.query(&format!(
                "DROP TABLE IF EXISTS {}.{}",
                models::quote_ident(schema),
                models::quote_ident(table)
            ))
            .map_err(|e| format!("dropping the unfinished table {schema}.{table}: {e}"))?;
        }
    }
    Ok(())
}

/// Starts the next version of a table the build merges into (key map, SCD2 dimension) as a
/// copy of the current one, constraints included; nothing when there is none yet (the model
/// creates it).
fn copy_for_merge(conn: &crate::ffi::conn::Connection, schema: &str, st: &models::Staged) -> Result<(), String> {
    let rows = conn
        .query(&format!(
            "SELECT sql FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = {} \
             AND table_name = {}",
            quote_literal(schema),
            quote_literal(&st.table)
        ))
        .map_err(|e| format!("reading the definition of {schema}.{}: {e}", st.table))?;
    let Some(ddl) = rows.first().and_then(|r| r.first().cloned().flatten()) else {
        return Ok(());
    };
    // "CREATE TABLE <schema>.<table>(<columns and constraints>);": keep what follows the name.
    let columns = [
        format!(".{}(", st.table),
        format!(".{}(", models::quote_ident(&st.table)),
    ]
    .iter()
    .find_map(|n| ddl.find(n.as_str()).map(|at| &ddl[at + n.len() - 1..]))
    .ok_or_else(|| format!("unexpected definition of {schema}.{}", st.table))?;
    let (s, live, next) = (
        models::quote_ident(schema),
        models::quote_ident(&st.table),
        models::quote_ident(&st.next_name()),
    );
    conn.query(&format!(
        "CREATE TABLE {s}.{next}{columns} INSERT INTO {s}.{next} SELECT * FROM {s}.{live}"
    ))
    .map_err(|e| format!("copying {schema}.{}: {e}", st.table))?;
    Ok(())
}

/// Shared between the CALL and its build thread.
pub struct BuildHandle {
    pub cancel: Arc<AtomicBool>,
}
