//! The extension entry point DuckDB calls at LOAD.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{cstring, panic_message, sys, BoxError};

/// What the extension's init may use while DuckDB loads it: the database and a
/// connection to it, both live for the duration of the entry point only.
pub struct Loader {
    db: sys::duckdb_database,
    con: sys::duckdb_connection,
}

impl Loader {
    /// Registers a table function.
    pub fn table<F: super::table::TableFunction>(
        &self,
        state: &std::sync::Arc<crate::state::ExtensionState>,
    ) -> Result<(), BoxError> {
        // SAFETY: con is live during LOAD (Loader exists only inside run()).
        unsafe { super::table::register::<F>(self.con, state) }
    }

    /// Registers a VARCHAR setting; the caller checks that the host has the
    /// config-option API (DuckDB >= 1.5.6).
    pub fn setting(
        &self,
        host: &super::host::HostVersion,
        name: &str,
        default: &str,
        help: &str,
    ) -> Result<(), BoxError> {
        if !host.has_client_context_api() {
            return Err(format!("DuckDB {host} cannot register settings").into());
        }
        // SAFETY: con is live during LOAD and the host has the config-option API.
        unsafe { super::setting::register_varchar(self.con, name, default, help) }
    }

    /// A new connection to the database being loaded into, owned by the caller.
    pub fn connect(&self) -> Result<super::conn::Connection, String> {
        // SAFETY: db is live during LOAD.
        unsafe { super::conn::Connection::open(self.db) }
    }
}

/// The C API version we ask DuckDB for: the v1.2.0 band every supported host has.
pub const C_API_VERSION: &str = "v1.2.0";

/// Runs the extension's init with a connection to the loading database.
///
/// Errors and panics are reported through DuckDB's `set_error` and fail the
/// LOAD; they never unwind into the host.
///
/// # Safety
/// `info` and `access` must be the pointers DuckDB passed to the entry point.
pub unsafe fn run(
    info: sys::duckdb_extension_info,
    access: *const sys::duckdb_extension_access,
    init: impl FnOnce(&Loader) -> Result<(), BoxError>,
) -> bool {
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<bool, BoxError> {
        // SAFETY: info and access come straight from DuckDB.
        let have_api = unsafe { sys::duckdb_rs_extension_api_init(info, access, C_API_VERSION)? };
        if !have_api {
            // DuckDB has already recorded why (API version mismatch).
            return Ok(false);
        }
        // SAFETY: access is valid for the duration of the entry point.
        let get_database = unsafe { (*access).get_database }.ok_or("DuckDB gave no get_database")?;
        // SAFETY: get_database returns a pointer to the database handle, valid
        // during LOAD, or null with the reason already recorded.
        let db_ptr = unsafe { get_database(info) };
        if db_ptr.is_null() {
            return Ok(false);
        }
        // SAFETY: non-null, points to a live handle during LOAD.
        let db = unsafe { *db_ptr };
        let mut con: sys::duckdb_connection = std::ptr::null_mut();
        // SAFETY: db is live during LOAD.
        if unsafe { sys::duckdb_connect(db, &mut con) } != sys::duckdb_state_DuckDBSuccess {
            return Err("pagila_star: could not connect to the loading database".into());
        }
        let r = init(&Loader { db, con });
        // SAFETY: con was opened above and is closed once.
        unsafe { sys::duckdb_disconnect(&mut con) };
        r.map(|_| true)
    }));
    let msg = match outcome {
        Ok(Ok(v)) => return v,
        Ok(Err(e)) => format!("pagila_star failed to load: {e}"),
        Err(p) => format!("pagila_star failed to load (panic): {}", panic_message(p.as_ref())),
    };
    // SAFETY: access is valid during the entry point; DuckDB copies the message.
    unsafe {
        if let Some(set_error) = (*access).set_error {
            let c = cstring(&msg);
            set_error(info, c.as_ptr());
        }
    }
    false
}
