//! Read-ahead: one background thread per Postgres connection runs the COPY tasks
//! and hands complete tuples, in blocks, to whichever DuckDB thread scans next.
//!
//! DuckDB decides how many threads call a table function's scan: for
//! `CREATE TABLE AS` at its default `preserve_insertion_order = true`, a C-API
//! table function gets exactly one. Were each scan thread its own connection,
//! that one thread would read a single COPY stream and wait on one Postgres
//! backend. Here the connections stream in parallel whatever DuckDB does, the
//! scan threads only decode, and memory stays bounded by the channel (a few
//! blocks per connection).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::pg::pool::{self, Pooled};
use crate::pg::wire::{CancelHandle, Taken};
use crate::pg::{quote_literal, PgConfig, PgError};

use super::plan::Task;

/// The read buffer a connection streams into. A block of tuples taken where they lie
/// (almost all of them) is such a buffer, handed over once less than [`MIN_READ`] of it is
/// free: about 7,000 rentals. Taking tuples in place saves the copy of every byte from the
/// connection's buffer into a block (the read-ahead threads' samples on 10M rentals: 1,882
/// and 2,063 -> 1,302 and 1,601 at 5 kHz).
const BLOCK_BUFFER: usize = 512 * 1024;
/// Tuples per block when they are copied (next_tuple's: the first after the header, or
/// those of a server that splits rows across messages): four DuckDB vectors' worth. Blocks of
/// 8192 copied tuples were 13 to 17% faster than 2048 with `preserve_insertion_order = false`
/// (fewer hand-overs, so fewer thread wake-ups).
const BLOCK_ROWS: usize = 8192;
/// A block of copied tuples is handed over early once its bytes pass this (wide rows).
const BLOCK_BYTES: usize = 1 << 20;
/// Blocks in flight per connection: with [`BLOCK_BUFFER`], 1.5 MB each; Postgres' socket
/// buffers hold more than that when DuckDB's threads fall behind.
const BLOCKS_PER_CONNECTION: usize = 3;

/// Complete binary-COPY tuples, as the connection received them (the bytes between two
/// tuples are their CopyData message headers).
#[derive(Default)]
pub struct Block {
    data: Vec<u8>,
    /// Start and end offset of each tuple in `data`.
    spans: Vec<(u32, u32)>,
}

impl Block {
    /// Appends a copy of `tuple` (a block's bytes are either a former read buffer or copies).
    fn push(&mut self, tuple: &[u8]) {
        if self.spans.is_empty() {
            self.data.clear();
        }
        let start = self.data.len() as u32;
        self.data.extend_from_slice(tuple);
        self.spans.push((start, self.data.len() as u32));
    }
    fn is_full(&self) -> bool {
        self.spans.len() >= BLOCK_ROWS || self.data.len() >= BLOCK_BYTES
    }
    pub fn len(&self) -> usize {
        self.spans.len()
    }
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
    /// Tuple `i`, its field count included.
    #[cfg(test)]
    pub fn tuple(&self, i: usize) -> &[u8] {
        let (start, end) = self.spans[i];
        &self.data[start as usize..end as usize]
    }
    /// The bytes the tuples lie in (with the messages' headers between them).
    pub fn data(&self) -> &[u8] {
        &self.data
    }
    /// Start and end of each tuple in [`Block::data`].
    pub fn spans(&self) -> &[(u32, u32)] {
        &self.spans
    }
    /// Empties the block; its bytes stay allocated, for reuse as a read buffer.
    fn clear(&mut self) {
        self.spans.clear();
    }
}

/// Everything a connection thread needs to run its share of the tasks.
pub struct Job {
    pub cfg: PgConfig,
    pub tasks: Vec<Task>,
    pub select_list: String,
    pub filter: Option<String>,
    /// Imported by every connection before it reads (one consistent read).
    pub snapshot: Option<String>,
    /// Prefix of error messages (`pagila_extract`).
    pub function: &'static str,
    /// What is read, for messages (`table public.payment`).
    pub label: String,
}

/// State the connection threads share with the scan and with [`Drop`].
struct Shared {
    job: Job,
    next: AtomicUsize,
    stop: AtomicBool,
    /// Per connection: where to cancel its query while it streams.
    cancels: Mutex<Vec<Option<CancelHandle>>>,
    /// Emptied blocks, for reuse.
    free: Mutex<Vec<Block>>,
}

