//! Our own synchronous Postgres client: startup, authentication (cleartext, MD5,
//! SCRAM-SHA-256), simple queries, Describe, binary COPY OUT and cancel.
//!
//! Message encoding and SCRAM come from `postgres-protocol`; the read loop is
//! ours, parsing messages in place from one large buffer, so the COPY hot path
//! makes no allocation per row.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use bytes::BytesMut;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;

use super::config::{PgConfig, SslMode};
use super::error::{PgError, ServerError};
use super::pacing;

/// The byte stream under a session.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Stream {
    /// The TCP socket under the stream, if any.
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Tcp(s) => Some(s),
            Stream::Tls(s) => Some(&s.sock),
            Stream::Unix(_) => None,
        }
    }

    fn set_read_timeout(&self, t: Option<Duration>) {
        let _ = match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tls(s) => s.sock.set_read_timeout(t),
        };
    }
}

/// Where to send a CancelRequest for a session.
#[derive(Clone, Debug)]
pub struct CancelHandle {
    addr: Endpoint,
    pid: i32,
    key: i32,
}

#[derive(Clone, Debug)]
enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl CancelHandle {
    /// Asks the server to cancel the session's running query (best effort).
    pub fn cancel(&self) {
        let mut buf = BytesMut::new();
        frontend::cancel_request(self.pid, self.key, &mut buf);
        let t = Duration::from_secs(5);
        let _ = match &self.addr {
            Endpoint::Tcp(a) => TcpStream::connect_timeout(a, t).and_then(|mut s| {
                s.write_all(&buf)?;
                // Wait for the server to close, so the cancel has been processed.
                s.set_read_timeout(Some(t))?;
                let mut b = [0u8; 1];
                let _ = s.read(&mut b);
                Ok(())
            }),
            Endpoint::Unix(p) => UnixStream::connect(p).and_then(|mut s| {
                s.write_all(&buf)?;
                s.set_read_timeout(Some(t))?;
                let mut b = [0u8; 1];
                let _ = s.read(&mut b);
                Ok(())
            }),
        };
    }
}

/// A column of a RowDescription.
#[derive(Clone, Debug)]
pub struct FieldDesc {
    pub name: String,
    pub table_oid: u32,
    pub column: i16,
    pub type_oid: u32,
    pub typmod: i32,
}

const READ_BUF: usize = 1 << 18;

/// Batched reads (see [`Connection::batch_reads`]): a read waits for this many bytes…
const BATCH_BYTES: i32 = 128 * 1024;
/// …or this long (the kernel rounds it up to a clock tick, 4 ms at most here), so the
/// end of a stream, shorter than a batch, is not held up for longer.
const BATCH_WAIT: Duration = Duration::from_millis(1);
/// A COPY batches its reads once it has streamed this much: small results never wait.
const BATCH_AFTER: usize = 1 << 20;

/// Sets how many bytes a blocked read on `s` waits for (`SO_RCVLOWAT`).
fn set_recv_lowat(s: &TcpStream, bytes: i32) {
    let v: i32 = bytes;
    // SAFETY: the descriptor is the open socket `s` owns for the whole call, and
    // SO_RCVLOWAT takes an int, whose address and size are passed.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&v as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
    }
}

