//! Writing rows into DuckDB output vectors.
//!
//! [`FlatVector`] knows the width of its elements and its capacity, and checks
//! both on every write, so the safe methods cannot write outside DuckDB's buffers
//! whatever the caller passes.

use std::marker::PhantomData;
use std::mem::size_of;

use super::sys;

/// The output chunk DuckDB hands to a table function's scan.
pub struct OutputChunk {
    raw: sys::duckdb_data_chunk,
    capacity: usize,
}

impl OutputChunk {
    /// # Safety
    /// `raw` must be the live output chunk of the current scan call.
    pub(crate) unsafe fn from_raw(raw: sys::duckdb_data_chunk) -> OutputChunk {
        OutputChunk {
            raw,
            capacity: sys::duckdb_vector_size() as usize,
        }
    }

    /// Rows one chunk can hold (STANDARD_VECTOR_SIZE).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn column_count(&self) -> usize {
        // SAFETY: self.raw is the live output chunk.
        unsafe { sys::duckdb_data_chunk_get_column_count(self.raw) as usize }
    }

    /// The flat vector of output column `col`.
    pub fn vector(&self, col: usize) -> FlatVector<'_> {
        assert!(col < self.column_count(), "output column {col} out of range");
        // SAFETY: col is in range, so DuckDB returns the chunk's live vector; its
        // buffer holds `capacity` elements.
        unsafe {
            let v = sys::duckdb_data_chunk_get_vector(self.raw, col as sys::idx_t);
            FlatVector::from_raw(v, self.capacity)
        }
    }

    pub fn set_len(&mut self, n: usize) {
        assert!(n <= self.capacity);
        // SAFETY: self.raw is live and n does not exceed its capacity.
        unsafe { sys::duckdb_data_chunk_set_size(self.raw, n as sys::idx_t) };
    }
}

/// The byte width of one element of a vector of this logical type, or 0 for
/// types written through DuckDB calls only (VARCHAR, BLOB, LIST).
fn element_width(t: sys::duckdb_logical_type) -> usize {
    use sys::*;
    // SAFETY: t is a live logical type owned by the caller.
    let id = unsafe { duckdb_get_type_id(t) };
    #[allow(non_upper_case_globals)]
    match id {
        DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN | DUCKDB_TYPE_DUCKDB_TYPE_TINYINT | DUCKDB_TYPE_DUCKDB_TYPE_UTINYINT => 1,
        DUCKDB_TYPE_DUCKDB_TYPE_SMALLINT | DUCKDB_TYPE_DUCKDB_TYPE_USMALLINT => 2,
        DUCKDB_TYPE_DUCKDB_TYPE_INTEGER
        | DUCKDB_TYPE_DUCKDB_TYPE_UINTEGER
        | DUCKDB_TYPE_DUCKDB_TYPE_FLOAT
        | DUCKDB_TYPE_DUCKDB_TYPE_DATE => 4,
        DUCKDB_TYPE_DUCKDB_TYPE_BIGINT
        | DUCKDB_TYPE_DUCKDB_TYPE_UBIGINT
        | DUCKDB_TYPE_DUCKDB_TYPE_DOUBLE
        | DUCKDB_TYPE_DUCKDB_TYPE_TIME
        | DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP
        | DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_TZ => 8,
        DUCKDB_TYPE_DUCKDB_TYPE_HUGEINT
        | DUCKDB_TYPE_DUCKDB_TYPE_UHUGEINT
        | DUCKDB_TYPE_DUCKDB_TYPE_UUID
        | DUCKDB_TYPE_DUCKDB_TYPE_INTERVAL => 16,
        DUCKDB_TYPE_DUCKDB_TYPE_DECIMAL => {
            // SAFETY: t is a live DECIMAL type.
            match unsafe { duckdb_decimal_internal_type(t) } {
                DUCKDB_TYPE_DUCKDB_TYPE_SMALLINT => 2,
                DUCKDB_TYPE_DUCKDB_TYPE_INTEGER => 4,
                DUCKDB_TYPE_DUCKDB_TYPE_BIGINT => 8,
                _ => 16,
            }
        }
        DUCKDB_TYPE_DUCKDB_TYPE_ENUM => {
            // SAFETY: t is a live ENUM type.
            match unsafe { duckdb_enum_internal_type(t) } {
                DUCKDB_TYPE_DUCKDB_TYPE_UTINYINT => 1,
                DUCKDB_TYPE_DUCKDB_TYPE_USMALLINT => 2,
                _ => 4,
            }
        }
        DUCKDB_TYPE_DUCKDB_TYPE_LIST => 16,
        _ => 0,
    }
}

/// A flat DuckDB vector being filled, bounded by its capacity.
pub struct FlatVector<'a> {
    raw: sys::duckdb_vector,
    data: *mut u8,
    validity: *mut u64,
    width: usize,
    capacity: usize,
    _chunk: PhantomData<&'a mut ()>,
}

