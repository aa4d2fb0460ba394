//! Registering extension settings (`SET pagila_dsn = …`). The config-option
//! entries of the C API exist from DuckDB 1.5.6 on; callers check the host first.

use super::{cstring, sys, BoxError};

/// Registers a VARCHAR setting with a default and a help string.
///
/// # Safety
/// `con` must be a live connection, and the host must have the config-option
/// API (DuckDB ≥ 1.5.6): on older hosts these function-table entries do not exist.
pub unsafe fn register_varchar(
    con: sys::duckdb_connection,
    name: &str,
    default: &str,
    description: &str,
) -> Result<(), BoxError> {
    let mut opt = sys::duckdb_create_config_option();
    let n = cstring(name);
    let d = cstring(description);
    let def = cstring(default);
    sys::duckdb_config_option_set_name(opt, n.as_ptr());
    let mut t = sys::duckdb_create_logical_type(sys::DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR);
    sys::duckdb_config_option_set_type(opt, t);
    sys::duckdb_destroy_logical_type(&mut t);
    let mut v = sys::duckdb_create_varchar(def.as_ptr());
    sys::duckdb_config_option_set_default_value(opt, v);
    sys::duckdb_destroy_value(&mut v);
    sys::duckdb_config_option_set_description(opt, d.as_ptr());
    let rc = sys::duckdb_register_config_option(con, opt);
    sys::duckdb_destroy_config_option(&mut opt);
    if rc != sys::duckdb_state_DuckDBSuccess {
        return Err(format!("could not register setting {name}").into());
    }
    Ok(())
}
