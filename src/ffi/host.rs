//! Which DuckDB the extension runs in.

use std::ffi::CStr;

use super::sys;

/// The host's version, parsed from `duckdb_library_version()` ("v1.4.4").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl HostVersion {
    pub fn parse(s: &str) -> Option<HostVersion> {
        let s = s.trim().trim_start_matches('v');
        let mut it = s.split(|c: char| !c.is_ascii_digit());
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        let patch = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        Some(HostVersion { major, minor, patch })
    }

    /// The C API band that DuckDB 1.5.6 appended (client context, config options)
    /// sits beyond the end of the function table older hosts hand out.
    pub fn has_client_context_api(&self) -> bool {
        *self
            >= HostVersion {
                major: 1,
                minor: 5,
                patch: 6,
            }
    }
}

impl std::fmt::Display for HostVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The raw version string of the running DuckDB.
pub fn library_version() -> String {
    // SAFETY: duckdb_library_version is in the v1.2.0 band and returns a static,
    // NUL-terminated string owned by DuckDB.
    unsafe {
        let p = sys::duckdb_library_version();
        if p.is_null() {
            return String::new();
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        let v = HostVersion::parse("v1.4.4").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, 4, 4));
        assert!(!v.has_client_context_api());
        assert!(HostVersion::parse("v1.5.6").unwrap().has_client_context_api());
        assert!(HostVersion::parse("v2.0.0").unwrap().has_client_context_api());
        assert!(HostVersion::parse("v1.5.0-dev123").is_some());
        assert!(HostVersion::parse("garbage").is_none());
    }
}
