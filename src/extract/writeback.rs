//! Early writeback of DuckDB's database files while an extract runs.
//!
//! A big `CREATE TABLE AS` writes its row groups into the database file as they fill,
//! and Linux keeps them in the page cache until the commit's `fsync`, which then waits
//! for all of them at once while the cores sit idle: 0.3 s at the end of a 5 s load of
//! 10M rentals on the bench machine. While an extract runs, a thread asks the kernel
//! every [`EVERY`] to start writing out what is dirty by then
//! (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, as Postgres' `backend_flush_after`
//! does), so that the disk works during the load and the commit finds little left.
//!
//! Written-back pages are not the whole of it: on ext4 the commit's `fsync` also
//! commits the journal entries that allocated the file's new blocks, and with some
//! 200 MB of new blocks that took 155 ms on the bench machine with nothing left dirty,
//! the cores idle again. So every [`SYNC_EVERY`] ticks the thread calls `fdatasync`
//! instead, which commits those allocations as they accrue: the commit's `fsync` of
//! 10M rentals then took a few ms.
//!
//! This changes nothing about durability: it only starts writes that the commit's
//! own `fsync` would make anyway, and DuckDB's `fsync` still decides what is on disk.
//! `SET pagila_early_writeback = false` (DuckDB ≥ 1.5.6; `PAGILA_EARLY_WRITEBACK=false`
//! in the environment on every host) turns it off.

use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use crate::inner::Inner;

/// How often the dirty pages are handed to the kernel.
const EVERY: Duration = Duration::from_millis(50);
/// Every this many ticks, `fdatasync` rather than only starting the writes (250 ms).
const SYNC_EVERY: u32 = 5;

/// The database files of the DuckDB this extension is loaded into that can be
/// written: every attached DuckDB database with a file (the target of the
/// `CREATE TABLE AS` is one of them; the others cost a look at their dirty pages).
const FILES_SQL: &str = "SELECT path FROM duckdb_databases() \
     WHERE type = 'duckdb' AND path IS NOT NULL AND NOT internal AND NOT readonly";

/// Stops its thread when dropped (at the end of the scan).
pub struct Writeback {
    _stop: Sender<()>,
}

impl Writeback {
    /// Starts the thread; None where the platform has no `sync_file_range`.
    pub fn start(inner: Arc<Inner>) -> Option<Writeback> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("pagila_star-writeback".into())
            .spawn(move || {
                // The files are looked up here rather than in init: the query waits for
                // the extension's log connection, which a build may hold for a moment.
                let files = database_files(&inner);
                drop(inner);
                if files.is_empty() {
                    return;
                }
                let mut tick = 0u32;
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(EVERY) {
                    tick += 1;
                    let sync = tick.is_multiple_of(SYNC_EVERY);
                    for &fd in &files {
                        if sync {
                            sync_data(fd);
                        } else {
                            start_writeback(fd);
                        }
                    }
                }
            })
            .ok()?;
        Some(Writeback { _stop: tx })
    }
}

/// Whether early writeback is on: the setting, else the environment, else on.
pub fn enabled(setting: Option<String>) -> bool {
    crate::settings::switch(setting, "PAGILA_EARLY_WRITEBACK")
}

/// DuckDB's own descriptors of those files. Never a descriptor of our own: closing any
/// descriptor of a file drops every POSIX lock this process holds on it, and DuckDB
/// locks its database files that way (`fcntl(F_SETLK)`).
fn database_files(inner: &Inner) -> Vec<RawFd> {
    let Ok(log) = inner.log() else { return Vec::new() };
    let rows = log.query(FILES_SQL).unwrap_or_default();
    drop(log);
    let paths: Vec<PathBuf> = rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let fd = e.file_name().to_str()?.parse::<RawFd>().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            paths.contains(&target).then_some(fd)
        })
        .collect()
}

#[cfg(target_os = "linux")]
fn start_writeback(fd: RawFd) {
    // SAFETY: sync_file_range touches no memory of ours; the kernel checks the
    // descriptor. Should DuckDB have closed it and the number been reused, the call
    // starts writes of another file's dirty pages, or fails: either way it only
    // starts writes that would happen anyway and changes no data. Offset 0 and
    // length 0 mean the whole file; errors are ignored, this is a hint.
    unsafe {
        libc::sync_file_range(fd, 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_fd: RawFd) {}

#[cfg(target_os = "linux")]
fn sync_data(fd: RawFd) {
    // SAFETY: as for start_writeback: fdatasync touches no memory of ours, and on a
    // reused descriptor it syncs another file's data or fails. It only makes durable
    // early what the commit's fsync would make durable anyway: DuckDB's own fsync and
    // header write still decide what a reader of the file sees. Errors are ignored.
    unsafe {
        libc::fdatasync(fd);
    }
}

#[cfg(not(target_os = "linux"))]
fn sync_data(_fd: RawFd) {}
