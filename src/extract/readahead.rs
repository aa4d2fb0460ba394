//! Read-ahead: one background thread per Postgres connection runs the COPY tasks
//! and hands complete tuples, in blocks, to whichever DuckDB thread scans next.
//!
//! DuckDB decides how many threads call a table function's scan: for
//! `CREATE TABLE AS` at its default `preserve_insertion_order = true`, a C-API
//! table function gets exactly one. Were each scan thread its own connection,
//! that one thread would read a single COPY stream and wait on one Postgres
//! backend. Here the connections stream in parallel whatever DuckDB does, the
//! scan threads only decode, and memory stays bounded by the queues (a few
//! blocks per connection).
//!
//! Each connection has its own queue, and its blocks go to one scan thread (the
//! connection's number modulo the scan threads started), which writes DuckDB chunks of
//! one connection's consecutive tuples. DuckDB compresses a column in groups of 2,048
//! values; a group that mixes two streams, or skips the block another thread took, packs
//! ids and timestamps far worse. Rental through two streams handed out in arrival order
//! made a 190 MB file, against 184 MB read through one stream, and the buffer pool holds
//! that file while it is written.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::pg::pool::{self, Pooled};
use crate::pg::wire::{CancelHandle, Taken};
use crate::pg::{quote_literal, PgConfig, PgError};

use super::plan::Task;

/// The read buffer a connection streams into. A block of tuples taken where they lie
/// (almost all of them) is such a buffer, handed over once less than [`MIN_READ`] of it is
/// free: about 3,000 rentals. Taking tuples in place saves the copy of every byte from the
/// connection's buffer into a block (the read-ahead threads' samples on 10M rentals: 1,882
/// and 2,063 -> 1,302 and 1,601 at 5 kHz). 256 kB rather than 512: the blocks alive at once
/// are most of what an extract adds to DuckDB's peak memory, and in interleaved runs
/// (2026-12-07) the peak RSS of a 10M-row `CREATE TABLE AS` fell by 4 to 5 MB with no
/// change in time or CPU.
const BLOCK_BUFFER: usize = 256 * 1024;
/// Tuples per block when they are copied (next_tuple's: the first after the header, or
/// those of a server that splits rows across messages): four DuckDB vectors' worth. Blocks of
/// 8192 copied tuples were 13 to 17% faster than 2048 with `preserve_insertion_order = false`
/// (fewer hand-overs, so fewer thread wake-ups).
const BLOCK_ROWS: usize = 8192;
/// A block of copied tuples is handed over early once its bytes pass this (wide rows).
const BLOCK_BYTES: usize = 1 << 20;
/// Blocks in flight per connection: with [`BLOCK_BUFFER`], 1 MB each; Postgres' socket
/// buffers hold more than that when DuckDB's threads fall behind.
const BLOCKS_PER_CONNECTION: usize = 4;

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
    /// Paced reads allowed (pg/pacing.rs).
    pub pacing: bool,
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
    /// Scan threads started.
    threads: AtomicUsize,
    queues: Mutex<Queues>,
    /// A block was queued, a connection finished, or one failed.
    filled: Condvar,
    /// A block was taken, or the scan is gone.
    drained: Condvar,
}

/// The blocks each connection has read and no scan thread has taken yet.
struct Queues {
    /// Per connection, with the order in which they were queued (over all connections).
    blocks: Vec<VecDeque<(u64, Block)>>,
    queued: u64,
    /// Per connection: still reading (or yet to start).
    reading: Vec<bool>,
    /// The first error a connection met: it ends the scan.
    error: Option<String>,
    /// The scan is gone (a LIMIT, an interrupt, an error elsewhere): connections stop.
    closed: bool,
}

/// What a scan thread does next (see [`Queues::choose`]).
#[derive(Debug, PartialEq)]
enum Choice {
    /// Write a chunk from connection `.0`'s tuples: those the thread holds, then `.1`
    /// blocks taken from its queue.
    Take(usize, usize),
    Wait,
    End,
}

