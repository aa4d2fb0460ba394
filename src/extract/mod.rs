//! `pagila_extract(table)` and `pagila_query(sql)`: Postgres rows streamed into
//! DuckDB through binary COPY, decoded as they arrive.
//!
//! bind connects and describes (no rows move); init plans the tasks and, when
//! there are several, exports a snapshot that every worker connection imports,
//! so that the parallel read equals one consistent read.

pub mod params;
pub mod plan;
pub mod sink;
pub mod snapshot;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::ffi::chunk::OutputChunk;
use crate::ffi::table::{BindInput, Bound, TableFunction};
use crate::ffi::BoxError;
use crate::pg::catalog::{self, Column, Relation};
use crate::pg::pool::{self, Pooled};
use crate::pg::wire::CopyOut;
use crate::pg::{quote_literal, PgConfig, PgError};
use crate::state::ExtensionState;
use crate::types::DuckType;
use params::ScanParams;
use plan::Task;
use sink::{ChunkWriter, Target};

/// What is read.
pub enum Source {
    Table(Relation),
    /// An arbitrary query; columns are renamed positionally as c1, c2, … inside.
    Query(String),
}

pub struct ScanBind {
    function: &'static str,
    cfg: PgConfig,
    source: Source,
    columns: Vec<Column>,
    params: ScanParams,
    /// The describe connection, reused by init.
    conn: Mutex<Option<Pooled>>,
}

impl ScanBind {
    fn label(&self) -> String {
        match &self.source {
            Source::Table(r) => format!("table {}", r.display),
            Source::Query(_) => "query".into(),
        }
    }
}

pub struct ScanGlobal {
    tasks: Vec<Task>,
    next: AtomicUsize,
    select_list: String,
    targets: Arc<Vec<Target>>,
    snapshot: Option<String>,
    /// Holds the exported snapshot open until the scan ends.
    _exporter: Option<Mutex<Pooled>>,
    /// A connection ready for the first worker (single-task scans reuse bind's).
    spare: Mutex<Option<Pooled>>,
}

pub struct ScanLocal {
    conn: Pooled,
    copy: Option<CopyOut>,
    task_label: String,
}

fn err(function: &str, e: impl std::fmt::Display) -> BoxError {
    format!("{function}: {e}").into()
}

fn bind_common(
    function: &'static str,
    state: &ExtensionState,
    input: &BindInput,
    source_arg: Option<String>,
    is_query: bool,
) -> Result<Bound<ScanBind>, BoxError> {
    let arg = source_arg.ok_or_else(|| {
        err(
            function,
            if is_query {
                "the query must not be NULL"
            } else {
                "the table name must not be NULL"
            },
        )
    })?;
    let params = ScanParams::from_input(input).map_err(|e| err(function, e))?;
    let cfg = params::resolve_config(input, state).map_err(|e| err(function, e))?;
    if is_query && params.filter.is_some() {
        return Err(err(
            function,
            "filter is for pagila_extract; put the condition into the query",
        ));
    }
    let mut conn = pool::connect(&cfg).map_err(|e| err(function, e))?;
    let (source, describe_sql, estimate) = if is_query {
        (Source::Query(arg.clone()), arg.clone(), None)
    } else {
        let rel = catalog::resolve(&mut conn, &arg).map_err(|e| err(function, e))?;
        let estimate = catalog::estimate_rows(&mut conn, &rel).ok();
        let sql = format!("SELECT * FROM {}", rel.qualified);
        (Source::Table(rel), sql, estimate)
    };
    let fields = conn.describe(&describe_sql).map_err(|e| err(function, e))?;
    if fields.is_empty() {
        return Err(err(function, "the query returns no columns"));
    }
    let columns = catalog::columns(&mut conn, &fields, &params.numeric).map_err(|e| err(function, e))?;
    // DuckDB needs distinct names; a query may repeat one ("a", "a" → "a", "a_1").
    let mut seen = std::collections::HashSet::new();
    let out_cols: Vec<(String, DuckType)> = columns
        .iter()
        .map(|c| {
            let mut name = c.name.clone();
            let mut k = 1;
            while !seen.insert(name.to_lowercase()) {
                name = format!("{}_{k}", c.name);
                k += 1;
            }
            (name, c.duck.clone())
        })
        .collect();
    Ok(Bound {
        data: ScanBind {
            function,
            cfg,
            source,
            columns,
            params,
            conn: Mutex::new(Some(conn)),
        },
        columns: out_cols,
        cardinality: estimate,
    })
}

