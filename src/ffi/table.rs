//! Table functions: registration and the raw callbacks.
//!
//! Each callback catches panics and turns them, like ordinary errors, into a
//! DuckDB error on the current query; nothing unwinds into DuckDB.

use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::chunk::OutputChunk;
use super::logical::LogicalType;
use super::value::Value;
use super::{cstring, panic_message, sys, BoxError};
use crate::state::ExtensionState;
use crate::types::DuckType;

/// What a table function's bind learns from the call.
pub struct BindInput {
    raw: sys::duckdb_bind_info,
}

impl BindInput {
    /// Positional parameter `i`, or None when absent or NULL.
    pub fn positional(&self, i: usize) -> Option<Value> {
        // SAFETY: self.raw is the live bind info; get_parameter returns an owned
        // value (or null) that Value destroys.
        unsafe {
            if i as u64 >= sys::duckdb_bind_get_parameter_count(self.raw) {
                return None;
            }
            Value::from_raw(sys::duckdb_bind_get_parameter(self.raw, i as sys::idx_t)).filter(|v| !v.is_null())
        }
    }

    /// Named parameter `name`, or None when not given or NULL.
    pub fn named(&self, name: &str) -> Option<Value> {
        let c = cstring(name);
        // SAFETY: self.raw is live and c a valid C string; the returned value is owned.
        unsafe { Value::from_raw(sys::duckdb_bind_get_named_parameter(self.raw, c.as_ptr())).filter(|v| !v.is_null()) }
    }

    pub fn named_str(&self, name: &str) -> Option<String> {
        self.named(name).map(|v| v.to_string_lossy())
    }

    pub fn named_i64(&self, name: &str) -> Option<i64> {
        self.named(name).map(|v| v.to_i64())
    }

    pub fn named_bool(&self, name: &str) -> Option<bool> {
        self.named(name).map(|v| v.to_bool())
    }

    /// The value of a DuckDB setting for the calling connection, on hosts that
    /// expose the client context (DuckDB ≥ 1.5.6); None elsewhere or when unset.
    pub fn setting(&self, state: &ExtensionState, name: &str) -> Option<String> {
        if !state.host.has_client_context_api() {
            return None;
        }
        let c = cstring(name);
        // SAFETY: the host has the 1.5.6 band (checked above), so these entries of
        // the function table exist. The context and value are owned here and
        // destroyed before returning.
        unsafe {
            let mut ctx: sys::duckdb_client_context = std::ptr::null_mut();
            sys::duckdb_table_function_get_client_context(self.raw, &mut ctx);
            if ctx.is_null() {
                return None;
            }
            let mut scope: sys::duckdb_config_option_scope = 0;
            let v = sys::duckdb_client_context_get_config_option(ctx, c.as_ptr(), &mut scope);
            sys::duckdb_destroy_client_context(&mut ctx);
            Value::from_raw(v).filter(|v| !v.is_null()).map(|v| v.to_string_lossy())
        }
    }
}

/// What bind returns: the state, the result columns and an optional row estimate.
pub struct Bound<B> {
    pub data: B,
    pub columns: Vec<(String, DuckType)>,
    pub cardinality: Option<u64>,
}

/// A table function implemented in Rust.
pub trait TableFunction: 'static {
    type Bind: Send + Sync + 'static;
    type Global: Send + Sync + 'static;
    type Local: Send + 'static;

    const NAME: &'static str;
    const PROJECTION_PUSHDOWN: bool = false;
    /// Report bind errors when the query starts instead of at bind. DuckDB quotes
    /// the caller's SQL next to bind errors ("LINE 1: … dsn := '…password=…'"),
    /// which would show a password typed into a DSN; errors raised at init are
    /// shown without it. A failed bind then has one VARCHAR column, `error`.
    const DEFER_BIND_ERRORS: bool = false;

    fn parameters() -> Vec<DuckType> {
        Vec::new()
    }
    fn named_parameters() -> Vec<(&'static str, DuckType)> {
        Vec::new()
    }

    fn bind(state: &Arc<ExtensionState>, input: &BindInput) -> Result<Bound<Self::Bind>, BoxError>;

    /// Global init. `projection` lists the bound columns the query needs (all of
    /// them without pushdown). Returns the state and the most threads worth using.
    fn init(bind: &Self::Bind, projection: Vec<usize>) -> Result<(Self::Global, u64), BoxError>;

    fn local(bind: &Self::Bind, global: &Self::Global) -> Result<Self::Local, BoxError>;

    /// Fills `out` and sets its length; a length of 0 ends the scan.
    fn scan(
        bind: &Self::Bind,
        global: &Self::Global,
        local: &mut Self::Local,
        out: &mut OutputChunk,
    ) -> Result<(), BoxError>;
}

