//! DuckDB column types as plain Rust values, and their SQL spelling.
//!
//! The Postgres → DuckDB mapping itself lives in `pg::catalog`; this module only
//! describes the DuckDB side so that the FFI layer can build logical types from it.

use std::fmt;

/// A DuckDB logical type the extension can produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DuckType {
    Boolean,
    SmallInt,
    Integer,
    BigInt,
    UInteger,
    Float,
    Double,
    /// DECIMAL(width, scale), width 1..=38.
    Decimal {
        width: u8,
        scale: u8,
    },
    Varchar,
    /// VARCHAR with the JSON alias.
    Json,
    Blob,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Interval,
    Uuid,
    /// ENUM with its labels in sort order.
    Enum(Vec<String>),
    List(Box<DuckType>),
}

/// How DuckDB stores a DECIMAL of a given width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecimalStorage {
    I16,
    I32,
    I64,
    I128,
}

impl DecimalStorage {
    pub fn for_width(width: u8) -> DecimalStorage {
        match width {
            0..=4 => DecimalStorage::I16,
            5..=9 => DecimalStorage::I32,
            10..=18 => DecimalStorage::I64,
            _ => DecimalStorage::I128,
        }
    }
}

/// How DuckDB stores an ENUM with `n` labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnumStorage {
    U8,
    U16,
    U32,
}

impl EnumStorage {
    pub fn for_len(n: usize) -> EnumStorage {
        if n <= u8::MAX as usize {
            EnumStorage::U8
        } else if n <= u16::MAX as usize {
            EnumStorage::U16
        } else {
            EnumStorage::U32
        }
    }
}

impl fmt::Display for DuckType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DuckType::Boolean => f.write_str("BOOLEAN"),
            DuckType::SmallInt => f.write_str("SMALLINT"),
            DuckType::Integer => f.write_str("INTEGER"),
            DuckType::BigInt => f.write_str("BIGINT"),
            DuckType::UInteger => f.write_str("UINTEGER"),
            DuckType::Float => f.write_str("FLOAT"),
            DuckType::Double => f.write_str("DOUBLE"),
            DuckType::Decimal { width, scale } => write!(f, "DECIMAL({width},{scale})"),
            DuckType::Varchar => f.write_str("VARCHAR"),
            DuckType::Json => f.write_str("JSON"),
            DuckType::Blob => f.write_str("BLOB"),
            DuckType::Date => f.write_str("DATE"),
            DuckType::Time => f.write_str("TIME"),
            DuckType::Timestamp => f.write_str("TIMESTAMP"),
            DuckType::TimestampTz => f.write_str("TIMESTAMP WITH TIME ZONE"),
            DuckType::Interval => f.write_str("INTERVAL"),
            DuckType::Uuid => f.write_str("UUID"),
            DuckType::Enum(labels) => {
                f.write_str("ENUM(")?;
                for (i, l) in labels.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "'{}'", l.replace('\'', "''"))?;
                }
                f.write_str(")")
            }
            DuckType::List(child) => write!(f, "{child}[]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_storage_follows_duckdb_widths() {
        assert_eq!(DecimalStorage::for_width(4), DecimalStorage::I16);
        assert_eq!(DecimalStorage::for_width(5), DecimalStorage::I32);
        assert_eq!(DecimalStorage::for_width(9), DecimalStorage::I32);
        assert_eq!(DecimalStorage::for_width(18), DecimalStorage::I64);
        assert_eq!(DecimalStorage::for_width(19), DecimalStorage::I128);
        assert_eq!(DecimalStorage::for_width(38), DecimalStorage::I128);
    }

    #[test]
    fn enum_storage_follows_dictionary_size() {
        assert_eq!(EnumStorage::for_len(5), EnumStorage::U8);
        assert_eq!(EnumStorage::for_len(255), EnumStorage::U8);
        assert_eq!(EnumStorage::for_len(256), EnumStorage::U16);
        assert_eq!(EnumStorage::for_len(70_000), EnumStorage::U32);
    }

    #[test]
    fn sql_spelling() {
        let t = DuckType::List(Box::new(DuckType::Enum(vec!["G".into(), "it's".into()])));
        assert_eq!(t.to_string(), "ENUM('G', 'it''s')[]");
        assert_eq!(DuckType::Decimal { width: 5, scale: 2 }.to_string(), "DECIMAL(5,2)");
    }
}
