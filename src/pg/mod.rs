//! The PostgreSQL side: connection settings, our wire client, TLS, the catalog,
//! and the binary COPY decoder. Nothing here knows about DuckDB's C API.

pub mod catalog;
pub mod config;
pub mod decode;
pub mod error;
pub mod pacing;
pub mod pool;
pub mod tls;
pub mod wire;

pub use config::PgConfig;
pub use error::PgError;
pub use wire::Connection;

/// `'text'` as an SQL string literal (standard_conforming_strings is on).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `"name"` as an SQL identifier.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