/// One authenticated session.
pub struct Connection {
    stream: Stream,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    out: BytesMut,
    cancel: CancelHandle,
    /// Queries sent whose ReadyForQuery has not been read yet (a COPY with the next one
    /// queued behind it: two). While any is, the session is busy; on drop we cancel it.
    in_flight: u32,
    /// Set while a COPY streams with batched reads (see [`Connection::batch_reads`]).
    batching: bool,
    /// The last read returned less than it had room for: the socket was drained.
    drained: bool,
    /// Paced reads allowed: the server is on this machine and the caller wants them.
    pacing: bool,
    target: String,
    pub server_version_num: u32,
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Parses an ErrorResponse / NoticeResponse body.
fn parse_error(body: &[u8]) -> ServerError {
    let mut e = ServerError::default();
    let mut i = 0;
    while i < body.len() && body[i] != 0 {
        let code = body[i];
        i += 1;
        let end = body[i..]
            .iter()
            .position(|&b| b == 0)
            .map(|p| i + p)
            .unwrap_or(body.len());
        let val = String::from_utf8_lossy(&body[i..end]).into_owned();
        i = end + 1;
        match code {
            b'S' => e.severity = val,
            b'C' => e.code = val,
            b'M' => e.message = val,
            b'D' => e.detail = Some(val),
            b'H' => e.hint = Some(val),
            _ => {}
        }
    }
    e
}

fn cstr(b: &[u8]) -> (&[u8], &[u8]) {
    match b.iter().position(|&x| x == 0) {
        Some(p) => (&b[..p], &b[p + 1..]),
        None => (b, &[]),
    }
}

impl Connection {
    /// Connects, negotiates TLS and authenticates. Every session is read-only and
    /// named `pagila_star` in `pg_stat_activity`. With a host list, the hosts are
    /// tried in order until one can be reached (a server that answers and refuses
    /// the login ends the search), as libpq does.
    pub fn connect(cfg: &PgConfig) -> Result<Connection, PgError> {
        let candidates = cfg.candidates();
        if candidates.len() == 1 {
            return Self::connect_one(cfg);
        }
        let mut failed = Vec::new();
        for c in &candidates {
            match Self::connect_one(c) {
                Err(PgError::Connect { target, reason }) => failed.push(format!("{target}: {reason}")),
                other => return other,
            }
        }
        Err(PgError::Connect {
            target: format!("any of its {} hosts", candidates.len()),
            reason: failed.join("; "),
        })
    }

