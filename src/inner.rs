//! The extension's own DuckDB connections, for the SQL a CALL runs.
//!
//! They are opened at LOAD (the only moment the C API hands out the database)
//! and hold the database open. So that closing the user's last connection still
//! closes the database (and releases a database file to other processes and to
//! a reopen in this process), a watcher thread polls `duckdb_connection_count()`
//! and disconnects ours once only ours are left.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::ffi::conn::{Connection, InterruptHandle};
use crate::ffi::entry::Loader;

/// How often the watcher looks for the user's connections. Each look is a query
/// (about 0.5 ms of CPU): every 20 ms that was 3 % of a core, taken from the
/// extracts and builds running meanwhile; every 100 ms keeps the file released
/// well within a second of the user's last close.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// How long after a build the watcher waits before its CHECKPOINT. A user's own
/// CHECKPOINT fails ("other write transactions active") while ours runs, and the
/// README tells short-lived sessions to end with one: `CALL …; CHECKPOINT;` runs it
/// within milliseconds of the CALL, well before ours.
const CHECKPOINT_AFTER: Duration = Duration::from_secs(2);

pub struct Inner {
    /// Runs a build's transaction.
    work: Mutex<Option<Connection>>,
    /// Writes the run log in its own transactions, so it survives a failed build.
    log: Mutex<Option<Connection>>,
    work_interrupt: InterruptHandle,
    closed: AtomicBool,
    /// A build committed at this time: checkpoint once the database is quiet, so
    /// that the file holds the star without its WAL.
    checkpoint_wanted: Mutex<Option<Instant>>,
    /// Extracts streaming now (see [`Inner::scanning`]).
    scans: AtomicUsize,
}

/// Held by a running extract: a user's connection is running it, so the watcher
/// need not ask DuckDB whether one is left. Its query cost 0.06 to 0.09 CPU-s over a
/// 10M-row extract on two busy cores, CPU the extract's Postgres backends need.
pub struct Scanning(Arc<Inner>);

impl Drop for Scanning {
    fn drop(&mut self) {
        self.0.scans.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why the extension's connections are unavailable.
pub const CLOSED: &str = "pagila_star: the database is closing (its last user connection was closed)";

impl Inner {
    /// Opens the two connections and starts the watcher.
    pub fn open(loader: &Loader) -> Result<Arc<Inner>, String> {
        let work = loader.connect()?;
        let log = loader.connect()?;
        let inner = Arc::new(Inner {
            work_interrupt: work.interrupt_handle(),
            work: Mutex::new(Some(work)),
            log: Mutex::new(Some(log)),
            closed: AtomicBool::new(false),
            checkpoint_wanted: Mutex::new(None),
            scans: AtomicUsize::new(0),
        });
        let w = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("pagila_star-watch".into())
            .spawn(move || loop {
                std::thread::sleep(WATCH_EVERY);
                let Some(inner) = w.upgrade() else { return };
                let left = inner.only_ours_left();
                if left {
                    inner.close();
                    return;
                }
                inner.checkpoint_if_wanted();
            })
            .map_err(|e| e.to_string())?;
        Ok(inner)
    }

    /// Marks an extract as running until the guard drops.
    pub fn scanning(self: &Arc<Self>) -> Scanning {
        self.scans.fetch_add(1, Ordering::SeqCst);
        Scanning(Arc::clone(self))
    }

    fn only_ours_left(&self) -> bool {
        // A running extract runs on a user's connection.
        if self.scans.load(Ordering::SeqCst) > 0 {
            return false;
        }
        // try_lock: a busy log connection means a build is running, so a user is there.
        let Ok(guard) = self.log.try_lock() else { return false };
        let Some(conn) = guard.as_ref() else { return true };
        match conn.query("SELECT * FROM duckdb_connection_count()") {
            Ok(rows) => rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n <= 2),
            Err(_) => false,
        }
    }

    /// Asks the watcher for a CHECKPOINT, [`CHECKPOINT_AFTER`] from now.
    pub fn want_checkpoint(&self) {
        if let Ok(mut w) = self.checkpoint_wanted.lock() {
            *w = Some(Instant::now());
        }
    }

    /// A plain CHECKPOINT (never FORCE: that would abort the user's
    /// transactions) from the watcher; retried on the next tick while it fails.
    fn checkpoint_if_wanted(&self) {
        let Ok(mut wanted) = self.checkpoint_wanted.try_lock() else {
            return;
        };
        if !wanted.is_some_and(|t| t.elapsed() >= CHECKPOINT_AFTER) {
            return;
        }
        let Ok(guard) = self.log.try_lock() else { return };
        if let Some(conn) = guard.as_ref() {
            if conn.query("CHECKPOINT").is_ok() {
                *wanted = None;
            }
        }
    }

    /// Disconnects both connections (the database may shut down right here).
    fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let work = self.work.lock().map(|mut g| g.take()).unwrap_or(None);
        let log = self.log.lock().map(|mut g| g.take()).unwrap_or(None);
        drop(work);
        drop(log);
    }

    pub fn work(&self) -> Result<ConnGuard<'_>, String> {
        ConnGuard::new(
            self.work
                .lock()
                .map_err(|_| "pagila_star: connection lock poisoned".to_string())?,
        )
    }

    pub fn log(&self) -> Result<ConnGuard<'_>, String> {
        ConnGuard::new(
            self.log
                .lock()
                .map_err(|_| "pagila_star: connection lock poisoned".to_string())?,
        )
    }

    /// Interrupts whatever the work connection is running.
    pub fn interrupt_work(&self) {
        if !self.closed.load(Ordering::SeqCst) {
            self.work_interrupt.interrupt();
        }
    }
}

/// A locked, open inner connection.
pub struct ConnGuard<'a>(MutexGuard<'a, Option<Connection>>);

impl<'a> ConnGuard<'a> {
    fn new(g: MutexGuard<'a, Option<Connection>>) -> Result<ConnGuard<'a>, String> {
        if g.is_none() {
            return Err(CLOSED.into());
        }
        Ok(ConnGuard(g))
    }
}

impl std::ops::Deref for ConnGuard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.0.as_ref().expect("checked in new")
    }
}
