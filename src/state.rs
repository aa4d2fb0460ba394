//! State shared by every function of the extension within one database.

use crate::ffi::host::HostVersion;

pub struct ExtensionState {
    /// The running DuckDB, e.g. "v1.4.4".
    pub host_string: String,
    pub host: HostVersion,
}