/// Fixed-width values that can be stored in a vector element of the same width.
pub trait Plain: Copy {}
impl Plain for bool {}
impl Plain for u8 {}
impl Plain for i16 {}
impl Plain for u16 {}
impl Plain for i32 {}
impl Plain for u32 {}
impl Plain for i64 {}
impl Plain for f32 {}
impl Plain for f64 {}
impl Plain for [u64; 2] {}
impl Plain for Interval {}

/// DuckDB's interval layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

impl<'a> FlatVector<'a> {
    /// # Safety
    /// `raw` must be a live flat vector whose buffers hold `capacity` elements for
    /// as long as `'a`.
    unsafe fn from_raw(raw: sys::duckdb_vector, capacity: usize) -> FlatVector<'a> {
        let mut t = sys::duckdb_vector_get_column_type(raw);
        let width = element_width(t);
        sys::duckdb_destroy_logical_type(&mut t);
        FlatVector {
            raw,
            data: sys::duckdb_vector_get_data(raw).cast(),
            validity: std::ptr::null_mut(),
            width,
            capacity,
            _chunk: PhantomData,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Stores a fixed-width value; panics if `T` does not have the vector's width
    /// or `row` is out of range.
    #[inline]
    pub fn set<T: Plain>(&mut self, row: usize, v: T) {
        assert!(row < self.capacity && size_of::<T>() == self.width && !self.data.is_null());
        // SAFETY: the buffer holds `capacity` elements of `width` bytes, checked above.
        unsafe { std::ptr::write_unaligned(self.data.cast::<T>().add(row), v) };
    }

    /// Fills rows `row0..row0 + n` in one loop: `value(i)` gives row `row0 + i`, `None`
    /// for NULL. Stops at the first error. Panics if `T` does not have the vector's
    /// width or the rows pass its capacity.
    #[inline]
    pub fn write_column<T: Plain, E>(
        &mut self,
        row0: usize,
        n: usize,
        mut value: impl FnMut(usize) -> Result<Option<T>, E>,
    ) -> Result<(), E> {
        assert!(row0 + n <= self.capacity && size_of::<T>() == self.width && !self.data.is_null());
        let base = self.data.cast::<T>();
        for i in 0..n {
            match value(i)? {
                // SAFETY: row0 + i < capacity (checked above), and the buffer holds
                // `capacity` elements of T's width.
                Some(v) => unsafe { std::ptr::write_unaligned(base.add(row0 + i), v) },
                None => self.set_null(row0 + i),
            }
        }
        Ok(())
    }

    /// Stores a string or blob value (DuckDB copies the bytes).
    #[inline]
    pub fn set_bytes(&mut self, row: usize, v: &[u8]) {
        assert!(row < self.capacity);
        // SAFETY: row is in range; DuckDB copies `v` into the vector's string heap.
        unsafe {
            sys::duckdb_vector_assign_string_element_len(
                self.raw,
                row as sys::idx_t,
                v.as_ptr().cast(),
                v.len() as sys::idx_t,
            )
        };
    }

    /// Marks `row` NULL.
    #[inline]
    pub fn set_null(&mut self, row: usize) {
        assert!(row < self.capacity);
        if self.validity.is_null() {
            // SAFETY: the vector is live; after ensure_validity_writable the mask
            // exists and covers `capacity` rows.
            unsafe {
                sys::duckdb_vector_ensure_validity_writable(self.raw);
                self.validity = sys::duckdb_vector_get_validity(self.raw);
            }
        }
        // SAFETY: the mask has capacity/64 rounded-up words and row < capacity.
        unsafe {
            let word = self.validity.add(row / 64);
            *word &= !(1u64 << (row % 64));
        }
    }

    /// Elements currently in this LIST vector's child.
    pub fn list_len(&self) -> usize {
        // SAFETY: called on a LIST vector only (width 16 checked by callers through set_list_entry).
        unsafe { sys::duckdb_list_vector_get_size(self.raw) as usize }
    }

    /// Makes room for `total` child elements and returns the child vector.
    pub fn list_child_reserved(&mut self, total: usize) -> FlatVector<'a> {
        assert_eq!(self.width, 16, "not a LIST vector");
        // SAFETY: self.raw is a live LIST vector; after reserve its child holds at
        // least `total` elements, and the child lives as long as the parent.
        unsafe {
            sys::duckdb_list_vector_reserve(self.raw, total as sys::idx_t);
            let child = sys::duckdb_list_vector_get_child(self.raw);
            FlatVector::from_raw(child, total)
        }
    }

    /// Sets the number of child elements in use.
    pub fn set_list_len(&mut self, total: usize) {
        assert_eq!(self.width, 16, "not a LIST vector");
        // SAFETY: self.raw is a live LIST vector with at least `total` reserved.
        unsafe { sys::duckdb_list_vector_set_size(self.raw, total as sys::idx_t) };
    }

    /// Points LIST row `row` at `len` child elements starting at `offset`.
    #[inline]
    pub fn set_list_entry(&mut self, row: usize, offset: usize, len: usize) {
        self.set::<[u64; 2]>(row, [offset as u64, len as u64]);
    }
}
