//! Idle sessions kept for reuse within one build, so that its thirty-odd
//! extracts do not each pay for a new backend and a SCRAM exchange.
//!
//! Only configs that carry a pool key (set by the build for its own connection)
//! are pooled; a user's `pagila_extract` opens and closes its own sessions.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, OnceLock};

use super::{Connection, PgConfig, PgError};

fn idle() -> &'static Mutex<HashMap<u64, Vec<Connection>>> {
    static P: OnceLock<Mutex<HashMap<u64, Vec<Connection>>>> = OnceLock::new();
    P.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A session that goes back to its pool (if it has one) when dropped idle.
pub struct Pooled {
    conn: Option<Connection>,
    key: Option<u64>,
}

/// A session for `cfg`: an idle one from its pool, or a new one.
pub fn connect(cfg: &PgConfig) -> Result<Pooled, PgError> {
    if let Some(key) = cfg.pool {
        let reused = idle().lock().ok().and_then(|mut m| m.get_mut(&key).and_then(Vec::pop));
        if let Some(conn) = reused {
            return Ok(Pooled {
                conn: Some(conn),
                key: Some(key),
            });
        }
    }
    Ok(Pooled {
        conn: Some(Connection::connect(cfg)?),
        key: cfg.pool,
    })
}

/// Closes every idle session of a pool (the build is over).
pub fn close(key: u64) {
    let conns = idle().lock().ok().and_then(|mut m| m.remove(&key));
    drop(conns);
}

impl Deref for Pooled {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("present until drop")
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("present until drop")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let (Some(key), Some(mut conn)) = (self.key, self.conn.take()) else {
            return;
        };
        // A session still streaming (an interrupted scan) is cancelled by its own
        // drop; an idle one leaves any snapshot transaction and is kept.
        if conn.is_busy() || conn.simple_query("ROLLBACK").is_err() {
            return;
        }
        if let Ok(mut m) = idle().lock() {
            m.entry(key).or_default().push(conn);
        }
    }
}
