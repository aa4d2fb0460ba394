//! Errors of the Postgres layer. Messages never contain a password: configs are
//! only ever shown through `PgConfig::redacted`.

use std::fmt;

/// A server ErrorResponse, with the fields we show.
#[derive(Clone, Debug, Default)]
pub struct ServerError {
    pub severity: String,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (SQLSTATE {})", self.severity, self.message, self.code)?;
        if let Some(d) = &self.detail {
            write!(f, "; {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "; hint: {h}")?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub enum PgError {
    /// The DSN or a setting is malformed.
    Config(String),
    /// No connection could be made (refused, unreachable, timed out, DNS).
    Connect { target: String, reason: String },
    /// TLS could not be set up or verified.
    Tls { target: String, reason: String },
    /// The server rejected the credentials.
    Auth { target: String, error: Box<ServerError> },
    /// The server reported an error for a statement.
    Server(Box<ServerError>),
    /// The connection broke (server closed it, backend terminated, I/O error).
    Io(String),
    /// The server sent something we did not expect.
    Protocol(String),
    /// The query was cancelled on our request (DuckDB interrupt).
    Cancelled,
}

impl PgError {
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            PgError::Server(e) | PgError::Auth { error: e, .. } => Some(&e.code),
            _ => None,
        }
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgError::Config(m) => write!(f, "invalid PostgreSQL connection string: {m}"),
            PgError::Connect { target, reason } => {
                write!(f, "could not connect to PostgreSQL at {target}: {reason}")
            }
            PgError::Tls { target, reason } => write!(f, "TLS with PostgreSQL at {target} failed: {reason}"),
            PgError::Auth { target, error } => {
                write!(f, "PostgreSQL at {target} rejected the login: {}", error.message)
            }
            PgError::Server(e) => write!(f, "PostgreSQL {e}"),
            PgError::Io(m) => write!(f, "the PostgreSQL connection broke: {m}"),
            PgError::Protocol(m) => write!(f, "PostgreSQL protocol error: {m}"),
            PgError::Cancelled => f.write_str("the PostgreSQL query was cancelled (interrupted)"),
        }
    }
}

impl std::error::Error for PgError {}

impl From<std::io::Error> for PgError {
    fn from(e: std::io::Error) -> PgError {
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof => PgError::Io("server closed the connection unexpectedly".into()),
            _ => PgError::Io(e.to_string()),
        }
    }
}
