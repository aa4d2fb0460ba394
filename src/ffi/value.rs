//! Reading `duckdb_value` parameters into Rust values.

use std::ffi::CStr;

use super::sys;

/// An owned `duckdb_value`, destroyed on drop.
pub struct Value(sys::duckdb_value);

impl Value {
    /// Wraps a value DuckDB handed over; null pointers become `None`.
    ///
    /// # Safety
    /// `v` must be null or a value the caller owns and has not destroyed.
    pub(crate) unsafe fn from_raw(v: sys::duckdb_value) -> Option<Value> {
        if v.is_null() {
            None
        } else {
            Some(Value(v))
        }
    }

    pub fn is_null(&self) -> bool {
        // SAFETY: self.0 is a live value.
        unsafe { sys::duckdb_is_null_value(self.0) }
    }

    /// The value as text (DuckDB casts it to VARCHAR).
    pub fn to_string_lossy(&self) -> String {
        // SAFETY: self.0 is live; the returned string is malloc'ed by DuckDB and
        // freed here with duckdb_free after copying.
        unsafe {
            let p = sys::duckdb_get_varchar(self.0);
            if p.is_null() {
                return String::new();
            }
            let s = CStr::from_ptr(p).to_string_lossy().into_owned();
            sys::duckdb_free(p.cast());
            s
        }
    }

    pub fn to_i64(&self) -> i64 {
        // SAFETY: self.0 is live; DuckDB casts or returns 0 when it cannot.
        unsafe { sys::duckdb_get_int64(self.0) }
    }

    pub fn to_bool(&self) -> bool {
        // SAFETY: self.0 is live.
        unsafe { sys::duckdb_get_bool(self.0) }
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        // SAFETY: self.0 is owned by this wrapper and destroyed once.
        unsafe { sys::duckdb_destroy_value(&mut self.0) };
    }
}