type Item = Result<Block, String>;

/// The running read: its threads, and the channel the scan threads pull from.
pub struct ReadAhead {
    rx: Mutex<Option<Receiver<Item>>>,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

/// What the scan gets next.
pub enum Next {
    Block(Block),
    /// Every task has been read.
    End,
}

impl ReadAhead {
    /// Starts `connections` threads; the first uses `first` if given (bind's session).
    pub fn start(job: Job, connections: usize, first: Option<Pooled>) -> ReadAhead {
        let connections = connections.clamp(1, job.tasks.len().max(1));
        let shared = Arc::new(Shared {
            job,
            next: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            cancels: Mutex::new(vec![None; connections]),
            free: Mutex::new(Vec::new()),
        });
        let (tx, rx) = sync_channel::<Item>(connections * BLOCKS_PER_CONNECTION);
        let mut first = first;
        let workers = (0..connections)
            .map(|i| {
                let shared = Arc::clone(&shared);
                let tx = tx.clone();
                let conn = first.take();
                std::thread::Builder::new()
                    .name(format!("pagila_star-copy-{i}"))
                    .spawn(move || worker(&shared, i, conn, &tx))
                    .expect("spawning a read-ahead thread")
            })
            .collect();
        ReadAhead {
            rx: Mutex::new(Some(rx)),
            shared,
            workers,
        }
    }

    /// The next block of tuples, waiting for one; an error a connection met ends the scan.
    pub fn next(&self) -> Result<Next, String> {
        let guard = self.rx.lock().map_err(|_| "read-ahead lock poisoned".to_string())?;
        let Some(rx) = guard.as_ref() else {
            return Ok(Next::End);
        };
        match rx.recv() {
            Ok(Ok(block)) => Ok(Next::Block(block)),
            Ok(Err(msg)) => Err(msg),
            Err(RecvError) => Ok(Next::End),
        }
    }

    /// Gives an emptied block back for reuse.
    pub fn recycle(&self, mut block: Block) {
        block.clear();
        if let Ok(mut free) = self.shared.free.lock() {
            if free.len() < self.workers.len() * (BLOCKS_PER_CONNECTION + 2) {
                free.push(block);
            }
        }
    }
}

impl Drop for ReadAhead {
    /// Stops the threads: closes the channel (a thread waiting to hand over a block
    /// stops at once), cancels the queries still streaming (a thread waiting on the
    /// server stops too), then waits for them, so no COPY of ours outlives the scan.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Ok(mut rx) = self.rx.lock() {
            rx.take();
        }
        let streaming: Vec<CancelHandle> = match self.shared.cancels.lock() {
            Ok(c) => c.iter().flatten().cloned().collect(),
            Err(_) => Vec::new(),
        };
        for c in streaming {
            c.cancel();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn set_cancel(shared: &Shared, i: usize, handle: Option<CancelHandle>) {
    if let Ok(mut c) = shared.cancels.lock() {
        c[i] = handle;
    }
}

fn take_block(shared: &Shared) -> Block {
    shared
        .free
        .lock()
        .ok()
        .and_then(|mut f| f.pop())
        .unwrap_or_else(|| Block {
            data: Vec::new(),
            spans: Vec::with_capacity(BLOCK_ROWS),
        })
}

/// One connection: takes tasks until none is left, the scan stops, or an error.
fn worker(shared: &Shared, i: usize, first: Option<Pooled>, tx: &SyncSender<Item>) {
    let job = &shared.job;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(shared, i, first, tx)));
    set_cancel(shared, i, None);
    let msg = match result {
        Ok(Ok(())) => return,
        Ok(Err(Failure::Session(e))) => super::err(job.function, e).to_string(),
        Ok(Err(Failure::Read(e))) => super::err(job.function, format!("reading {} failed: {e}", job.label)).to_string(),
        Err(_) => super::err(
            job.function,
            format!("internal error (panic) while reading {}", job.label),
        )
        .to_string(),
    };
    // Every other connection stops too; the scan raises the first error.
    shared.stop.store(true, Ordering::SeqCst);
    let _ = tx.send(Err(msg));
}

enum Failure {
    /// Opening the session or importing the snapshot.
    Session(PgError),
    /// A COPY.
    Read(PgError),
}

