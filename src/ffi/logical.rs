//! DuckDB logical types built from [`DuckType`].

use std::ffi::{c_char, CString};

use super::{cstring, sys};
use crate::types::DuckType;

/// An owned `duckdb_logical_type`, destroyed on drop.
pub struct LogicalType(pub(crate) sys::duckdb_logical_type);

impl LogicalType {
    pub fn new(t: &DuckType) -> LogicalType {
        use sys::*;
        let simple = |id: DUCKDB_TYPE| {
            // SAFETY: creating a logical type from a type id has no preconditions.
            LogicalType(unsafe { duckdb_create_logical_type(id) })
        };
        match t {
            DuckType::Boolean => simple(DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN),
            DuckType::SmallInt => simple(DUCKDB_TYPE_DUCKDB_TYPE_SMALLINT),
            DuckType::Integer => simple(DUCKDB_TYPE_DUCKDB_TYPE_INTEGER),
            DuckType::BigInt => simple(DUCKDB_TYPE_DUCKDB_TYPE_BIGINT),
            DuckType::UInteger => simple(DUCKDB_TYPE_DUCKDB_TYPE_UINTEGER),
            DuckType::Float => simple(DUCKDB_TYPE_DUCKDB_TYPE_FLOAT),
            DuckType::Double => simple(DUCKDB_TYPE_DUCKDB_TYPE_DOUBLE),
            DuckType::Varchar => simple(DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR),
            DuckType::Blob => simple(DUCKDB_TYPE_DUCKDB_TYPE_BLOB),
            DuckType::Date => simple(DUCKDB_TYPE_DUCKDB_TYPE_DATE),
            DuckType::Time => simple(DUCKDB_TYPE_DUCKDB_TYPE_TIME),
            DuckType::Timestamp => simple(DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP),
            DuckType::TimestampTz => simple(DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_TZ),
            DuckType::Interval => simple(DUCKDB_TYPE_DUCKDB_TYPE_INTERVAL),
            DuckType::Uuid => simple(DUCKDB_TYPE_DUCKDB_TYPE_UUID),
            DuckType::Json => {
                let t = simple(DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR);
                let alias = cstring("JSON");
                // SAFETY: t.0 is a live logical type and alias a valid C string that
                // DuckDB copies.
                unsafe { duckdb_logical_type_set_alias(t.0, alias.as_ptr()) };
                t
            }
            DuckType::Decimal { width, scale } => {
                // SAFETY: width 1..=38 and scale <= width are guaranteed by the type mapper.
                LogicalType(unsafe { duckdb_create_decimal_type(*width, *scale) })
            }
            DuckType::Enum(labels) => {
                let owned: Vec<CString> = labels.iter().map(|l| cstring(l)).collect();
                let mut ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
                // SAFETY: ptrs points to labels.len() valid C strings that outlive the
                // call; DuckDB copies them into the new type.
                LogicalType(unsafe { duckdb_create_enum_type(ptrs.as_mut_ptr(), ptrs.len() as idx_t) })
            }
            DuckType::List(child) => {
                let c = LogicalType::new(child);
                // SAFETY: c.0 is a live logical type; DuckDB copies it.
                LogicalType(unsafe { duckdb_create_list_type(c.0) })
            }
        }
    }
}

impl Drop for LogicalType {
    fn drop(&mut self) {
        // SAFETY: self.0 was created by a duckdb_create_* call and is destroyed once.
        unsafe { sys::duckdb_destroy_logical_type(&mut self.0) };
    }
}