impl Queues {
    /// What scan thread `me` (of `threads`) writes next, holding `held(j)` tuples of
    /// connection `j`, for a chunk of `want` rows.
    ///
    /// - It writes from its own connections (`j % threads == me`) and from what it still
    ///   holds of others (after a thread started later took them over).
    /// - A chunk is ready once the thread can fill all of it, without waiting in the
    ///   middle; or with fewer rows when the connection has finished, or its queue is full
    ///   (wide rows) so that the connection never waits on a chunk.
    /// - Any thread takes from a full queue (its owner is behind, or not running, and the
    ///   connection must not wait), and what a finished connection left (its owner may
    ///   have stopped: a LIMIT reached, an error elsewhere in DuckDB's pipeline).
    /// - Of the ready connections, its own first, then the one whose oldest block was
    ///   queued first, so none waits on another.
    fn choose(&self, me: usize, threads: usize, held: &impl Fn(usize) -> usize, want: usize) -> Choice {
        let mut best: Option<((bool, u64), usize, usize)> = None;
        let mut waiting = false;
        for (j, queue) in self.blocks.iter().enumerate() {
            let own = j % threads.max(1) == me;
            let full = queue.len() >= BLOCKS_PER_CONNECTION;
            let mut rows = held(j);
            let mut take = 0;
            if own || full || !self.reading[j] {
                while rows < want && take < queue.len() {
                    rows += queue[take].1.len();
                    take += 1;
                }
            }
            let ready = if own {
                rows >= want || ((full || !self.reading[j]) && rows > 0)
            } else {
                rows > 0
            };
            // Until every connection has finished, a thread waits (rather than ending, which
            // leaves DuckDB's thread idle, or spinning in a client).
            waiting |= !ready && self.reading[j];
            if ready {
                let key = (!own, queue.front().map_or(u64::MAX, |b| b.0));
                if best.is_none_or(|b| key < b.0) {
                    best = Some((key, j, take));
                }
            }
        }
        match best {
            Some((_, j, take)) => Choice::Take(j, take),
            None if waiting => Choice::Wait,
            None => Choice::End,
        }
    }
}

