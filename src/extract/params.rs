//! Typed parameters of the extract functions and where the connection comes from:
//! the `dsn :=` parameter, else the `pagila_dsn` setting, else the libpq
//! environment (PGHOST, PGPORT, …, ~/.pgpass).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::ffi::table::BindInput;
use crate::ffi::BoxError;
use crate::pg::catalog::NumericPolicy;
use crate::pg::PgConfig;
use crate::state::ExtensionState;
use crate::types::DuckType;

/// Named parameters every function that talks to Postgres accepts.
pub fn connection_parameters() -> Vec<(&'static str, DuckType)> {
    vec![
        ("dsn", DuckType::Varchar),
        ("connect_timeout", DuckType::BigInt),
        ("statement_timeout", DuckType::Varchar),
    ]
}

/// The DSN prefix of a connection a running build registered (see [`RunDsn`]).
const RUN_DSN_PREFIX: &str = "pagila-star-run:";

fn run_configs() -> &'static Mutex<HashMap<u64, PgConfig>> {
    static R: OnceLock<Mutex<HashMap<u64, PgConfig>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A build's resolved connection, named by a token, so that the SQL the build
/// runs (`pagila_extract(…, dsn := 'pagila-star-run:7')`) never carries a password.
/// Unregistered on drop.
pub struct RunDsn(u64);

impl RunDsn {
    pub fn register(cfg: PgConfig) -> RunDsn {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, AtomicOrdering::Relaxed);
        let mut cfg = cfg;
        cfg.pool = Some(id);
        if let Ok(mut m) = run_configs().lock() {
            m.insert(id, cfg);
        }
        RunDsn(id)
    }

    /// The DSN text to put into SQL.
    pub fn dsn(&self) -> String {
        format!("{RUN_DSN_PREFIX}{}", self.0)
    }
}

impl Drop for RunDsn {
    fn drop(&mut self) {
        if let Ok(mut m) = run_configs().lock() {
            m.remove(&self.0);
        }
        crate::pg::pool::close(self.0);
    }
}

/// The connection settings for a call.
pub fn resolve_config(input: &BindInput, state: &ExtensionState) -> Result<PgConfig, BoxError> {
    let dsn = input
        .named_str("dsn")
        .or_else(|| input.setting(state, "pagila_dsn").filter(|s| !s.is_empty()))
        .unwrap_or_default();
    let mut cfg = match dsn.strip_prefix(RUN_DSN_PREFIX) {
        Some(id) => id
            .parse::<u64>()
            .ok()
            .and_then(|id| run_configs().lock().ok()?.get(&id).cloned())
            .ok_or("this build connection has ended")?,
        None => PgConfig::from_dsn(&dsn)?,
    };
    if input.named_str("dsn").is_none() && !dsn.is_empty() {
        // The setting is readable by anyone (duckdb_settings(), current_setting()).
        let probe = PgConfig::resolve(&dsn, &|_| None)?;
        if probe.password.is_some() {
            return Err(
                "the pagila_dsn setting must not contain a password: settings are readable by anyone \
                 through duckdb_settings(); put the password in PGPASSWORD or ~/.pgpass (or pass dsn := …)"
                    .into(),
            );
        }
    }
    if let Some(t) = input.named_i64("connect_timeout") {
        cfg.connect_timeout = (t > 0).then(|| Duration::from_secs(t.max(2) as u64));
    }
    let st = input.named_str("statement_timeout").or_else(|| {
        input
            .setting(state, "pagila_statement_timeout")
            .filter(|s| !s.is_empty())
    });
    if let Some(t) = st {
        // Reuse the DSN parser's rules for durations.
        let probe = PgConfig::resolve(&format!("statement_timeout='{}'", t.replace('\'', "")), &|_| None)?;
        cfg.statement_timeout = probe.statement_timeout;
    }
    Ok(cfg)
}

/// Parameters of `pagila_extract` / `pagila_query`.
pub struct ScanParams {
    pub snapshot: Option<String>,
    pub threads: Option<u64>,
    pub numeric: NumericPolicy,
    pub filter: Option<String>,
}

impl ScanParams {
    pub fn named() -> Vec<(&'static str, DuckType)> {
        let mut v = connection_parameters();
        v.extend([
            ("snapshot", DuckType::Varchar),
            ("threads", DuckType::BigInt),
            ("unconstrained_numeric", DuckType::Varchar),
            ("filter", DuckType::Varchar),
        ]);
        v
    }

    pub fn from_input(input: &BindInput) -> Result<ScanParams, BoxError> {
        let threads = match input.named_i64("threads") {
            Some(t) if t < 1 => return Err(format!("threads must be at least 1, not {t}").into()),
            t => t.map(|t| t as u64),
        };
        let numeric = match input.named_str("unconstrained_numeric") {
            Some(s) => NumericPolicy::parse(&s)?,
            None => NumericPolicy::DEFAULT,
        };
        let snapshot = input.named_str("snapshot").filter(|s| !s.is_empty());
        if let Some(s) = &snapshot {
            if !s.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                return Err(format!("'{s}' is not a Postgres snapshot id (as returned by pagila_snapshot())").into());
            }
        }
        Ok(ScanParams {
            snapshot,
            threads,
            numeric,
            filter: input.named_str("filter").filter(|s| !s.trim().is_empty()),
        })
    }
}
