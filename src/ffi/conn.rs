//! A raw DuckDB connection for SQL the extension runs itself.
//!
//! Only `duckdb_query` and the v1.2.0 result accessors are used: they are safe on
//! every supported host, unlike duckdb-rs' prepared statements on 1.4.4.

use std::ffi::c_char;

use super::table::c_str_lossy;
use super::{cstring, sys};

/// An owned connection, disconnected on drop.
pub struct Connection {
    raw: sys::duckdb_connection,
}

// SAFETY: a DuckDB connection may be used from any thread, one thread at a time;
// callers serialise access (the extension keeps it behind a Mutex).
unsafe impl Send for Connection {}

impl Connection {
    /// Opens a connection to `db`.
    ///
    /// # Safety
    /// `db` must be a live database handle.
    pub(crate) unsafe fn open(db: sys::duckdb_database) -> Result<Connection, String> {
        let mut raw: sys::duckdb_connection = std::ptr::null_mut();
        if sys::duckdb_connect(db, &mut raw) != sys::duckdb_state_DuckDBSuccess {
            return Err("could not open an internal DuckDB connection".into());
        }
        Ok(Connection { raw })
    }

    /// Runs `sql` (one or more statements); returns the text of every cell of the
    /// last statement's result, row by row.
    pub fn query(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        let c = cstring(sql);
        // SAFETY: self.raw is live; the result struct is zeroed, filled by
        // duckdb_query and destroyed exactly once below.
        unsafe {
            let mut res: sys::duckdb_result = std::mem::zeroed();
            let rc = sys::duckdb_query(self.raw, c.as_ptr(), &mut res);
            if rc != sys::duckdb_state_DuckDBSuccess {
                let msg = c_str_lossy(sys::duckdb_result_error(&mut res));
                sys::duckdb_destroy_result(&mut res);
                return Err(msg);
            }
            let rows = read_all(&mut res);
            sys::duckdb_destroy_result(&mut res);
            Ok(rows)
        }
    }

    /// Interrupts the statement running on this connection (from another thread).
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle(self.raw)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: self.raw was opened by duckdb_connect and is disconnected once.
        unsafe { sys::duckdb_disconnect(&mut self.raw) };
    }
}

/// Lets another thread interrupt a connection's running statement.
#[derive(Clone, Copy)]
pub struct InterruptHandle(sys::duckdb_connection);
// SAFETY: duckdb_interrupt is designed to be called from another thread.
unsafe impl Send for InterruptHandle {}
// SAFETY: as above; the handle is only passed to duckdb_interrupt.
unsafe impl Sync for InterruptHandle {}

impl InterruptHandle {
    pub fn interrupt(&self) {
        // SAFETY: the connection outlives every holder of this handle (owners drop
        // the handle before the connection).
        unsafe { sys::duckdb_interrupt(self.0) };
    }
}

/// Reads every cell of a materialised result as text.
///
/// # Safety
/// `res` must be a successful, live result.
unsafe fn read_all(res: &mut sys::duckdb_result) -> Vec<Vec<Option<String>>> {
    let cols = sys::duckdb_column_count(res) as usize;
    let mut out = Vec::new();
    loop {
        let chunk = sys::duckdb_fetch_chunk(*res);
        if chunk.is_null() {
            break;
        }
        let n = sys::duckdb_data_chunk_get_size(chunk) as usize;
        let mut texts: Vec<Vec<Option<String>>> = vec![vec![None; cols]; n];
        for c in 0..cols {
            // Cast through a one-column VARCHAR view is not available here, so read
            // values with duckdb_value_varchar-free logic: only VARCHAR, BIGINT,
            // INTEGER, DOUBLE and BOOLEAN columns are read; others come back None.
            let v = sys::duckdb_data_chunk_get_vector(chunk, c as sys::idx_t);
            let mut t = sys::duckdb_vector_get_column_type(v);
            let id = sys::duckdb_get_type_id(t);
            sys::duckdb_destroy_logical_type(&mut t);
            let data = sys::duckdb_vector_get_data(v);
            let validity = sys::duckdb_vector_get_validity(v);
            for (r, row) in texts.iter_mut().enumerate() {
                if !validity.is_null() && !sys::duckdb_validity_row_is_valid(validity, r as sys::idx_t) {
                    continue;
                }
                row[c] = cell_text(id, data, r);
            }
        }
        out.extend(texts);
        let mut chunk = chunk;
        sys::duckdb_destroy_data_chunk(&mut chunk);
    }
    out
}

/// The text of one cell of a flat vector of type `id`.
///
/// # Safety
/// `data` must be the data buffer of a flat vector of type `id` with > `r` rows.
unsafe fn cell_text(id: sys::DUCKDB_TYPE, data: *mut std::ffi::c_void, r: usize) -> Option<String> {
    use sys::*;
    #[allow(non_upper_case_globals)]
    Some(match id {
        DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR => {
            let s = &*data.cast::<duckdb_string_t>().add(r);
            let len = s.value.inlined.length as usize;
            let ptr: *const c_char = if len <= 12 {
                s.value.inlined.inlined.as_ptr()
            } else {
                s.value.pointer.ptr
            };
            String::from_utf8_lossy(std::slice::from_raw_parts(ptr.cast::<u8>(), len)).into_owned()
        }
        DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN => (*data.cast::<bool>().add(r)).to_string(),
        DUCKDB_TYPE_DUCKDB_TYPE_INTEGER => (*data.cast::<i32>().add(r)).to_string(),
        DUCKDB_TYPE_DUCKDB_TYPE_BIGINT => (*data.cast::<i64>().add(r)).to_string(),
        DUCKDB_TYPE_DUCKDB_TYPE_UBIGINT => (*data.cast::<u64>().add(r)).to_string(),
        DUCKDB_TYPE_DUCKDB_TYPE_DOUBLE => (*data.cast::<f64>().add(r)).to_string(),
        _ => return None,
    })
}
