//! Hand-written encoder for PostgreSQL's binary COPY format
//! (`COPY t (cols) FROM STDIN (FORMAT binary)`).
//!
//! Rows are encoded into an in-memory buffer that is handed to the output (the
//! `CopyInWriter` of the `postgres` crate, or anything else that implements
//! `Write`) in large chunks.

use std::io::{self, Write};

/// Microseconds between 1970-01-01 and 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_UNIX_SECS: i64 = 946_684_800;
/// `text`: element type of `text[]` arrays.
const TEXT_OID: u32 = 25;
/// Flush to the output once this many bytes are buffered.
const CHUNK: usize = 1 << 18;

pub struct CopyEncoder<W: Write> {
    buf: Vec<u8>,
    out: W,
    rows: u64,
}

impl<W: Write> CopyEncoder<W> {
    /// Starts the stream by writing the binary COPY header.
    pub fn new(out: W) -> CopyEncoder<W> {
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        CopyEncoder { buf, out, rows: 0 }
    }

    /// Begins a row of `fields` columns.
    #[inline]
    pub fn row(&mut self, fields: i16) -> io::Result<()> {
        if self.buf.len() >= CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        self.rows += 1;
        self.buf.extend_from_slice(&fields.to_be_bytes());
        Ok(())
    }

    #[inline]
    pub fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    #[inline]
    pub fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&2i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&4i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn bool(&mut self, v: bool) {
        self.buf.extend_from_slice(&1i32.to_be_bytes());
        self.buf.push(u8::from(v));
    }

    /// `text`, `char(n)` (the server pads to the typmod), enum labels, …
    #[inline]
    pub fn text(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    /// `bytea` (and the raw payload of text-like types).
    #[inline]
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(v);
    }

    /// `timestamptz` from Unix seconds plus microseconds.
    #[inline]
    pub fn timestamptz(&mut self, unix_secs: i64, micros: i64) {
        let v = (unix_secs - PG_EPOCH_UNIX_SECS) * 1_000_000 + micros;
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// `date` from days since 1970-01-01.
    #[inline]
    pub fn date(&mut self, unix_days: i32) {
        self.i32(unix_days - (PG_EPOCH_UNIX_SECS / 86_400) as i32);
    }

    /// `numeric` with scale 2, from an integer number of hundredths.
    #[inline]
    pub fn numeric_cents(&mut self, cents: i64) {
        let (len, data) = encode_numeric_cents(cents);
        self.buf.extend_from_slice(&((len * 2 + 8) as i32).to_be_bytes());
        for w in &data[..len + 4] {
            self.buf.extend_from_slice(&w.to_be_bytes());
        }
    }

    /// A one-dimensional `text[]` without NULL elements.
    pub fn text_array(&mut self, items: &[&str]) {
        let payload: usize = 20 + items.iter().map(|s| 4 + s.len()).sum::<usize>();
        self.buf.extend_from_slice(&(payload as i32).to_be_bytes());
        self.buf.extend_from_slice(&1i32.to_be_bytes()); // ndim
        self.buf.extend_from_slice(&0i32.to_be_bytes()); // has nulls
        self.buf.extend_from_slice(&TEXT_OID.to_be_bytes());
        self.buf.extend_from_slice(&(items.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(&1i32.to_be_bytes()); // lower bound
        for s in items {
            self.text(s);
        }
    }

    /// Writes the trailer and everything still buffered; returns the output and
    /// the number of rows written.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok((self.out, self.rows))
    }
}

/// The binary `numeric` representation of `cents / 100` with display scale 2:
/// returns the digit count and the words `ndigits, weight, sign, dscale,
/// digits…` (base-10000 digits, most significant first).
fn encode_numeric_cents(cents: i64) -> (usize, [i16; 12]) {
    let sign: i16 = if cents < 0 { 0x4000 } else { 0 };
    let abs = cents.unsigned_abs();
    let int_part = abs / 100;
    let frac_group = ((abs % 100) * 100) as i16;
    // Base-10000 groups of the integer part, least significant first.
    let mut int_groups = [0i16; 5];
    let mut n_int = 0;
    let mut rest = int_part;
    while rest > 0 {
        int_groups[n_int] = (rest % 10_000) as i16;
        rest /= 10_000;
        n_int += 1;
    }
    let mut digits = [0i16; 8];
    let mut n = 0;
    for k in (0..n_int).rev() {
        digits[n] = int_groups[k];
        n += 1;
    }
    let mut weight = n_int as i16 - 1;
    if frac_group != 0 {
        digits[n] = frac_group;
        n += 1;
    }
    // Strip trailing zero groups (the integer part can end in 0000).
    while n > 0 && digits[n - 1] == 0 {
        n -= 1;
    }
    if n == 0 {
        weight = 0;
    }
    let mut out = [0i16; 12];
    out[0] = n as i16;
    out[1] = weight;
    out[2] = sign;
    out[3] = 2;
    out[4..4 + n].copy_from_slice(&digits[..n]);
    (n, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(cents: i64) -> Vec<i16> {
        let (n, d) = encode_numeric_cents(cents);
        d[..n + 4].to_vec()
    }

    #[test]
    fn numeric_encoding() {
        assert_eq!(num(0), vec![0, 0, 0, 2]);
        assert_eq!(num(99), vec![1, -1, 0, 2, 9900]);
        assert_eq!(num(499), vec![2, 0, 0, 2, 4, 9900]);
        assert_eq!(num(1199), vec![2, 0, 0, 2, 11, 9900]);
        assert_eq!(num(2900), vec![1, 0, 0, 2, 29]);
        assert_eq!(num(1_000_000), vec![1, 1, 0, 2, 1]); // 10000.00
        assert_eq!(num(1_234_567), vec![3, 1, 0, 2, 1, 2345, 6700]);
        assert_eq!(num(-150), vec![2, 0, 0x4000, 2, 1, 5000]);
    }

    #[test]
    fn framing() {
        let mut e = CopyEncoder::new(Vec::new());
        e.row(2).unwrap();
        e.i32(7);
        e.null();
        let (out, rows) = e.finish().unwrap();
        assert_eq!(rows, 1);
        assert_eq!(&out[..11], b"PGCOPY\n\xff\r\n\0");
        assert_eq!(out.len(), 19 + 2 + 8 + 4 + 2);
        assert_eq!(&out[out.len() - 2..], &[0xff, 0xff]);
    }
}
