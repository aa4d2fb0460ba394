//! Writing decoded Postgres tuples into DuckDB output vectors.

use std::collections::HashMap;

use crate::ffi::chunk::{FlatVector, Interval, OutputChunk};
use crate::pg::catalog::{Column, PgKind};
use crate::pg::decode::{self, DecodeError, Fields, Numeric};
use crate::types::{DecimalStorage, EnumStorage};

/// How one projected column is written.
pub struct Target {
    /// Column name, for messages.
    pub name: String,
    pub kind: Writer,
}

pub enum Writer {
    /// A virtual column (row id) we do not produce: always NULL.
    Null,
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Decimal {
        width: u8,
        scale: u8,
        storage: DecimalStorage,
    },
    Date,
    Time,
    Timestamp,
    Interval,
    Uuid,
    Bytes,
    Text,
    Jsonb,
    Enum {
        index: HashMap<Vec<u8>, u32>,
        storage: EnumStorage,
    },
    List(Box<Writer>),
}

impl Writer {
    pub fn for_kind(kind: &PgKind) -> Writer {
        match kind {
            PgKind::Bool => Writer::Bool,
            PgKind::Int2 => Writer::Int2,
            PgKind::Int4 => Writer::Int4,
            PgKind::Int8 => Writer::Int8,
            PgKind::Float4 => Writer::Float4,
            PgKind::Float8 => Writer::Float8,
            PgKind::Numeric { width, scale } => Writer::Decimal {
                width: *width,
                scale: *scale,
                storage: DecimalStorage::for_width(*width),
            },
            PgKind::Date => Writer::Date,
            PgKind::Time => Writer::Time,
            PgKind::Timestamp => Writer::Timestamp,
            PgKind::Interval => Writer::Interval,
            PgKind::Uuid => Writer::Uuid,
            PgKind::Bytea => Writer::Bytes,
            PgKind::Text => Writer::Text,
            PgKind::Jsonb => Writer::Jsonb,
            PgKind::Enum(labels) => Writer::Enum {
                index: labels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l.as_bytes().to_vec(), i as u32))
                    .collect(),
                storage: EnumStorage::for_len(labels.len()),
            },
            PgKind::Array(elem) => Writer::List(Box::new(Writer::for_kind(elem))),
        }
    }
}

impl Target {
    pub fn new(col: &Column) -> Target {
        Target {
            name: col.name.clone(),
            kind: Writer::for_kind(&col.kind),
        }
    }
    pub fn null(name: &str) -> Target {
        Target {
            name: name.to_string(),
            kind: Writer::Null,
        }
    }
}

fn text_of(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(v);
    if s.len() > 80 {
        format!("{}…", &s[..s.char_indices().nth(77).map(|(i, _)| i).unwrap_or(s.len())])
    } else {
        s.into_owned()
    }
}

