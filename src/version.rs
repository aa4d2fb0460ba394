//! `pagila_star_version()`: which extension and which DuckDB.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::ffi::chunk::OutputChunk;
use crate::ffi::table::{BindInput, Bound, TableFunction};
use crate::ffi::BoxError;
use crate::state::ExtensionState;
use crate::types::DuckType;

pub const EXTENSION_VERSION: &str = env!("CARGO_PKG_VERSION");

pub struct VersionFunction;

pub struct VersionBind {
    duckdb: String,
}

impl TableFunction for VersionFunction {
    type Bind = VersionBind;
    type Global = AtomicBool;
    type Local = ();
    const NAME: &'static str = "pagila_star_version";

    fn bind(state: &Arc<ExtensionState>, _input: &BindInput) -> Result<Bound<VersionBind>, BoxError> {
        Ok(Bound {
            data: VersionBind {
                duckdb: state.host_string.clone(),
            },
            columns: vec![
                ("extension_version".into(), DuckType::Varchar),
                ("duckdb_version".into(), DuckType::Varchar),
                ("c_api_version".into(), DuckType::Varchar),
            ],
            cardinality: Some(1),
        })
    }

    fn init(_bind: &VersionBind, _projection: Vec<usize>) -> Result<(AtomicBool, u64), BoxError> {
        Ok((AtomicBool::new(false), 1))
    }

    fn local(_bind: &VersionBind, _global: &AtomicBool) -> Result<(), BoxError> {
        Ok(())
    }

    fn scan(bind: &VersionBind, done: &AtomicBool, _local: &mut (), out: &mut OutputChunk) -> Result<(), BoxError> {
        if done.swap(true, Ordering::SeqCst) {
            out.set_len(0);
            return Ok(());
        }
        out.vector(0).set_bytes(0, EXTENSION_VERSION.as_bytes());
        out.vector(1).set_bytes(0, bind.duckdb.as_bytes());
        out.vector(2).set_bytes(0, crate::ffi::entry::C_API_VERSION.as_bytes());
        out.set_len(1);
        Ok(())
    }
}