    fn connect_one(cfg: &PgConfig) -> Result<Connection, PgError> {
        let target = cfg.redacted();
        let connect_err = |reason: String| PgError::Connect {
            target: format!("{}:{}", cfg.host, cfg.port),
            reason,
        };
        let (stream, addr) = if cfg.is_unix_socket() {
            let path = PathBuf::from(&cfg.host).join(format!(".s.PGSQL.{}", cfg.port));
            let s = UnixStream::connect(&path).map_err(|e| connect_err(format!("{e} (socket {})", path.display())))?;
            (Stream::Unix(s), Endpoint::Unix(path))
        } else {
            let host = cfg.hostaddr.as_deref().unwrap_or(&cfg.host);
            let addrs: Vec<SocketAddr> = (host, cfg.port)
                .to_socket_addrs()
                .map_err(|e| connect_err(format!("could not resolve host name: {e}")))?
                .collect();
            let mut last = String::from("no addresses");
            let mut found = None;
            for a in addrs {
                let r = match cfg.connect_timeout {
                    Some(t) => TcpStream::connect_timeout(&a, t),
                    None => TcpStream::connect(a),
                };
                match r {
                    Ok(s) => {
                        found = Some((s, a));
                        break;
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            let (s, a) = found.ok_or_else(|| connect_err(last))?;
            let _ = s.set_nodelay(true);
            (Stream::Tcp(s), Endpoint::Tcp(a))
        };
        // Bound the whole handshake by the connect timeout.
        stream.set_read_timeout(cfg.connect_timeout);
        let stream = match stream {
            Stream::Tcp(s) if cfg.sslmode != SslMode::Disable => negotiate_tls(s, cfg)?,
            other => {
                if matches!(cfg.sslmode, SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull)
                    && matches!(other, Stream::Unix(_))
                {
                    return Err(PgError::Tls {
                        target: target.clone(),
                        reason: "sslmode requires TLS, which Unix sockets do not offer".into(),
                    });
                }
                other
            }
        };
        let mut conn = Connection {
            stream,
            buf: vec![0; READ_BUF],
            pos: 0,
            end: 0,
            out: BytesMut::with_capacity(1024),
            cancel: CancelHandle { addr, pid: 0, key: 0 },
            in_flight: 0,
            batching: false,
            drained: false,
            pacing: false,
            target,
            server_version_num: 0,
        };
        conn.startup(cfg).map_err(|e| match e {
            PgError::Io(m) if m.contains("timed out") || m.contains("WouldBlock") || m.contains("temporarily") => {
                PgError::Connect {
                    target: format!("{}:{}", cfg.host, cfg.port),
                    reason: "timeout expired during the startup handshake".into(),
                }
            }
            other => other,
        })?;
        conn.stream.set_read_timeout(None);
        Ok(conn)
    }

    /// While a big COPY streams over TCP, a blocked read waits until a batch of bytes has
    /// arrived (or a short timeout passed), instead of waking for each 8 kB the server
    /// sends. On 10M rentals that is about 4,000 reads instead of 17,000 to 81,000, and as
    /// many fewer thread wake-ups.
    fn batch_reads(&mut self, on: bool) {
        if self.batching == on {
            return;
        }
        if let Some(tcp) = self.stream.tcp() {
            set_recv_lowat(tcp, if on { BATCH_BYTES } else { 1 });
            let _ = tcp.set_read_timeout(if on { Some(BATCH_WAIT) } else { None });
            self.batching = on;
        }
    }

    /// Allows paced reads of big COPYs (see pacing.rs) if the server is on this machine.
    pub fn pace_reads(&mut self, on: bool) {
        // The address we connected to (kept for cancel requests) is the socket's peer.
        let loopback = matches!(&self.cancel.addr, Endpoint::Tcp(a) if a.ip().is_loopback());
        self.pacing = on && loopback;
    }

    /// True while a query's results are still coming.
    pub fn is_busy(&self) -> bool {
        self.in_flight > 0
    }

    /// A ReadyForQuery was read: one query fewer in flight. Batched reads end with the last.
    fn ready(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0 {
            self.batch_reads(false);
            self.pacing = false;
        }
    }

    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    fn flush_out(&mut self) -> Result<(), PgError> {
        self.stream.write_all(&self.out)?;
        self.stream.flush()?;
        self.out.clear();
        Ok(())
    }

    fn startup(&mut self, cfg: &PgConfig) -> Result<(), PgError> {
        let mut params: Vec<(&str, String)> = vec![
            ("user", cfg.user.clone()),
            ("database", cfg.dbname.clone()),
            ("application_name", "pagila_star".into()),
            ("client_encoding", "UTF8".into()),
            ("DateStyle", "ISO".into()),
            ("IntervalStyle", "postgres".into()),
            ("TimeZone", "UTC".into()),
            ("extra_float_digits", "3".into()),
            ("default_transaction_read_only", "on".into()),
        ];
        if let Some(t) = cfg.statement_timeout {
            params.push(("statement_timeout", t.as_millis().to_string()));
        }
        if let Some(o) = &cfg.options {
            params.push(("options", o.clone()));
        }
        frontend::startup_message(params.iter().map(|(k, v)| (*k, v.as_str())), &mut self.out)?;
        self.flush_out()?;
        let target = self.target.clone();
        let auth_err = |error: ServerError| PgError::Auth {
            target,
            error: Box::new(error),
        };
        let mut scram: Option<ScramSha256> = None;
        loop {
            let (tag, r) = self.next_message()?;
            match tag {
                b'R' => {
                    let body = self.buf[r].to_vec();
                    let kind = be_i32(&body[..4]);
                    match kind {
                        0 => {}
                        3 => {
                            let pw = self.password(cfg)?;
                            frontend::password_message(pw.as_bytes(), &mut self.out)?;
                            self.flush_out()?;
                        }
                        5 => {
                            let pw = self.password(cfg)?;
                            let salt = [body[4], body[5], body[6], body[7]];
                            let h =
                                postgres_protocol::authentication::md5_hash(cfg.user.as_bytes(), pw.as_bytes(), salt);
                            frontend::password_message(h.as_bytes(), &mut self.out)?;
                            self.flush_out()?;
                        }
                        10 => {
                            let mechs: Vec<&[u8]> = body[4..].split(|&b| b == 0).filter(|m| !m.is_empty()).collect();
                            if !mechs.contains(&&b"SCRAM-SHA-256"[..]) {
                                return Err(PgError::Protocol("server offers no SASL mechanism we support".into()));
                            }
                            let pw = self.password(cfg)?;
                            let s = ScramSha256::new(pw.as_bytes(), ChannelBinding::unsupported());
                            frontend::sasl_initial_response("SCRAM-SHA-256", s.message(), &mut self.out)?;
                            self.flush_out()?;
                            scram = Some(s);
                        }
                        11 => {
                            let s = scram
                                .as_mut()
                                .ok_or_else(|| PgError::Protocol("unexpected SASLContinue".into()))?;
                            s.update(&body[4..])
                                .map_err(|e| PgError::Protocol(format!("SCRAM: {e}")))?;
                            frontend::sasl_response(s.message(), &mut self.out)?;
                            self.flush_out()?;
                        }
                        12 => {
                            let s = scram
                                .as_mut()
                                .ok_or_else(|| PgError::Protocol("unexpected SASLFinal".into()))?;
                            s.finish(&body[4..])
                                .map_err(|e| PgError::Protocol(format!("SCRAM server signature: {e}")))?;
                        }
                        other => {
                            return Err(PgError::Protocol(format!("unsupported authentication method {other}")));
                        }
                    }
                }
                b'K' => {
                    let b = &self.buf[r];
                    self.cancel.pid = be_i32(&b[0..4]);
                    self.cancel.key = be_i32(&b[4..8]);
                }
                b'S' => {
                    let b = &self.buf[r];
                    let (k, rest) = cstr(b);
                    let (v, _) = cstr(rest);
                    if k == b"server_version" {
                        self.server_version_num = parse_server_version(&String::from_utf8_lossy(v));
                    }
                }
                b'N' => {}
                b'Z' => return Ok(()),
                b'E' => {
                    let e = parse_error(&self.buf[r]);
                    return Err(if e.code.starts_with("28") {
                        auth_err(e)
                    } else if e.code == "3D000" {
                        PgError::Connect {
                            target: self.target.clone(),
                            reason: e.message,
                        }
                    } else {
                        PgError::Server(Box::new(e))
                    });
                }
                other => {
                    return Err(PgError::Protocol(format!(
                        "unexpected message '{}' during startup",
                        other as char
                    )));
                }
            }
        }
    }

    fn password(&self, cfg: &PgConfig) -> Result<String, PgError> {
        cfg.password
            .as_ref()
            .map(|p| p.expose().to_string())
            .ok_or_else(|| PgError::Auth {
                target: self.target.clone(),
                error: Box::new(ServerError {
                    message:
                        "the server asks for a password but none was given (dsn password, PGPASSWORD or ~/.pgpass)"
                            .into(),
                    code: "28P01".into(),
                    ..Default::default()
                }),
            })
    }

    /// Reads the next message; returns its tag and the range of its body in `self.buf`.
    /// The range stays valid until the next call.
    fn next_message(&mut self) -> Result<(u8, Range<usize>), PgError> {
        self.fill(5)?;
        let tag = self.buf[self.pos];
        let len = be_i32(&self.buf[self.pos + 1..self.pos + 5]);
        if len < 4 {
            return Err(PgError::Protocol(format!("message length {len} is invalid")));
        }
        let total = 1 + len as usize;
        self.fill(total)?;
        let start = self.pos + 5;
        self.pos += total;
        Ok((tag, start..self.pos))
    }

    /// Ensures `n` unread bytes are buffered.
    fn fill(&mut self, n: usize) -> Result<(), PgError> {
        if self.end - self.pos >= n {
            return Ok(());
        }
        if self.buf.len() - self.pos < n {
            // Compact, and grow when one message is larger than the buffer.
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            if self.buf.len() < n {
                self.buf.resize(n.next_power_of_two(), 0);
            }
        }
        while self.end - self.pos < n {
            self.read_some()?;
        }
        Ok(())
    }

    /// One read from the socket into the buffer after `end`, which must have room.
    fn read_some(&mut self) -> Result<(), PgError> {
        // Paced reads (see pacing.rs): after a read that drained the socket, on loopback.
        if self.batching && self.drained && self.pacing && pacing::cpus_saturated() {
            std::thread::sleep(pacing::PAUSE);
        }
        loop {
            let want = self.buf.len() - self.end;
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(PgError::Io("server closed the connection unexpectedly".into())),
                Ok(got) => {
                    self.end += got;
                    self.drained = got < want;
                    return Ok(());
                }
                // Batched reads: the timeout only ends a wait for a full batch.
                Err(e) if self.batching && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads once more into the read buffer's free space, leaving what it holds where it is;
    /// false, without reading, when less than `min` bytes are free.
    pub fn read_into_free(&mut self, min: usize) -> Result<bool, PgError> {
        if self.buf.len() - self.end < min.max(1) {
            return Ok(false);
        }
        self.read_some()?;
        Ok(true)
    }

    /// Makes `fresh` the read buffer (grown to at least `size` bytes), carrying over the bytes
    /// not consumed yet, and returns the old buffer: whatever lay before its read position is
    /// still where it was (see [`CopyOut::take_in_place`]).
    pub fn swap_read_buffer(&mut self, mut fresh: Vec<u8>, size: usize) -> Vec<u8> {
        let tail = self.end - self.pos;
        let size = size.max(2 * tail);
        if fresh.len() < size {
            if fresh.capacity() < size {
                // Zeroed by the allocator, so untouched pages cost no memory.
                fresh = vec![0; size];
            } else {
                fresh.resize(size, 0);
            }
        }
        fresh[..tail].copy_from_slice(&self.buf[self.pos..self.end]);
        self.pos = 0;
        self.end = tail;
        std::mem::replace(&mut self.buf, fresh)
    }

    /// After an ErrorResponse: consume until ReadyForQuery (or the connection ends).
    fn error_then_ready(&mut self, e: ServerError) -> PgError {
        let fatal = e.severity == "FATAL" || e.severity == "PANIC";
        let err = if e.code == "57014" && e.message.contains("user request") {
            PgError::Cancelled
        } else if fatal {
            PgError::Io(format!("{} (SQLSTATE {})", e.message, e.code))
        } else {
            PgError::Server(Box::new(e))
        };
        if !fatal {
            while let Ok((tag, _)) = self.next_message() {
                if tag == b'Z' {
                    self.ready();
                    break;
                }
            }
        }
        err
    }

    /// Runs one or more statements with the simple protocol; returns the text
    /// rows of the last result (NULL as None).
    pub fn simple_query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, PgError> {
        self.send_query(sql)?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let (tag, r) = self.next_message()?;
            match tag {
                b'T' => rows.clear(),
                b'D' => {
                    let b = &self.buf[r];
                    let n = i16::from_be_bytes([b[0], b[1]]) as usize;
                    let mut p = 2;
                    let mut row = Vec::with_capacity(n);
                    for _ in 0..n {
                        let len = be_i32(&b[p..p + 4]);
                        p += 4;
                        if len < 0 {
                            row.push(None);
                        } else {
                            let l = len as usize;
                            row.push(Some(String::from_utf8_lossy(&b[p..p + l]).into_owned()));
                            p += l;
                        }
                    }
                    rows.push(row);
                }
                b'E' => {
                    let e = parse_error(&self.buf[r]);
                    if e.severity == "FATAL" || e.severity == "PANIC" {
                        return Err(self.error_then_ready(e));
                    }
                    error.get_or_insert(e);
                }
                b'Z' => {
                    self.ready();
                    return match error {
                        Some(e) => Err(if e.code == "57014" && e.message.contains("user request") {
                            PgError::Cancelled
                        } else {
                            PgError::Server(Box::new(e))
                        }),
                        None => Ok(rows),
                    };
                }
                b'H' => {
                    return Err(PgError::Protocol("unexpected COPY in a simple query".into()));
                }
                _ => {}
            }
        }
    }

    /// Describes a query without running it: its result columns.
    pub fn describe(&mut self, sql: &str) -> Result<Vec<FieldDesc>, PgError> {
        frontend::parse("", sql, std::iter::empty(), &mut self.out)?;
        frontend::describe(b'S', "", &mut self.out)?;
        frontend::sync(&mut self.out);
        self.flush_out()?;
        self.in_flight += 1;
        let mut fields = Vec::new();
        let mut error = None;
        loop {
            let (tag, r) = self.next_message()?;
            match tag {
                b'T' => {
                    let b = &self.buf[r];
                    let n = i16::from_be_bytes([b[0], b[1]]) as usize;
                    let mut rest = &b[2..];
                    for _ in 0..n {
                        let (name, after) = cstr(rest);
                        let f = FieldDesc {
                            name: String::from_utf8_lossy(name).into_owned(),
                            table_oid: be_i32(&after[0..4]) as u32,
                            column: i16::from_be_bytes([after[4], after[5]]),
                            type_oid: be_i32(&after[6..10]) as u32,
                            typmod: be_i32(&after[12..16]),
                        };
                        fields.push(f);
                        rest = &after[18..];
                    }
                }
                b'E' => {
                    let e = parse_error(&self.buf[r]);
                    if e.severity == "FATAL" || e.severity == "PANIC" {
                        return Err(self.error_then_ready(e));
                    }
                    error.get_or_insert(e);
                }
                b'Z' => {
                    self.ready();
                    return match error {
                        Some(e) => Err(PgError::Server(Box::new(e))),
                        None => Ok(fields),
                    };
                }
                _ => {}
            }
        }
    }

    /// Sends a query without waiting for its results: Postgres runs it once the queries
    /// before it are done. A COPY sent while the previous one streams starts the moment that
    /// one ends, rather than after the client has read what the socket buffers hold and asked
    /// again. Read its results with [`Connection::start_copy`] once the previous are read.
    pub fn send_query(&mut self, sql: &str) -> Result<(), PgError> {
        frontend::query(sql, &mut self.out)?;
        self.flush_out()?;
        self.in_flight += 1;
        Ok(())
    }

    /// Reads the start of a `COPY … TO STDOUT (FORMAT binary)` sent with
    /// [`Connection::send_query`] (every result before it read); rows are then read with
    /// [`CopyOut::next_tuple`] and [`CopyOut::take_in_place`].
    pub fn start_copy(&mut self) -> Result<CopyOut, PgError> {
        loop {
            let (tag, r) = self.next_message()?;
            match tag {
                b'H' => break,
                b'E' => {
                    let e = parse_error(&self.buf[r]);
                    return Err(self.error_then_ready(e));
                }
                b'N' | b'S' => {}
                other => {
                    return Err(PgError::Protocol(format!(
                        "expected CopyOutResponse, got '{}'",
                        other as char
                    )));
                }
            }
        }
        Ok(CopyOut {
            cur: 0..0,
            pending: Vec::new(),
            pending_used: 0,
            header_done: false,
            done: false,
            streamed: 0,
        })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.is_busy() {
            // A query is still running (an interrupted or failed scan): cancel it
            // so the server stops at once, instead of at its next failed write.
            self.cancel.cancel();
        } else {
            let mut b = BytesMut::new();
            frontend::terminate(&mut b);
            let _ = self.stream.write_all(&b);
        }
    }
}

fn parse_server_version(s: &str) -> u32 {
    let mut it = s.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty());
    let major: u32 = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if major >= 10 {
        major * 10000 + minor
    } else {
        major * 10000 + minor * 100
    }
}

fn negotiate_tls(mut s: TcpStream, cfg: &PgConfig) -> Result<Stream, PgError> {
    let target = format!("{}:{}", cfg.host, cfg.port);
    let tls_err = |reason: String| PgError::Tls {
        target: target.clone(),
        reason,
    };
    let mut b = BytesMut::new();
    frontend::ssl_request(&mut b);
    s.write_all(&b)?;
    let mut answer = [0u8; 1];
    s.read_exact(&mut answer)?;
    match answer[0] {
        b'S' => {
            let config = super::tls::client_config(cfg).map_err(&tls_err)?;
            let name = super::tls::server_name(cfg).map_err(&tls_err)?;
            let conn = rustls::ClientConnection::new(config, name).map_err(|e| tls_err(e.to_string()))?;
            let mut tls = rustls::StreamOwned::new(conn, s);
            // Complete the handshake now so that verification errors are TLS errors.
            while tls.conn.is_handshaking() {
                tls.conn
                    .complete_io(&mut tls.sock)
                    .map_err(|e| tls_err(e.to_string()))?;
            }
            Ok(Stream::Tls(Box::new(tls)))
        }
        b'N' => {
            if matches!(cfg.sslmode, SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull) {
                Err(tls_err(
                    "the server does not support SSL, but sslmode requires it".into(),
                ))
            } else {
                Ok(Stream::Tcp(s))
            }
        }
        other => Err(PgError::Protocol(format!("unexpected answer {other} to SSLRequest"))),
    }
}

/// A running binary COPY OUT. Yields one tuple (its raw bytes, field count
/// included) at a time; the binary header and trailer are handled here.
pub struct CopyOut {
    /// Unread part of the current CopyData payload, in `conn.buf`.
    cur: Range<usize>,
    /// Bytes of a tuple split across CopyData messages.
    pending: Vec<u8>,
    /// How much of `pending` the last returned tuple used.
    pending_used: usize,
    header_done: bool,
    done: bool,
    /// Bytes taken through [`CopyOut::take_in_place`] so far.
    streamed: usize,
}

/// What [`CopyOut::take_in_place`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// One or more whole tuples.
    Tuples,
    /// Not one: the next message is not all in the buffer yet.
    NeedBytes,
    /// Not one: what comes next is for [`CopyOut::next_tuple`] (the header, the trailer,
    /// another message, a tuple split across messages).
    Other,
}

/// Length of the unit at the start of `b` (header or tuple), if complete.
fn unit_len(b: &[u8], header: bool) -> Option<usize> {
    if header {
        if b.len() < 19 {
            return None;
        }
        let ext = be_i32(&b[15..19]) as usize;
        return (b.len() >= 19 + ext).then_some(19 + ext);
    }
    if b.len() < 2 {
        return None;
    }
    let n = i16::from_be_bytes([b[0], b[1]]);
    if n < 0 {
        return Some(2);
    }
    let mut p = 2usize;
    for _ in 0..n {
        if b.len() < p + 4 {
            return None;
        }
        let len = be_i32(&b[p..p + 4]);
        p += 4;
        if len > 0 {
            p += len as usize;
        }
    }
    (p <= b.len()).then_some(p)
}

impl CopyOut {
    /// The next tuple, or None at the end of the data (the command is then
    /// complete and the session ready for the next query).
    pub fn next_tuple<'a>(&'a mut self, conn: &'a mut Connection) -> Result<Option<&'a [u8]>, PgError> {
        if self.pending_used > 0 {
            self.pending.drain(..self.pending_used);
            self.pending_used = 0;
        }
        loop {
            if self.done {
                return Ok(None);
            }
            if self.pending.is_empty() && !self.cur.is_empty() {
                let avail = &conn.buf[self.cur.clone()];
                match unit_len(avail, !self.header_done) {
                    Some(n) => {
                        let r = self.cur.start..self.cur.start + n;
                        self.cur.start += n;
                        if !self.header_done {
                            Self::header_ok(&conn.buf[r])?;
                            self.header_done = true;
                            continue;
                        }
                        if n == 2 {
                            // Trailer (-1): read on to ReadyForQuery.
                            self.finish(conn)?;
                            return Ok(None);
                        }
                        return Ok(Some(&conn.buf[r]));
                    }
                    None => {
                        self.pending.extend_from_slice(avail);
                        self.cur = 0..0;
                    }
                }
            } else if !self.pending.is_empty() {
                if let Some(n) = unit_len(&self.pending, !self.header_done) {
                    if !self.header_done {
                        let h = self.pending[..n].to_vec();
                        self.pending.drain(..n);
                        Self::header_ok(&h)?;
                        self.header_done = true;
                        continue;
                    }
                    if n == 2 {
                        self.pending.clear();
                        self.finish(conn)?;
                        return Ok(None);
                    }
                    self.pending_used = n;
                    return Ok(Some(&self.pending[..n]));
                }
                // Need more: append the next message's payload.
                if !self.cur.is_empty() {
                    let avail = conn.buf[self.cur.clone()].to_vec();
                    self.pending.extend_from_slice(&avail);
                    self.cur = 0..0;
                    continue;
                }
                self.next_copy_data(conn)?;
            } else {
                self.next_copy_data(conn)?;
            }
        }
    }

    /// Records in `spans` where the whole tuples the connection has buffered lie in its read
    /// buffer, and consumes them; the buffer must then not move until those tuples are used
    /// (until [`Connection::swap_read_buffer`] hands it over).
    pub fn take_in_place(&mut self, conn: &mut Connection, spans: &mut Vec<(u32, u32)>) -> Taken {
        if self.done || !self.header_done || !self.cur.is_empty() || !self.pending.is_empty() {
            return Taken::Other;
        }
        let base = conn.pos;
        let buf = &conn.buf[base..conn.end];
        let (mut p, mut n) = (0usize, 0usize);
        let next = loop {
            if buf.len() - p < 5 {
                break Taken::NeedBytes;
            }
            let len = be_i32(&buf[p + 1..p + 5]);
            // 2 bytes is the trailer (or a tuple of no columns, which next_tuple sorts out).
            if buf[p] != b'd' || len < 4 || len == 4 + 2 {
                break Taken::Other;
            }
            let total = 1 + len as usize;
            if buf.len() - p < total {
                break Taken::NeedBytes;
            }
            // "Messages sent from the backend will always correspond to single data rows"
            // (the protocol's CopyData), so the payload is one tuple; the decoder checks
            // that its fields fill it exactly.
            spans.push(((base + p + 5) as u32, (base + p + total) as u32));
            p += total;
            n += 1;
        };
        conn.pos += p;
        self.streamed += p;
        if self.streamed >= BATCH_AFTER {
            conn.batch_reads(true);
        }
        if n > 0 {
            Taken::Tuples
        } else {
            next
        }
    }

    fn header_ok(h: &[u8]) -> Result<(), PgError> {
        if &h[..11] != b"PGCOPY\n\xff\r\n\0" {
            return Err(PgError::Protocol("bad binary COPY signature".into()));
        }
        Ok(())
    }

    /// Reads messages until the next CopyData (setting `cur`) or the end.
    fn next_copy_data(&mut self, conn: &mut Connection) -> Result<(), PgError> {
        loop {
            let (tag, r) = conn.next_message()?;
            match tag {
                b'd' => {
                    self.cur = r;
                    return Ok(());
                }
                b'c' | b'C' | b'N' | b'S' => {}
                b'Z' => {
                    conn.ready();
                    self.done = true;
                    if !self.pending.is_empty() {
                        return Err(PgError::Protocol("COPY data ended inside a row".into()));
                    }
                    return Ok(());
                }
                b'E' => {
                    let e = parse_error(&conn.buf[r]);
                    self.done = true;
                    return Err(conn.error_then_ready(e));
                }
                other => {
                    return Err(PgError::Protocol(format!(
                        "unexpected message '{}' in COPY",
                        other as char
                    )));
                }
            }
        }
    }

    /// After the trailer: CopyDone, CommandComplete, ReadyForQuery.
    fn finish(&mut self, conn: &mut Connection) -> Result<(), PgError> {
        while !self.done {
            self.next_copy_data(conn)?;
            if !self.done {
                return Err(PgError::Protocol("data after the COPY trailer".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_lengths() {
        let mut h = b"PGCOPY\n\xff\r\n\0".to_vec();
        h.extend_from_slice(&0i32.to_be_bytes());
        h.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(unit_len(&h, true), Some(19));
        assert_eq!(unit_len(&h[..10], true), None);
        let mut t = 2i16.to_be_bytes().to_vec();
        t.extend_from_slice(&4i32.to_be_bytes());
        t.extend_from_slice(&7i32.to_be_bytes());
        t.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(unit_len(&t, false), Some(t.len()));
        assert_eq!(unit_len(&t[..7], false), None);
        assert_eq!(unit_len(&(-1i16).to_be_bytes(), false), Some(2));
    }

    #[test]
    fn server_versions() {
        assert_eq!(parse_server_version("15.18 (Debian 15.18-0+deb12u1)"), 150018);
        assert_eq!(parse_server_version("18.1"), 180001);
        assert_eq!(parse_server_version("9.6.3"), 90600);
    }

    #[test]
    fn error_fields() {
        let body = b"SERROR\0C42P01\0Mrelation \"x\" does not exist\0\0";
        let e = parse_error(body);
        assert_eq!((e.severity.as_str(), e.code.as_str()), ("ERROR", "42P01"));
        assert!(e.message.contains("does not exist"));
    }
}