/// Writes one non-NULL value.
#[inline]
fn write_value(w: &Writer, vec: &mut FlatVector<'_>, row: usize, v: &[u8]) -> Result<(), DecodeError> {
    match w {
        Writer::Null => vec.set_null(row),
        Writer::Bool => vec.set::<bool>(row, v.first().copied().unwrap_or(0) != 0),
        Writer::Int2 => vec.set::<i16>(row, decode::i16_be(v)?),
        Writer::Int4 => vec.set::<i32>(row, decode::i32_be(v)?),
        Writer::Int8 => vec.set::<i64>(row, decode::i64_be(v)?),
        Writer::Float4 => vec.set::<f32>(row, f32::from_bits(decode::i32_be(v)? as u32)),
        Writer::Float8 => vec.set::<f64>(row, f64::from_bits(decode::i64_be(v)? as u64)),
        // The value has at most `width` digits, so it fits the storage.
        &Writer::Decimal { width, scale, storage } => match storage {
            DecimalStorage::I16 => vec.set::<i16>(row, decode::decimal_i64(v, width, scale)? as i16),
            DecimalStorage::I32 => vec.set::<i32>(row, decode::decimal_i64(v, width, scale)? as i32),
            DecimalStorage::I64 => vec.set::<i64>(row, decode::decimal_i64(v, width, scale)?),
            DecimalStorage::I128 => {
                let n = Numeric::parse(v)?;
                let x = n.to_scaled(width, scale).ok_or_else(|| n.does_not_fit(width, scale))?;
                vec.set::<[u64; 2]>(row, [x as u64, (x >> 64) as u64])
            }
        },
        Writer::Date => vec.set::<i32>(row, decode::date(v)?),
        Writer::Time => vec.set::<i64>(row, decode::i64_be(v)?),
        Writer::Timestamp => vec.set::<i64>(row, decode::timestamp(v)?),
        Writer::Interval => {
            let (months, days, micros) = decode::interval(v)?;
            vec.set::<Interval>(row, Interval { months, days, micros })
        }
        Writer::Uuid => vec.set::<[u64; 2]>(row, decode::uuid(v)?),
        Writer::Bytes => vec.set_bytes(row, v),
        Writer::Text => {
            if std::str::from_utf8(v).is_err() {
                return Err(DecodeError(format!("text value '{}' is not valid UTF-8", text_of(v))));
            }
            vec.set_bytes(row, v)
        }
        Writer::Jsonb => {
            let body = v.get(1..).unwrap_or(&[]);
            if v.first() != Some(&1) || std::str::from_utf8(body).is_err() {
                return Err(DecodeError("jsonb value has an unknown binary version".into()));
            }
            vec.set_bytes(row, body)
        }
        Writer::Enum { index, storage } => {
            let i = *index
                .get(v)
                .ok_or_else(|| DecodeError(format!("enum label '{}' is not in the type", text_of(v))))?;
            match storage {
                EnumStorage::U8 => vec.set::<u8>(row, i as u8),
                EnumStorage::U16 => vec.set::<u16>(row, i as u16),
                EnumStorage::U32 => vec.set::<u32>(row, i),
            }
        }
        Writer::List(elem) => {
            let h = decode::array_header(v)?;
            if h.ndim > 1 {
                return Err(DecodeError(format!(
                    "arrays of {} dimensions are not supported (only one-dimensional arrays map to LIST)",
                    h.ndim
                )));
            }
            let offset = vec.list_len();
            let mut child = vec.list_child_reserved(offset + h.len);
            let mut fields = Fields::new(v, h.data_start);
            for i in 0..h.len {
                match fields.next_field()? {
                    None => child.set_null(offset + i),
                    Some(e) => write_value(elem, &mut child, offset + i, e)?,
                }
            }
            vec.set_list_len(offset + h.len);
            vec.set_list_entry(row, offset, h.len);
        }
    }
    Ok(())
}

/// Fills an output chunk from tuples, column by column: one pass finds every field of
/// every tuple, then each column is written in a loop of its own type (no per-value
/// dispatch on the column's type, and the fixed-width ones without a call per value).
pub struct ChunkWriter<'a> {
    vectors: Vec<FlatVector<'a>>,
    /// Per tuple and column: the value's start in the block's bytes and its length
    /// (negative for NULL).
    fields: Vec<(u32, i32)>,
}

