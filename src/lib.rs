//! pagila_star: a DuckDB extension that streams PostgreSQL tables into DuckDB
//! (`pagila_extract`) and builds the Pagila star schema (`pagila_build_star`).

pub mod build;
pub mod extract;
pub mod ffi;
pub mod inner;
pub mod pg;
pub mod settings;
pub mod state;
pub mod types;
pub mod version;

use std::sync::Arc;

use ffi::host::{library_version, HostVersion};
use ffi::sys;
use state::ExtensionState;

/// The entry point DuckDB looks up: `<name>_init_c_api`.
///
/// # Safety
/// Called by DuckDB with its own `info` and `access` pointers.
#[no_mangle]
pub unsafe extern "C" fn pagila_star_init_c_api(
    info: sys::duckdb_extension_info,
    access: *const sys::duckdb_extension_access,
) -> bool {
    // SAFETY: forwarded unchanged from DuckDB.
    unsafe { ffi::entry::run(info, access, |db, con| register_all(db, con)) }
}

fn register_all(db: sys::duckdb_database, con: sys::duckdb_connection) -> Result<(), ffi::BoxError> {
    let host_string = library_version();
    let host =
        HostVersion::parse(&host_string).ok_or_else(|| format!("unrecognised DuckDB version {host_string:?}"))?;
    // SAFETY: db is the live handle of the database being loaded into.
    let inner = unsafe { inner::Inner::open(db)? };
    let state = Arc::new(ExtensionState {
        host_string,
        host,
        inner,
    });
    settings::register(con, &state.host)?;
    ffi::table::register::<version::VersionFunction>(con, &state)?;
    ffi::table::register::<extract::ExtractFunction>(con, &state)?;
    ffi::table::register::<extract::QueryFunction>(con, &state)?;
    ffi::table::register::<extract::snapshot::SnapshotFunction>(con, &state)?;
    ffi::table::register::<extract::snapshot::ReleaseFunction>(con, &state)?;
    ffi::table::register::<build::BuildFunction>(con, &state)?;
    ffi::table::register::<build::CheckFunction>(con, &state)?;
    Ok(())
}
