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
        Writer::Decimal { width, scale, storage } => {
            let n = Numeric::parse(v)?;
            let x = n.to_scaled(*width, *scale).ok_or_else(|| {
                DecodeError(format!(
                    "numeric value {} does not fit DECIMAL({width},{scale}) exactly",
                    n.to_text()
                ))
            })?;
            match storage {
                DecimalStorage::I16 => vec.set::<i16>(row, x as i16),
                DecimalStorage::I32 => vec.set::<i32>(row, x as i32),
                DecimalStorage::I64 => vec.set::<i64>(row, x as i64),
                DecimalStorage::I128 => vec.set::<[u64; 2]>(row, [x as u64, (x >> 64) as u64]),
            }
        }
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

/// Fills an output chunk from tuples, column by column.
pub struct ChunkWriter<'a> {
    vectors: Vec<FlatVector<'a>>,
}

impl<'a> ChunkWriter<'a> {
    pub fn new(out: &'a OutputChunk) -> ChunkWriter<'a> {
        ChunkWriter {
            vectors: (0..out.column_count()).map(|c| out.vector(c)).collect(),
        }
    }

    /// Decodes `tuple` into output row `row`. The error names the column.
    #[inline]
    pub fn write_tuple(&mut self, targets: &[Target], tuple: &[u8], row: usize) -> Result<(), String> {
        let n = i16::from_be_bytes([tuple[0], tuple[1]]) as usize;
        if n != targets.len() {
            return Err(format!("COPY row has {n} fields, expected {}", targets.len()));
        }
        let mut fields = Fields::new(tuple, 2);
        for (c, t) in targets.iter().enumerate() {
            let vec = &mut self.vectors[c];
            let r = match fields.next_field() {
                Ok(None) => {
                    vec.set_null(row);
                    Ok(())
                }
                Ok(Some(v)) => write_value(&t.kind, vec, row, v),
                Err(e) => Err(e),
            };
            if let Err(DecodeError(m)) = r {
                return Err(format!("column \"{}\": {m}", t.name));
            }
        }
        Ok(())
    }
}
