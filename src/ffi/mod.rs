//! The DuckDB C API edge. Every `unsafe` block of the extension lives below this
//! module; the rest of the crate sees safe wrappers only.
//!
//! Only functions of the C API v1.2.0 band are called unconditionally: DuckDB 1.4.4
//! hands out a shorter function table than the 2.0 bindings describe, so anything
//! newer is gated on [`host::HostVersion`].

pub mod chunk;
pub mod conn;
pub mod entry;
pub mod host;
pub mod logical;
pub mod setting;
pub mod table;
pub mod value;

pub use libduckdb_sys as sys;

/// Errors crossing into DuckDB are plain messages.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Text of a caught panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// A C string for DuckDB; interior NULs are replaced so the call never fails.
pub fn cstring(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s.replace('\0', "\\0")).expect("NULs were replaced")
}