impl<'a> ChunkWriter<'a> {
    pub fn new(out: &'a OutputChunk) -> ChunkWriter<'a> {
        ChunkWriter {
            vectors: (0..out.column_count()).map(|c| out.vector(c)).collect(),
            fields: Vec::new(),
        }
    }

    /// Decodes the tuples at `spans` of `data` into output rows `row0..`. The error names
    /// the column.
    ///
    /// Tuples go in batches of about L1_BATCH bytes: each column's loop reads every
    /// tuple of its batch again, and a batch that fits the core's first-level cache
    /// reads it from there rather than from the second level.
    pub fn write_tuples(
        &mut self,
        targets: &[Target],
        data: &[u8],
        spans: &[(u32, u32)],
        row0: usize,
    ) -> Result<(), String> {
        const L1_BATCH: u32 = 16 * 1024;
        let mut first = 0;
        while first < spans.len() {
            let limit = spans[first].0.saturating_add(L1_BATCH);
            let mut end = first + 1;
            while end < spans.len() && spans[end].1 <= limit {
                end += 1;
            }
            self.write_batch(targets, data, &spans[first..end], row0 + first)?;
            first = end;
        }
        Ok(())
    }

    fn write_batch(
        &mut self,
        targets: &[Target],
        data: &[u8],
        spans: &[(u32, u32)],
        row0: usize,
    ) -> Result<(), String> {
        let cols = targets.len();
        let n = spans.len();
        // Sized up front and filled a tuple's slice at a time: a push per field reloads
        // the vector's length and capacity (a third of the pass, in profiles).
        self.fields.clear();
        self.fields.resize(n * cols, (0, -1));
        for (i, &(start, end)) in spans.iter().enumerate() {
            locate_fields(
                &data[..end as usize],
                start as usize,
                &mut self.fields[i * cols..(i + 1) * cols],
            )?;
        }
        let fields = &self.fields;
        for (c, t) in targets.iter().enumerate() {
            let vec = &mut self.vectors[c];
            let at = |i: usize| fields[i * cols + c];
            let value = |i: usize| -> Option<&[u8]> {
                let (off, len) = at(i);
                (len >= 0).then(|| &data[off as usize..off as usize + len as usize])
            };
            let r = match &t.kind {
                Writer::Int2 => vec.write_column(row0, n, |i| value(i).map(decode::i16_be).transpose()),
                Writer::Int4 => vec.write_column(row0, n, |i| value(i).map(decode::i32_be).transpose()),
                Writer::Int8 | Writer::Time => vec.write_column(row0, n, |i| value(i).map(decode::i64_be).transpose()),
                Writer::Date => vec.write_column(row0, n, |i| value(i).map(decode::date).transpose()),
                &Writer::Decimal { width, scale, storage } if storage != DecimalStorage::I128 => {
                    let dec = |i: usize| value(i).map(|v| decode::decimal_i64(v, width, scale)).transpose();
                    match storage {
                        // The value has at most `width` digits, so it fits the storage.
                        DecimalStorage::I16 => vec.write_column(row0, n, |i| dec(i).map(|x| x.map(|x| x as i16))),
                        DecimalStorage::I32 => vec.write_column(row0, n, |i| dec(i).map(|x| x.map(|x| x as i32))),
                        DecimalStorage::I64 | DecimalStorage::I128 => vec.write_column(row0, n, dec),
                    }
                }
                Writer::Timestamp => vec.write_column(row0, n, |i| value(i).map(decode::timestamp).transpose()),
                other => (0..n).try_for_each(|i| match value(i) {
                    None => {
                        vec.set_null(row0 + i);
                        Ok(())
                    }
                    Some(v) => write_value(other, vec, row0 + i, v),
                }),
            };
            if let Err(DecodeError(m)) = r {
                return Err(format!("column \"{}\": {m}", t.name));
            }
        }
        Ok(())
    }
}

/// Sets `fields` to where each field of the tuple at `start` of `data` lies (one entry
/// per column); `data` ends where the tuple does, and the fields must fill it.
#[inline]
fn locate_fields(data: &[u8], start: usize, fields: &mut [(u32, i32)]) -> Result<(), String> {
    let cols = fields.len();
    let head = data
        .get(start..start + 2)
        .ok_or_else(|| "tuple is truncated".to_string())?;
    let count = i16::from_be_bytes([head[0], head[1]]) as usize;
    if count != cols {
        return Err(format!("COPY row has {count} fields, expected {cols}"));
    }
    let mut walk = Fields::new(data, start + 2);
    for field in fields.iter_mut() {
        let (at, len) = walk.next_span().map_err(|DecodeError(m)| m)?;
        *field = (at as u32, len);
    }
    let end = walk.position();
    if end != data.len() {
        return Err(format!("COPY row has {} bytes after its last field", data.len() - end));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::locate_fields;

    /// A binary-COPY tuple of the given fields (None: NULL).
    fn tuple(fields: &[Option<&[u8]>]) -> Vec<u8> {
        let mut t = (fields.len() as i16).to_be_bytes().to_vec();
        for f in fields {
            match f {
                None => t.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    t.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    t.extend_from_slice(v);
                }
            }
        }
        t
    }

    #[test]
    fn fields_are_located_in_the_block() {
        let mut data = b"ignored".to_vec();
        let start = data.len();
        data.extend(tuple(&[Some(&[0, 0, 0, 7]), None, Some(b""), Some(b"abc")]));
        let mut f = [(0, 0); 4];
        locate_fields(&data, start, &mut f).unwrap();
        let at = |(off, len): (u32, i32)| (len >= 0).then(|| &data[off as usize..off as usize + len as usize]);
        assert_eq!(at(f[0]), Some(&[0u8, 0, 0, 7][..]));
        assert_eq!(at(f[1]), None);
        assert_eq!(at(f[2]), Some(&b""[..]));
        assert_eq!(at(f[3]), Some(&b"abc"[..]));
    }

    #[test]
    fn malformed_tuples_are_errors() {
        let t = tuple(&[Some(b"ab"), Some(b"c")]);
        let (mut f2, mut f3) = ([(0, 0); 2], [(0, 0); 3]);
        assert_eq!(
            locate_fields(&t, 0, &mut f3).unwrap_err(),
            "COPY row has 2 fields, expected 3"
        );
        assert_eq!(
            locate_fields(&t[..t.len() - 1], 0, &mut f2).unwrap_err(),
            "tuple is truncated"
        );
        assert_eq!(locate_fields(&t[..7], 0, &mut f2).unwrap_err(), "tuple is truncated");
        let mut long = t.clone();
        long.push(0);
        assert_eq!(
            locate_fields(&long, 0, &mut f2).unwrap_err(),
            "COPY row has 1 bytes after its last field"
        );
    }
}
