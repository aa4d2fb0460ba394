//! `pagila_extract(table)` and `pagila_query(sql)`: Postgres rows streamed into
//! DuckDB through binary COPY, decoded as they arrive.
//!
//! bind connects and describes (no rows move); init plans the tasks and, when
//! there are several, exports a snapshot that every worker connection imports,
//! so that the parallel read equals one consistent read.

pub mod params;
pub mod plan;
pub mod readahead;
pub mod sink;
pub mod snapshot;
pub mod writeback;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::ffi::chunk::OutputChunk;
use crate::ffi::table::{BindInput, Bound, TableFunction};
use crate::ffi::BoxError;
use crate::inner::{Inner, Scanning};
use crate::pg::catalog::{self, Column, Relation};
use crate::pg::pacing;
use crate::pg::pool::{self, Pooled};
use crate::pg::PgConfig;
use crate::state::ExtensionState;
use crate::types::DuckType;
use params::ScanParams;
use plan::Task;
use readahead::{Block, Job, Next, ReadAhead};
use sink::{ChunkWriter, Target};
use writeback::Writeback;

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
    /// The extension's connections: where early writeback looks up the database files,
    /// and whose watcher a running scan tells that a user's connection is open.
    inner: Arc<Inner>,
    /// Early writeback of DuckDB's database files while the scan streams.
    writeback: bool,
    /// Paced reads while the CPUs are saturated (pg/pacing.rs).
    pacing: bool,
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
    /// The connections streaming the tasks (dropped first: it stops them).
    reader: ReadAhead,
    targets: Arc<Vec<Target>>,
    /// Holds the exported snapshot open until the scan ends.
    _exporter: Option<Mutex<Pooled>>,
    _writeback: Option<Writeback>,
    _scanning: Scanning,
}

/// A scan thread: its number, and per connection the blocks it holds (see readahead).
pub struct ScanLocal {
    me: usize,
    held: Vec<Held>,
}

/// A connection's blocks a scan thread holds, in the order read; the first is written up
/// to `pos`.
#[derive(Default)]
struct Held {
    blocks: VecDeque<Block>,
    pos: usize,
}

impl Held {
    /// Tuples not yet written.
    fn rows(&self) -> usize {
        self.blocks.iter().map(Block::len).sum::<usize>() - self.pos
    }
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
    // Said before connecting: Postgres would answer "relation \"\" does not exist", or for an
    // empty query nothing at all ("the query returns no columns").
    if arg
        .trim_matches(|c: char| c.is_whitespace() || (is_query && c == ';'))
        .is_empty()
    {
        return Err(err(
            function,
            if is_query {
                "the query is empty"
            } else {
                "the table name is empty"
            },
        ));
    }
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
        // A DuckDB table needs at least one column; Postgres allows none.
        return Err(err(
            function,
            match &source {
                Source::Table(rel) => format!("table {} has no columns: there is nothing to read", rel.display),
                Source::Query(_) => "the query returns no columns".to_string(),
            },
        ));
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
            inner: state.inner.clone(),
            writeback: writeback::enabled(input.setting(state, "pagila_early_writeback")),
            pacing: pacing::enabled(input.setting(state, "pagila_read_pacing")),
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
            // With a filter (an incremental build's change window, a user's predicate),
            // one COPY per leaf: Postgres plans the filter as a whole (an index scan, or
            // its own parallel scan), where page ranges would repeat an index scan in
            // every range.
            let split = conn.server_version_num >= 140_000 && bind.params.filter.is_none();
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
    // Connections: as many as asked for, else one per core (this is Postgres'
    // parallelism, independent of how many threads DuckDB gives the scan).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u64);
    let connections = threads.min(bind.params.threads.unwrap_or(cores)).max(1);
    let mut snapshot = bind.params.snapshot.clone();
    let mut exporter = None;
    let mut first = None;
    if snapshot.is_none() && connections > 1 {
        // One snapshot for every connection: the parallel read is one consistent read.
        let rows = conn
            .simple_query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_catalog.pg_export_snapshot()")
            .map_err(|e| err(f, e))?;
        snapshot = rows.into_iter().next().and_then(|r| r.into_iter().next().flatten());
        exporter = Some(Mutex::new(conn));
    } else {
        first = Some(conn);
    }
    let job = Job {
        cfg: bind.cfg.clone(),
        tasks,
        select_list,
        filter: bind.params.filter.clone(),
        snapshot,
        function: f,
        label: bind.label(),
        pacing: bind.pacing,
    };
    Ok((
        ScanGlobal {
            reader: ReadAhead::start(job, connections as usize, first),
            targets: Arc::new(targets),
            _exporter: exporter,
            _writeback: bind.writeback.then(|| Writeback::start(bind.inner.clone())).flatten(),
            _scanning: bind.inner.scanning(),
        },
        threads,
    ))
}

fn local_common(_bind: &ScanBind, global: &ScanGlobal) -> Result<ScanLocal, BoxError> {
    let connections = global.reader.connections();
    Ok(ScanLocal {
        me: global.reader.join(),
        held: (0..connections).map(|_| Held::default()).collect(),
    })
}

/// Writes one chunk, of one connection's consecutive tuples.
fn scan_common(
    bind: &ScanBind,
    global: &ScanGlobal,
    local: &mut ScanLocal,
    out: &mut OutputChunk,
) -> Result<(), BoxError> {
    let cap = out.capacity();
    let (j, blocks) = match global.reader.next(local.me, |j| local.held[j].rows(), cap)? {
        Next::Blocks(j, blocks) => (j, blocks),
        Next::End => {
            out.set_len(0);
            return Ok(());
        }
    };
    let held = &mut local.held[j];
    held.blocks.extend(blocks);
    let mut rows = 0usize;
    {
        let mut writer = ChunkWriter::new(out);
        while rows < cap {
            let Some(block) = held.blocks.front() else {
                break;
            };
            let n = (block.len() - held.pos).min(cap - rows);
            writer
                .write_tuples(
                    &global.targets,
                    block.data(),
                    &block.spans()[held.pos..held.pos + n],
                    rows,
                )
                .map_err(|m| err(bind.function, format!("{}, {m}", bind.label())))?;
            rows += n;
            held.pos += n;
            if held.pos >= block.len() {
                if let Some(done) = held.blocks.pop_front() {
                    global.reader.recycle(done);
                }
                held.pos = 0;
            }
        }
    }
    out.set_len(rows);
    Ok(())
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
