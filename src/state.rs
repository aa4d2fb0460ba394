//! State shared by every function of the extension within one database.

use std::sync::Arc;

use crate::ffi::host::HostVersion;
use crate::inner::Inner;

pub struct ExtensionState {
    /// The running DuckDB, e.g. "v1.4.4".
    pub host_string: String,
    pub host: HostVersion,
    /// The extension's own connections, for SQL run by CALLs.
    pub inner: Arc<Inner>,
}