fn run(shared: &Shared, i: usize, first: Option<Pooled>, tx: &SyncSender<Item>) -> Result<(), Failure> {
    let job = &shared.job;
    let mut conn = match first {
        Some(c) => c,
        None => pool::connect(&job.cfg).map_err(Failure::Session)?,
    };
    if let Some(s) = &job.snapshot {
        conn.simple_query(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
            quote_literal(s)
        ))
        .map_err(Failure::Session)?;
    }
    set_cancel(shared, i, Some(conn.cancel_handle()));
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let t = shared.next.fetch_add(1, Ordering::SeqCst);
        let Some(task) = job.tasks.get(t) else {
            return Ok(());
        };
        let sql = task.copy_sql(&job.select_list, job.filter.as_deref());
        let mut copy = conn.copy_out(&sql).map_err(Failure::Read)?;
        // Tuples lying in the connection's read buffer, recorded where they are; handing the
        // block over hands that buffer over, and the connection reads on into a fresh one.
        let mut block = take_block(shared);
        // Tuples next_tuple returned (the first, behind the header; rarely others), copied.
        let mut side: Option<Block> = None;
        loop {
            match copy.take_in_place(&mut conn, &mut block.spans) {
                Taken::Tuples => continue,
                Taken::NeedBytes => {
                    if conn.read_into_free(MIN_READ).map_err(Failure::Read)? {
                        continue;
                    }
                    if !block.is_empty() {
                        if !hand_over(shared, &mut conn, &mut block, &mut side, tx) {
                            return Ok(());
                        }
                        continue;
                    }
                    // One message longer than the buffer's free space: next_tuple grows it.
                }
                Taken::Other => {
                    if !block.is_empty() && !hand_over(shared, &mut conn, &mut block, &mut side, tx) {
                        return Ok(());
                    }
                }
            }
            // `block` is empty here, so the buffer may move.
            match copy.next_tuple(&mut conn).map_err(Failure::Read)? {
                Some(tuple) => {
                    let b = side.get_or_insert_with(|| take_block(shared));
                    b.push(tuple);
                    if b.is_full() && !send(tx, side.take()) {
                        return Ok(());
                    }
                }
                None => break,
            }
        }
        if !send(tx, side.take()) {
            return Ok(());
        }
    }
}

/// Least free space in the read buffer worth a read into it; with less, the block is handed
/// over and the connection reads on into a fresh buffer.
const MIN_READ: usize = 64 * 1024;

/// Hands `block` over with the connection's read buffer its tuples lie in (after `side`'s
/// tuples, which came first); the connection gets a fresh buffer. False: the scan is gone.
fn hand_over(
    shared: &Shared,
    conn: &mut Pooled,
    block: &mut Block,
    side: &mut Option<Block>,
    tx: &SyncSender<Item>,
) -> bool {
    let mut next = take_block(shared);
    block.data = conn.swap_read_buffer(std::mem::take(&mut next.data), BLOCK_BUFFER);
    send(tx, side.take()) && send(tx, Some(std::mem::replace(block, next)))
}

/// Sends a block that has tuples. False: the scan is gone (a LIMIT, an interrupt, an error
/// elsewhere); dropping the busy session then cancels its query.
fn send(tx: &SyncSender<Item>, block: Option<Block>) -> bool {
    match block {
        Some(b) if !b.is_empty() => tx.send(Ok(b)).is_ok(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_keeps_tuples_apart_and_fills_by_rows_or_bytes() {
        let mut b = Block::default();
        b.push(&[0, 1, 0, 0, 0, 1, b'a']);
        b.push(&[0, 1, 255, 255, 255, 255]);
        b.push(&[0, 1, 0, 0, 0, 2, b'b', b'c']);
        assert_eq!(b.len(), 3);
        assert_eq!(b.tuple(0), &[0, 1, 0, 0, 0, 1, b'a']);
        assert_eq!(b.tuple(1), &[0, 1, 255, 255, 255, 255]);
        assert_eq!(b.tuple(2), &[0, 1, 0, 0, 0, 2, b'b', b'c']);
        assert!(!b.is_full());
        for _ in 3..BLOCK_ROWS {
            b.push(&[0, 0]);
        }
        assert!(b.is_full());
        b.clear();
        assert!(b.is_empty());
        b.push(&vec![0u8; BLOCK_BYTES]);
        assert!(b.is_full(), "one wide row fills a block");
    }
}
