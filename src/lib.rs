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
    unsafe { ffi::entry::run(info, access, register_all) }
}

fn register_all(loader: &ffi::entry::Loader) -> Result<(), ffi::BoxError> {
    let host_string = library_version();
    let host =
        HostVersion::parse(&host_string).ok_or_else(|| format!("unrecognised DuckDB version {host_string:?}"))?;
    let inner = inner::Inner::open(loader)?;
    let state = Arc::new(ExtensionState {
        host_string,
        host,
        inner,
    });
    settings::register(loader, &state.host)?;
    loader.table::<version::VersionFunction>(&state)?;
    loader.table::<extract::ExtractFunction>(&state)?;
    loader.table::<extract::QueryFunction>(&state)?;
    loader.table::<extract::snapshot::SnapshotFunction>(&state)?;
    loader.table::<extract::snapshot::ReleaseFunction>(&state)?;
    loader.table::<build::BuildFunction>(&state)?;
    loader.table::<build::CheckFunction>(&state)?;
    Ok(())
}