/// Runs `f`, turning an error or a panic into a message.
fn contain<T>(f: impl FnOnce() -> Result<T, BoxError>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(p) => Err(format!(
            "pagila_star internal error (panic): {}",
            panic_message(p.as_ref())
        )),
    }
}

unsafe extern "C" fn drop_box<T>(p: *mut c_void) {
    if !p.is_null() {
        // SAFETY: p was produced by Box::into_raw::<T> in this module and DuckDB
        // calls the destructor exactly once. A panic in Drop is contained.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(p.cast::<T>()))));
    }
}

unsafe extern "C" fn bind_cb<F: TableFunction>(info: sys::duckdb_bind_info) {
    // SAFETY: extra info was set at registration to a leaked Arc<ExtensionState>
    // that lives as long as the function.
    let state = &*(sys::duckdb_bind_get_extra_info(info) as *const Arc<ExtensionState>);
    let input = BindInput { raw: info };
    let outcome = match contain(|| F::bind(state, &input)) {
        // The one placeholder column is named after the error: a query that names columns
        // fails in DuckDB's binder before init can raise it, and the binder's message lists
        // the columns there are ("Candidate bindings: ..."), so the cause still shows.
        Err(msg) if F::DEFER_BIND_ERRORS => Ok(Bound {
            columns: vec![(msg.clone(), DuckType::Varchar)],
            data: Err(msg),
            cardinality: Some(0),
        }),
        Ok(b) => Ok(Bound {
            data: Ok(b.data),
            columns: b.columns,
            cardinality: b.cardinality,
        }),
        Err(msg) => Err(msg),
    };
    match outcome {
        Ok(bound) => {
            for (name, t) in &bound.columns {
                let lt = LogicalType::new(t);
                let c = cstring(name);
                // SAFETY: info is live; name and type are copied by DuckDB.
                sys::duckdb_bind_add_result_column(info, c.as_ptr(), lt.0);
            }
            if let Some(n) = bound.cardinality {
                sys::duckdb_bind_set_cardinality(info, n as sys::idx_t, false);
            }
            let b = Box::into_raw(Box::new(bound.data));
            // SAFETY: ownership of b moves to DuckDB, which frees it with drop_box.
            sys::duckdb_bind_set_bind_data(info, b.cast(), Some(drop_box::<BindSlot<F::Bind>>));
        }
        Err(msg) => {
            let c = cstring(&msg);
            sys::duckdb_bind_set_error(info, c.as_ptr());
        }
    }
}

/// The bind data DuckDB holds: the function's state, or a deferred bind error.
type BindSlot<B> = Result<B, String>;

unsafe extern "C" fn init_cb<F: TableFunction>(info: sys::duckdb_init_info) {
    // SAFETY: bind data was set by bind_cb to a Box<BindSlot<F::Bind>> that outlives init.
    let bind = match &*(sys::duckdb_init_get_bind_data(info) as *const BindSlot<F::Bind>) {
        Ok(b) => b,
        Err(msg) => {
            let c = cstring(msg);
            sys::duckdb_init_set_error(info, c.as_ptr());
            return;
        }
    };
    let n = sys::duckdb_init_get_column_count(info) as usize;
    let projection: Vec<usize> = (0..n)
        .map(|i| sys::duckdb_init_get_column_index(info, i as sys::idx_t) as usize)
        .collect();
    match contain(|| F::init(bind, projection)) {
        Ok((global, threads)) => {
            sys::duckdb_init_set_max_threads(info, threads.max(1) as sys::idx_t);
            let g = Box::into_raw(Box::new(global));
            // SAFETY: ownership of g moves to DuckDB, freed with drop_box.
            sys::duckdb_init_set_init_data(info, g.cast(), Some(drop_box::<F::Global>));
        }
        Err(msg) => {
            let c = cstring(&msg);
            sys::duckdb_init_set_error(info, c.as_ptr());
        }
    }
}

