//! `pagila_snapshot()` exports a Postgres snapshot and keeps it open, so that
//! several `pagila_extract(…, snapshot := id)` calls read the same data;
//! `pagila_snapshot_release(id)` ends it. Open snapshots also end when the
//! process exits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::ffi::chunk::OutputChunk;
use crate::ffi::table::{BindInput, Bound, TableFunction};
use crate::ffi::BoxError;
use crate::pg::{Connection, PgConfig};
use crate::state::ExtensionState;
use crate::types::DuckType;

/// Connections that hold exported snapshots, by snapshot id.
fn registry() -> &'static Mutex<HashMap<String, Connection>> {
    static R: OnceLock<Mutex<HashMap<String, Connection>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Opens a REPEATABLE READ transaction and exports its snapshot. The returned
/// connection must stay open (and idle in that transaction) while the snapshot is used.
pub fn export(cfg: &PgConfig) -> Result<(Connection, String), BoxError> {
    let mut conn = Connection::connect(cfg)?;
    let rows =
        conn.simple_query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_catalog.pg_export_snapshot()")?;
    let id = rows
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten())
        .ok_or("pg_export_snapshot returned nothing")?;
    Ok((conn, id))
}

pub struct SnapshotFunction;

pub struct SnapshotBind {
    cfg: PgConfig,
}

impl TableFunction for SnapshotFunction {
    type Bind = SnapshotBind;
    type Global = AtomicBool;
    type Local = ();
    const NAME: &'static str = "pagila_snapshot";
    const DEFER_BIND_ERRORS: bool = true;

    fn named_parameters() -> Vec<(&'static str, DuckType)> {
        super::params::connection_parameters()
    }

    fn bind(state: &Arc<ExtensionState>, input: &BindInput) -> Result<Bound<SnapshotBind>, BoxError> {
        let cfg = super::params::resolve_config(input, state).map_err(|e| format!("{}: {e}", Self::NAME))?;
        Ok(Bound {
            data: SnapshotBind { cfg },
            columns: vec![("snapshot_id".into(), DuckType::Varchar)],
            cardinality: Some(1),
        })
    }

    fn init(_: &SnapshotBind, _: Vec<usize>) -> Result<(AtomicBool, u64), BoxError> {
        Ok((AtomicBool::new(false), 1))
    }

    fn local(_: &SnapshotBind, _: &AtomicBool) -> Result<(), BoxError> {
        Ok(())
    }

    fn scan(bind: &SnapshotBind, done: &AtomicBool, _: &mut (), out: &mut OutputChunk) -> Result<(), BoxError> {
        if done.swap(true, Ordering::SeqCst) {
            out.set_len(0);
            return Ok(());
        }
        let (conn, id) = export(&bind.cfg).map_err(|e| format!("{}: {e}", Self::NAME))?;
        registry()
            .lock()
            .map_err(|_| "snapshot registry poisoned")?
            .insert(id.clone(), conn);
        out.vector(0).set_bytes(0, id.as_bytes());
        out.set_len(1);
        Ok(())
    }
}

pub struct ReleaseFunction;

pub struct ReleaseBind {
    id: String,
}

impl TableFunction for ReleaseFunction {
    type Bind = ReleaseBind;
    type Global = AtomicBool;
    type Local = ();
    const NAME: &'static str = "pagila_snapshot_release";

    fn parameters() -> Vec<DuckType> {
        vec![DuckType::Varchar]
    }

    fn bind(_: &Arc<ExtensionState>, input: &BindInput) -> Result<Bound<ReleaseBind>, BoxError> {
        let id = input
            .positional(0)
            .map(|v| v.to_string_lossy())
            .ok_or("pagila_snapshot_release: the snapshot id must not be NULL")?;
        Ok(Bound {
            data: ReleaseBind { id },
            columns: vec![("released".into(), DuckType::Boolean)],
            cardinality: Some(1),
        })
    }

    fn init(_: &ReleaseBind, _: Vec<usize>) -> Result<(AtomicBool, u64), BoxError> {
        Ok((AtomicBool::new(false), 1))
    }

    fn local(_: &ReleaseBind, _: &AtomicBool) -> Result<(), BoxError> {
        Ok(())
    }

    fn scan(bind: &ReleaseBind, done: &AtomicBool, _: &mut (), out: &mut OutputChunk) -> Result<(), BoxError> {
        if done.swap(true, Ordering::SeqCst) {
            out.set_len(0);
            return Ok(());
        }
        let conn = registry()
            .lock()
            .map_err(|_| "snapshot registry poisoned")?
            .remove(&bind.id);
        let released = conn.is_some();
        if let Some(mut c) = conn {
            let _ = c.simple_query("COMMIT");
        }
        out.vector(0).set::<bool>(0, released);
        out.set_len(1);
        Ok(())
    }
}
