//! The extension's settings, registered in one place with their help strings.
//! DuckDB lists them in `duckdb_settings()`.

use crate::ffi::entry::Loader;
use crate::ffi::host::HostVersion;
use crate::ffi::BoxError;

/// (name, default, description)
pub const SETTINGS: &[(&str, &str, &str)] = &[
    (
        "pagila_dsn",
        "",
        "PostgreSQL connection string (libpq key=value or postgresql:// URI) used by pagila_* functions \
         when no dsn := is given; empty means the libpq environment (PGHOST, PGPORT, …, ~/.pgpass)",
    ),
    (
        "pagila_statement_timeout",
        "",
        "statement_timeout for pagila_* Postgres sessions, e.g. '30s' or '500ms'; empty keeps the server's",
    ),
    (
        "pagila_early_writeback",
        "true",
        "while pagila_extract runs, ask Linux every 50 ms to start writing the DuckDB database files' dirty \
         pages to disk (sync_file_range; fdatasync every 250 ms), so that the commit's fsync has little left \
         to wait for; 'false' turns it off (on hosts without settings: PAGILA_EARLY_WRITEBACK=false)",
    ),
    (
        "pagila_read_pacing",
        "true",
        "while pagila_extract streams from a server on this machine and the CPUs are saturated, wait 4 ms \
         after draining a socket before reading it again, so that Postgres sends fewer, bigger TCP segments; \
         'false' turns it off (on hosts without settings: PAGILA_READ_PACING=false)",
    ),
];

/// Registers every setting where the host supports it (DuckDB ≥ 1.5.6). On older
/// hosts use `dsn :=` or the libpq environment instead.
pub fn register(loader: &Loader, host: &HostVersion) -> Result<(), BoxError> {
    if !host.has_client_context_api() {
        return Ok(());
    }
    for (name, default, description) in SETTINGS {
        loader.setting(host, name, default, description)?;
    }
    Ok(())
}

/// An on/off setting that is on by default: the setting's value if set, else the environment
/// variable `env` (for hosts without settings), else on. "false", "off", "0" and "no" are off.
pub fn switch(setting: Option<String>, env: &str) -> bool {
    let v = setting.filter(|s| !s.is_empty()).or_else(|| std::env::var(env).ok());
    match v.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
        Some(s) => !matches!(s.as_str(), "false" | "off" | "0" | "no"),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::switch;

    #[test]
    fn a_switch_is_on_unless_turned_off() {
        let env = "PAGILA_TEST_SWITCH_UNSET";
        assert!(switch(None, env));
        assert!(switch(Some(String::new()), env));
        assert!(switch(Some("true".into()), env));
        assert!(!switch(Some("false".into()), env));
        assert!(!switch(Some(" OFF ".into()), env));
        assert!(!switch(Some("0".into()), env));
        assert!(!switch(Some("no".into()), env));
    }
}