/// Per-thread state: created on the thread's first scan call, because DuckDB's C
/// API does not hand the global state to local init.
struct LocalSlot<L> {
    local: Option<L>,
}

unsafe extern "C" fn local_slot_init_cb<F: TableFunction>(info: sys::duckdb_init_info) {
    let slot: Box<LocalSlot<F::Local>> = Box::new(LocalSlot { local: None });
    // SAFETY: ownership moves to DuckDB, freed with drop_box.
    sys::duckdb_init_set_init_data(info, Box::into_raw(slot).cast(), Some(drop_box::<LocalSlot<F::Local>>));
}

unsafe extern "C" fn scan_cb<F: TableFunction>(info: sys::duckdb_function_info, output: sys::duckdb_data_chunk) {
    // SAFETY: bind, global and local data are the Boxes installed by the callbacks
    // above; DuckDB keeps them alive for the scan and gives each thread its own
    // local slot, so the &mut is exclusive.
    let Ok(bind) = &*(sys::duckdb_function_get_bind_data(info) as *const BindSlot<F::Bind>) else {
        // init refused to start this scan; DuckDB does not call scan then.
        return;
    };
    let global = &*(sys::duckdb_function_get_init_data(info) as *const F::Global);
    let slot = &mut *(sys::duckdb_function_get_local_init_data(info) as *mut LocalSlot<F::Local>);
    let mut out = OutputChunk::from_raw(output);
    let r = contain(|| {
        if slot.local.is_none() {
            slot.local = Some(F::local(bind, global)?);
        }
        let local = slot.local.as_mut().expect("set above");
        F::scan(bind, global, local, &mut out)
    });
    if let Err(msg) = r {
        // Drop the thread's state now (closing its Postgres connection) so the
        // connection is released even before DuckDB tears the query down.
        let _ = catch_unwind(AssertUnwindSafe(|| slot.local = None));
        out.set_len(0);
        let c = cstring(&msg);
        sys::duckdb_function_set_error(info, c.as_ptr());
    }
}

/// Registers `F` on `con`, with `state` as extra info.
///
/// # Safety
/// `con` must be a live connection.
pub unsafe fn register<F: TableFunction>(
    con: sys::duckdb_connection,
    state: &Arc<ExtensionState>,
) -> Result<(), BoxError> {
    // SAFETY: con is a live connection (the caller's contract). The table function handle is destroyed
    // after registration (DuckDB copies it). Parameter types are copied.
    unsafe {
        let mut tf = sys::duckdb_create_table_function();
        let name = cstring(F::NAME);
        sys::duckdb_table_function_set_name(tf, name.as_ptr());
        for p in F::parameters() {
            let lt = LogicalType::new(&p);
            sys::duckdb_table_function_add_parameter(tf, lt.0);
        }
        for (n, p) in F::named_parameters() {
            let lt = LogicalType::new(&p);
            let cn = cstring(n);
            sys::duckdb_table_function_add_named_parameter(tf, cn.as_ptr(), lt.0);
        }
        let extra = Box::into_raw(Box::new(state.clone()));
        sys::duckdb_table_function_set_extra_info(tf, extra.cast(), Some(drop_box::<Arc<ExtensionState>>));
        sys::duckdb_table_function_set_bind(tf, Some(bind_cb::<F>));
        sys::duckdb_table_function_set_init(tf, Some(init_cb::<F>));
        sys::duckdb_table_function_set_local_init(tf, Some(local_slot_init_cb::<F>));
        sys::duckdb_table_function_set_function(tf, Some(scan_cb::<F>));
        sys::duckdb_table_function_supports_projection_pushdown(tf, F::PROJECTION_PUSHDOWN);
        let rc = sys::duckdb_register_table_function(con, tf);
        sys::duckdb_destroy_table_function(&mut tf);
        if rc != sys::duckdb_state_DuckDBSuccess {
            return Err(format!("could not register table function {}", F::NAME).into());
        }
    }
    Ok(())
}

/// Reads a C string DuckDB owns.
///
/// # Safety
/// `p` must be null or a valid NUL-terminated string.
pub(crate) unsafe fn c_str_lossy(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}