fn init_common(bind: &ScanBind, projection: Vec<usize>) -> Result<(ScanGlobal, u64), BoxError> {
    let f = bind.function;
    let mut conn = match bind.conn.lock().ok().and_then(|mut c| c.take()) {
        Some(c) => c,
        None => pool::connect(&bind.cfg).map_err(|e| err(f, e))?,
    };
    // The select list, in output order.
    let mut select = Vec::new();
    let mut targets = Vec::new();
    for &i in &projection {
        match bind.columns.get(i) {
            Some(c) => {
                select.push(match &bind.source {
                    Source::Table(_) => c.select.clone(),
                    // Query columns are addressed by position (names may repeat).
                    Source::Query(_) => c
                        .select
                        .replace(&crate::pg::quote_ident(&c.name), &format!("q.c{}", i + 1)),
                });
                targets.push(Target::new(c));
            }
            None => {
                select.push("NULL::int8".into());
                targets.push(Target::null("rowid"));
            }
        }
    }
    let select_list = select.join(", ");
    let want_threads = bind.params.threads.unwrap_or(u64::MAX);
    let (tasks, select_list) = match &bind.source {
        Source::Table(rel) => {
            let leaves = catalog::leaves(&mut conn, rel).map_err(|e| err(f, e))?;
            let split = conn.server_version_num >= 140_000;
            let threads = want_threads.min(64);
            (plan::plan(&leaves, threads, split), select_list)
        }
        Source::Query(q) => {
            let aliases: Vec<String> = (1..=bind.columns.len()).map(|i| format!("c{i}")).collect();
            let from = format!("({}) AS q({})", q.trim().trim_end_matches(';'), aliases.join(", "));
            (
                vec![Task {
                    relation: from,
                    only: false,
                    pages: None,
                }],
                if select_list.is_empty() {
                    "1".into()
                } else {
                    select_list
                },
            )
        }
    };
    let threads = (tasks.len() as u64).min(want_threads).max(1);
    let mut snapshot = bind.params.snapshot.clone();
    let mut exporter = None;
    let mut spare = None;
    if snapshot.is_none() && threads > 1 {
        // One snapshot for every worker: the parallel read is one consistent read.
        let rows = conn
            .simple_query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_catalog.pg_export_snapshot()")
            .map_err(|e| err(f, e))?;
        snapshot = rows.into_iter().next().and_then(|r| r.into_iter().next().flatten());
        exporter = Some(Mutex::new(conn));
    } else {
        spare = Some(conn);
    }
    Ok((
        ScanGlobal {
            tasks,
            next: AtomicUsize::new(0),
            select_list,
            targets: Arc::new(targets),
            snapshot,
            _exporter: exporter,
            spare: Mutex::new(spare),
        },
        threads,
    ))
}

fn local_common(bind: &ScanBind, global: &ScanGlobal) -> Result<ScanLocal, BoxError> {
    let f = bind.function;
    let spare = global.spare.lock().ok().and_then(|mut s| s.take());
    let mut conn = match spare {
        Some(c) => c,
        None => pool::connect(&bind.cfg).map_err(|e| err(f, e))?,
    };
    if let Some(s) = &global.snapshot {
        conn.simple_query(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
            quote_literal(s)
        ))
        .map_err(|e| err(f, e))?;
    }
    Ok(ScanLocal {
        conn,
        copy: None,
        task_label: String::new(),
    })
}

fn scan_common(
    bind: &ScanBind,
    global: &ScanGlobal,
    local: &mut ScanLocal,
    out: &mut OutputChunk,
) -> Result<(), BoxError> {
    let cap = out.capacity();
    let mut rows = 0usize;
    {
        let mut writer = ChunkWriter::new(out);
        while rows < cap {
            if local.copy.is_none() {
                let i = global.next.fetch_add(1, Ordering::Relaxed);
                let Some(task) = global.tasks.get(i) else { break };
                let sql = task.copy_sql(&global.select_list, bind.params.filter.as_deref());
                local.task_label = task.relation.clone();
                local.copy = Some(local.conn.copy_out(&sql).map_err(|e| scan_error(bind, e))?);
            }
            let copy = local.copy.as_mut().expect("set above");
            match copy.next_tuple(&mut local.conn).map_err(|e| scan_error(bind, e))? {
                Some(tuple) => {
                    writer
                        .write_tuple(&global.targets, tuple, rows)
                        .map_err(|m| err(bind.function, format!("{}, {m}", bind.label())))?;
                    rows += 1;
                }
                None => local.copy = None,
            }
        }
    }
    out.set_len(rows);
    Ok(())
}

fn scan_error(bind: &ScanBind, e: PgError) -> BoxError {
    err(bind.function, format!("reading {} failed: {e}", bind.label()))
}

/// What a scan function is given: a table name, or a query.
pub trait ScanKind: 'static {
    const NAME: &'static str;
    const IS_QUERY: bool;
}

/// `pagila_extract('table', dsn := …)`.
pub struct Table;
impl ScanKind for Table {
    const NAME: &'static str = "pagila_extract";
    const IS_QUERY: bool = false;
}

/// `pagila_query('SELECT …', dsn := …)`: any read-only query, run by Postgres.
pub struct Query;
impl ScanKind for Query {
    const NAME: &'static str = "pagila_query";
    const IS_QUERY: bool = true;
}

/// The two scan functions differ only in what their argument names.
pub struct Scan<K>(std::marker::PhantomData<K>);
pub type ExtractFunction = Scan<Table>;
pub type QueryFunction = Scan<Query>;

impl<K: ScanKind> TableFunction for Scan<K> {
    type Bind = ScanBind;
    type Global = ScanGlobal;
    type Local = ScanLocal;
    const NAME: &'static str = K::NAME;
    const PROJECTION_PUSHDOWN: bool = true;
    const DEFER_BIND_ERRORS: bool = true;

    fn parameters() -> Vec<DuckType> {
        vec![DuckType::Varchar]
    }
    fn named_parameters() -> Vec<(&'static str, DuckType)> {
        ScanParams::named()
    }
    fn bind(state: &Arc<ExtensionState>, input: &BindInput) -> Result<Bound<ScanBind>, BoxError> {
        let arg = input.positional(0).map(|v| v.to_string_lossy());
        bind_common(K::NAME, state, input, arg, K::IS_QUERY)
    }
    fn init(bind: &ScanBind, projection: Vec<usize>) -> Result<(ScanGlobal, u64), BoxError> {
        init_common(bind, projection)
    }
    fn local(bind: &ScanBind, global: &ScanGlobal) -> Result<ScanLocal, BoxError> {
        local_common(bind, global)
    }
    fn scan(bind: &ScanBind, g: &ScanGlobal, l: &mut ScanLocal, out: &mut OutputChunk) -> Result<(), BoxError> {
        scan_common(bind, g, l, out)
    }
}