/// The running read: its threads, and the queues the scan threads take blocks from.
pub struct ReadAhead {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

/// What a scan thread writes next.
pub enum Next {
    /// A chunk from connection `.0`: what the thread holds of it, then these blocks.
    Blocks(usize, Vec<Block>),
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
            threads: AtomicUsize::new(0),
            queues: Mutex::new(Queues {
                blocks: (0..connections).map(|_| VecDeque::new()).collect(),
                queued: 0,
                reading: vec![true; connections],
                error: None,
                closed: false,
            }),
            filled: Condvar::new(),
            drained: Condvar::new(),
        });
        let mut first = first;
        let workers = (0..connections)
            .map(|i| {
                let shared = Arc::clone(&shared);
                let conn = first.take();
                std::thread::Builder::new()
                    .name(format!("pagila_star-copy-{i}"))
                    .spawn(move || worker(&shared, i, conn))
                    .expect("spawning a read-ahead thread")
            })
            .collect();
        ReadAhead { shared, workers }
    }

    /// A number for a new scan thread (see [`Queues::choose`]).
    pub fn join(&self) -> usize {
        self.shared.threads.fetch_add(1, Ordering::SeqCst)
    }

    /// The connections being read.
    pub fn connections(&self) -> usize {
        self.workers.len()
    }

    /// What scan thread `me` writes next, holding `held(j)` tuples of connection `j`, for a
    /// chunk of `want` rows; waits until it can. An error a connection met ends the scan.
    pub fn next(&self, me: usize, held: impl Fn(usize) -> usize, want: usize) -> Result<Next, String> {
        let shared = &*self.shared;
        let mut q = lock(&shared.queues)?;
        loop {
            if let Some(e) = &q.error {
                return Err(e.clone());
            }
            let threads = shared.threads.load(Ordering::SeqCst);
            match q.choose(me, threads, &held, want) {
                Choice::Take(j, take) => {
                    let blocks: Vec<Block> = q.blocks[j].drain(..take).map(|b| b.1).collect();
                    drop(q);
                    if take > 0 {
                        shared.drained.notify_all();
                    }
                    return Ok(Next::Blocks(j, blocks));
                }
                Choice::Wait => {
                    q = shared
                        .filled
                        .wait(q)
                        .map_err(|_| "read-ahead lock poisoned".to_string())?
                }
                Choice::End => return Ok(Next::End),
            }
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
        if let Ok(mut q) = self.shared.queues.lock() {
            q.closed = true;
        }
        self.shared.drained.notify_all();
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

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, String> {
    m.lock().map_err(|_| "read-ahead lock poisoned".to_string())
}

/// Where connection `i` queues its blocks.
struct Outbox<'a> {
    shared: &'a Shared,
    i: usize,
}

impl Outbox<'_> {
    /// Queues a block that has tuples, waiting while the connection has
    /// [`BLOCKS_PER_CONNECTION`] queued. False: the scan is gone; dropping the busy
    /// session then cancels its query.
    fn send(&self, block: Option<Block>) -> bool {
        let Some(block) = block.filter(|b| !b.is_empty()) else {
            return true;
        };
        let Ok(mut q) = self.shared.queues.lock() else {
            return false;
        };
        while !q.closed && q.blocks[self.i].len() >= BLOCKS_PER_CONNECTION {
            q = match self.shared.drained.wait(q) {
                Ok(q) => q,
                Err(_) => return false,
            };
        }
        if q.closed {
            return false;
        }
        let seq = q.queued;
        q.queued += 1;
        q.blocks[self.i].push_back((seq, block));
        drop(q);
        self.shared.filled.notify_all();
        true
    }

    /// The connection has read all it will; `error` (the first one met) ends the scan.
    fn finish(&self, error: Option<String>) {
        if let Ok(mut q) = self.shared.queues.lock() {
            q.reading[self.i] = false;
            if q.error.is_none() {
                q.error = error;
            }
        }
        self.shared.filled.notify_all();
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
fn worker(shared: &Shared, i: usize, first: Option<Pooled>) {
    let job = &shared.job;
    let out = Outbox { shared, i };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(shared, i, first, &out)));
    set_cancel(shared, i, None);
    let msg = match result {
        Ok(Ok(())) => return out.finish(None),
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
    out.finish(Some(msg));
}

enum Failure {
    /// Opening the session or importing the snapshot.
    Session(PgError),
    /// A COPY.
    Read(PgError),
}

fn run(shared: &Shared, i: usize, first: Option<Pooled>, out: &Outbox) -> Result<(), Failure> {
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
    let claim = || {
        let t = shared.next.fetch_add(1, Ordering::SeqCst);
        job.tasks
            .get(t)
            .map(|task| task.copy_sql(&job.select_list, job.filter.as_deref()))
    };
    // Whether the next task's COPY is already sent, queued behind the one streaming.
    let mut queued = false;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        if !queued {
            let Some(sql) = claim() else {
                return Ok(());
            };
            conn.send_query(&sql).map_err(Failure::Read)?;
        }
        conn.pace_reads(job.pacing);
        let mut copy = conn.start_copy().map_err(Failure::Read)?;
        // Queue the next task's COPY now: Postgres starts it the moment this one ends. Asked
        // for after this one's end, it waited until we had read what the socket buffers held
        // and sent it: 5 to 16 ms per task on 10M rentals (23 tasks), with the backend idle.
        queued = match claim() {
            Some(sql) => {
                conn.send_query(&sql).map_err(Failure::Read)?;
                true
            }
            None => false,
        };
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
                        if !hand_over(shared, &mut conn, &mut block, &mut side, out) {
                            return Ok(());
                        }
                        continue;
                    }
                    // One message longer than the buffer's free space: next_tuple grows it.
                }
                Taken::Other => {
                    if !block.is_empty() && !hand_over(shared, &mut conn, &mut block, &mut side, out) {
                        return Ok(());
                    }
                }
            }
            // `block` is empty here, so the buffer may move.
            match copy.next_tuple(&mut conn).map_err(Failure::Read)? {
                Some(tuple) => {
                    let b = side.get_or_insert_with(|| take_block(shared));
                    b.push(tuple);
                    if b.is_full() && !out.send(side.take()) {
                        return Ok(());
                    }
                }
                None => break,
            }
        }
        if !out.send(side.take()) {
            return Ok(());
        }
    }
}

/// Least free space in the read buffer worth a read into it; with less, the block is handed
/// over and the connection reads on into a fresh buffer.
const MIN_READ: usize = 64 * 1024;

/// Hands `block` over with the connection's read buffer its tuples lie in (after `side`'s
/// tuples, which came first); the connection gets a fresh buffer. False: the scan is gone.
fn hand_over(shared: &Shared, conn: &mut Pooled, block: &mut Block, side: &mut Option<Block>, out: &Outbox) -> bool {
    let mut next = take_block(shared);
    block.data = conn.swap_read_buffer(std::mem::take(&mut next.data), BLOCK_BUFFER);
    out.send(side.take()) && out.send(Some(std::mem::replace(block, next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a scan thread holds of each of two connections.
    fn held(rows: [usize; 2]) -> impl Fn(usize) -> usize {
        move |j| rows[j]
    }

    /// Queues holding blocks of the given tuple counts, queued in the order listed
    /// (connection, tuples).
    fn queues(connections: usize, queued: &[(usize, usize)], reading: &[bool]) -> Queues {
        let mut q = Queues {
            blocks: (0..connections).map(|_| VecDeque::new()).collect(),
            queued: 0,
            reading: reading.to_vec(),
            error: None,
            closed: false,
        };
        for &(j, tuples) in queued {
            let mut b = Block::default();
            for _ in 0..tuples {
                b.push(&[0, 0]);
            }
            q.blocks[j].push_back((q.queued, b));
            q.queued += 1;
        }
        q
    }

    #[test]
    fn one_thread_writes_whole_chunks_of_one_connection_oldest_first() {
        let q = queues(2, &[(1, 3000), (0, 3000)], &[true, true]);
        assert_eq!(q.choose(0, 1, &held([0, 0]), 2048), Choice::Take(1, 1));
        // 1,000 held and 500 queued of connection 0 do not fill a chunk; connection 1 does.
        let q = queues(2, &[(0, 500), (1, 3000)], &[true, true]);
        assert_eq!(q.choose(0, 1, &held([1000, 0]), 2048), Choice::Take(1, 1));
        // Several blocks make up one chunk.
        let q = queues(2, &[(0, 1000), (0, 1000)], &[true, true]);
        assert_eq!(q.choose(0, 1, &held([100, 0]), 2048), Choice::Take(0, 2));
        // Nothing fills a chunk yet: wait rather than mix or cut a chunk short.
        let q = queues(2, &[(0, 500)], &[true, true]);
        assert_eq!(q.choose(0, 1, &held([1000, 0]), 2048), Choice::Wait);
    }

    #[test]
    fn threads_keep_to_their_own_connections() {
        let q = queues(2, &[(1, 3000)], &[true, true]);
        assert_eq!(q.choose(0, 2, &held([0, 0]), 2048), Choice::Wait);
        assert_eq!(q.choose(1, 2, &held([0, 0]), 2048), Choice::Take(1, 1));
        // A thread with no connection of its own (more threads than connections) waits.
        assert_eq!(q.choose(2, 3, &held([0, 0]), 2048), Choice::Wait);
        // What a thread holds of a connection no longer its own, it writes.
        assert_eq!(q.choose(0, 2, &held([0, 700]), 2048), Choice::Take(1, 0));
    }

    #[test]
    fn a_full_queue_goes_to_any_thread_and_short_chunks_end_a_connection() {
        let full: Vec<(usize, usize)> = (0..BLOCKS_PER_CONNECTION).map(|_| (1, 100)).collect();
        let q = queues(2, &full, &[true, true]);
        // Thread 0 does not own connection 1, but its queue is full.
        assert_eq!(
            q.choose(0, 2, &held([0, 0]), 2048),
            Choice::Take(1, BLOCKS_PER_CONNECTION)
        );
        // A finished connection's last tuples make a short chunk.
        let q = queues(2, &[(0, 10)], &[false, true]);
        assert_eq!(q.choose(0, 2, &held([0, 0]), 2048), Choice::Take(0, 1));
        // What a finished connection left goes to any thread (its owner may have stopped).
        let q = queues(2, &[(0, 10)], &[false, false]);
        assert_eq!(q.choose(1, 2, &held([0, 0]), 2048), Choice::Take(0, 1));
        let q = queues(2, &[], &[false, false]);
        assert_eq!(q.choose(1, 2, &held([0, 0]), 2048), Choice::End);
        // A thread's own connection comes first, even when another's block is older.
        let q = queues(2, &[(0, 3000), (1, 3000)], &[true, true]);
        assert_eq!(q.choose(1, 2, &held([0, 0]), 2048), Choice::Take(1, 1));
        let full: Vec<(usize, usize)> = (0..BLOCKS_PER_CONNECTION).map(|_| (0, 3000)).collect();
        let q = queues(2, &full, &[true, true]);
        assert_eq!(q.choose(1, 2, &held([0, 0]), 2048), Choice::Take(0, 1));
    }

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
