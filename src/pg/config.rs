//! Connection settings: libpq key/value strings, `postgresql://` URIs, the PG*
//! environment and `~/.pgpass`, resolved the way libpq resolves them.
//!
//! The password is kept in [`Secret`], whose `Debug` and `Display` never show it,
//! and [`PgConfig::redacted`] is the only text form of a config that reaches
//! messages.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::error::PgError;

/// A password: never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode, PgError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(PgError::Config(format!(
                    "invalid sslmode value \"{other}\" (expected disable, allow, prefer, require, verify-ca or verify-full)"
                )))
            }
        })
    }
}

/// Everything needed to open a session.
#[derive(Clone, Debug)]
pub struct PgConfig {
    /// A host name, an IP address, or a Unix socket directory (starts with '/').
    pub host: String,
    pub hostaddr: Option<String>,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: Option<Secret>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub connect_timeout: Option<Duration>,
    /// Applied with `SET statement_timeout` on every session; None keeps the server's.
    pub statement_timeout: Option<Duration>,
    /// Extra `options` (e.g. `-c search_path=app`), passed to the server at startup.
    pub options: Option<String>,
    passfile: Option<PathBuf>,
    /// Sessions of this config are pooled under this key (see `pg::pool`).
    pub pool: Option<u64>,
    /// The hosts after the first of a list (`host=a,b port=5432,5433`), tried in
    /// order when none before them can be reached, as libpq does.
    others: Vec<HostEntry>,
    /// The password came from the DSN or PGPASSWORD, not from a pgpass file (which
    /// is looked up again for each host of a list).
    password_given: bool,
}

/// One entry of a host list: a host, its address (hostaddr) and its port.
#[derive(Clone, Debug)]
struct HostEntry {
    host: String,
    hostaddr: Option<String>,
    port: u16,
}

/// Splits a comma-separated list as libpq does (`host=a,b`); one entry for an empty value.
fn list(v: &str) -> Vec<String> {
    v.split(',').map(|x| x.trim().to_string()).collect()
}

/// The keys a DSN may carry. Others are refused, as libpq does.
const KNOWN_KEYS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "sslmode",
    "sslrootcert",
    "connect_timeout",
    "statement_timeout",
    "options",
    "application_name",
    "fallback_application_name",
    "client_encoding",
    "sslcert",
    "sslkey",
    "target_session_attrs",
    "keepalives",
    "keepalives_idle",
    "gssencmode",
];

/// Key/value pairs from a DSN, before defaults and the environment.
type Pairs = Vec<(String, String)>;

impl PgConfig {
    /// Resolves a DSN (key/value or URI; may be empty) against the environment,
    /// with `env` giving variables (std::env::var in production).
    pub fn resolve(dsn: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<PgConfig, PgError> {
        let trimmed = dsn.trim();
        let pairs = if trimmed.starts_with("postgresql://") || trimmed.starts_with("postgres://") {
            parse_uri(trimmed)?
        } else {
            parse_keyword_value(trimmed)?
        };
        for (k, _) in &pairs {
            if !KNOWN_KEYS.contains(&k.as_str()) {
                return Err(PgError::Config(format!("invalid connection option \"{k}\"")));
            }
        }
        let get = |key: &str, var: &str| -> Option<String> {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .or_else(|| env(var).filter(|v| !v.is_empty()))
        };
        // A host list is tried in order, as libpq does: `port` (and `hostaddr`) give one
        // value for every host, or one per host.
        let hosts: Vec<String> = list(&get("host", "PGHOST").unwrap_or_default())
            .into_iter()
            .map(|h| if h.is_empty() { default_host().to_string() } else { h })
            .collect();
        let port_text = get("port", "PGPORT").unwrap_or_default();
        let ports = list(&port_text)
            .into_iter()
            .map(|p| {
                if p.is_empty() {
                    Ok(5432)
                } else {
                    p.parse::<u16>()
                        .map_err(|_| PgError::Config(format!("invalid port number: \"{port_text}\"")))
                }
            })
            .collect::<Result<Vec<u16>, PgError>>()?;
        let hostaddrs: Vec<Option<String>> = match get("hostaddr", "PGHOSTADDR") {
            None => vec![None; hosts.len()],
            Some(v) => list(&v)
                .into_iter()
                .map(|a| Some(a).filter(|a| !a.is_empty()))
                .collect(),
        };
        let per_host = |n: usize, what: &str| -> Result<(), PgError> {
            if n == 1 || n == hosts.len() {
                Ok(())
            } else {
                Err(PgError::Config(format!(
                    "could not match {n} {what} to {} hosts",
                    hosts.len()
                )))
            }
        };
        per_host(ports.len(), "port numbers")?;
        per_host(hostaddrs.len(), "host addresses")?;
        let mut endpoints = hosts.iter().enumerate().map(|(i, h)| HostEntry {
            host: h.clone(),
            hostaddr: hostaddrs[i.min(hostaddrs.len() - 1)].clone(),
            port: ports[i.min(ports.len() - 1)],
        });
        let first = endpoints.next().expect("a list has at least one entry");
        let others: Vec<HostEntry> = endpoints.collect();
        let (host, hostaddr, port) = (first.host, first.hostaddr, first.port);
        let user = get("user", "PGUSER")
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "postgres".into());
        let dbname = get("dbname", "PGDATABASE").unwrap_or_else(|| user.clone());
        let sslmode = SslMode::parse(&get("sslmode", "PGSSLMODE").unwrap_or_else(|| "prefer".into()))?;
        let sslrootcert = get("sslrootcert", "PGSSLROOTCERT").map(PathBuf::from);
        let connect_timeout = match get("connect_timeout", "PGCONNECT_TIMEOUT") {
            None => Some(Duration::from_secs(30)),
            Some(t) => {
                let secs: i64 = t.trim().parse().map_err(|_| {
                    PgError::Config(format!(
                        "invalid integer value \"{t}\" for connection option \"connect_timeout\""
                    ))
                })?;
                // As libpq: 0 or less means wait forever; less than 2 counts as 2.
                if secs <= 0 {
                    None
                } else {
                    Some(Duration::from_secs(secs.max(2) as u64))
                }
            }
        };
        let statement_timeout = match get("statement_timeout", "PAGILA_STATEMENT_TIMEOUT") {
            None => None,
            Some(t) => Some(parse_duration_ms(&t).ok_or_else(|| {
                PgError::Config(format!(
                    "invalid statement_timeout \"{t}\" (milliseconds, or a number with ms, s or min)"
                ))
            })?),
        };
        let passfile = get("passfile", "PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".pgpass")));
        // Any server of a host list will do for reading; choosing a primary or a standby
        // (libpq's other values) is not implemented, so asking for one is an error.
        if let Some(t) = get("target_session_attrs", "PGTARGETSESSIONATTRS").filter(|t| t != "any") {
            return Err(PgError::Config(format!(
                "target_session_attrs=\"{t}\" is not supported: the hosts of a list are tried in order and \
                 the first that answers is used (target_session_attrs=any)"
            )));
        }
        let password = get("password", "PGPASSWORD").map(Secret::new);
        let password_given = password.is_some();
        let options = get("options", "PGOPTIONS");
        let mut cfg = PgConfig {
            host,
            hostaddr,
            port,
            dbname,
            user,
            password,
            sslmode,
            sslrootcert,
            connect_timeout,
            statement_timeout,
            options,
            passfile,
            pool: None,
            others,
            password_given,
        };
        if cfg.password.is_none() {
            cfg.password = cfg.password_from_passfile();
        }
        Ok(cfg)
    }

    /// Resolves against the real process environment.
    pub fn from_dsn(dsn: &str) -> Result<PgConfig, PgError> {
        PgConfig::resolve(dsn, &|k| std::env::var(k).ok())
    }

    pub fn is_unix_socket(&self) -> bool {
        self.hostaddr.is_none() && self.host.starts_with('/')
    }

    /// One config per host of the list, in the order to try them (just this one for a
    /// single host).
    pub fn candidates(&self) -> Vec<PgConfig> {
        let first = PgConfig {
            others: Vec::new(),
            ..self.clone()
        };
        let mut out = vec![first.clone()];
        for o in &self.others {
            let mut c = PgConfig {
                host: o.host.clone(),
                hostaddr: o.hostaddr.clone(),
                port: o.port,
                ..first.clone()
            };
            if !c.password_given {
                c.password = c.password_from_passfile();
            }
            out.push(c);
        }
        out
    }

    /// "host=… port=… dbname=… user=…": safe for messages, never the password.
    pub fn redacted(&self) -> String {
        format!(
            "host={} port={} dbname={} user={}",
            self.host, self.port, self.dbname, self.user
        )
    }

    /// The password for this host/port/db/user from a pgpass file, as libpq does.
    fn password_from_passfile(&self) -> Option<Secret> {
        let path = self.passfile.as_ref()?;
        let text = std::fs::read_to_string(path).ok()?;
        // libpq matches a socket connection against "localhost".
        let host = if self.is_unix_socket() {
            "localhost"
        } else {
            self.host.as_str()
        };
        let port = self.port.to_string();
        for line in text.lines() {
            if line.trim_start().starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let fields = split_pgpass_line(line);
            if fields.len() < 5 {
                continue;
            }
            let want = [host, port.as_str(), self.dbname.as_str(), self.user.as_str()];
            if fields[..4].iter().zip(want).all(|(f, w)| f == "*" || f == w) {
                return Some(Secret::new(fields[4].clone()));
            }
        }
        None
    }
}

fn default_host() -> &'static str {
    if std::path::Path::new("/var/run/postgresql").is_dir() {
        "/var/run/postgresql"
    } else if std::path::Path::new("/tmp/.s.PGSQL.5432").exists() {
        "/tmp"
    } else {
        "localhost"
    }
}

/// "5000", "5000ms", "5s", "2min" → Duration.
fn parse_duration_ms(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "ms"),
    };
    let n: u64 = num.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "min" => n.checked_mul(60_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// Splits a pgpass line on unescaped ':' and removes the '\' escapes.
fn split_pgpass_line(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().expect("non-empty").push(n);
                }
            }
            ':' => out.push(String::new()),
            c => out.last_mut().expect("non-empty").push(c),
        }
    }
    out
}

/// `key=value key2='quoted \' value'`, as libpq's conninfo parser reads it.
fn parse_keyword_value(s: &str) -> Result<Pairs, PgError> {
    let mut out = Vec::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    let n = b.len();
    while i < n {
        while i < n && b[i].is_whitespace() {
            i += 1;
        }
        if i >= n {
            break;
        }
        let start = i;
        while i < n && b[i] != '=' && !b[i].is_whitespace() {
            i += 1;
        }
        let key: String = b[start..i].iter().collect();
        while i < n && b[i].is_whitespace() {
            i += 1;
        }
        if i >= n || b[i] != '=' {
            return Err(PgError::Config(format!(
                "missing \"=\" after \"{key}\" in connection info string"
            )));
        }
        i += 1;
        while i < n && b[i].is_whitespace() {
            i += 1;
        }
        let mut val = String::new();
        if i < n && b[i] == '\'' {
            i += 1;
            let mut closed = false;
            while i < n {
                match b[i] {
                    '\\' if i + 1 < n => {
                        val.push(b[i + 1]);
                        i += 2;
                    }
                    '\'' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    c => {
                        val.push(c);
                        i += 1;
                    }
                }
            }
            if !closed {
                return Err(PgError::Config(
                    "unterminated quoted string in connection info string".into(),
                ));
            }
        } else {
            while i < n && !b[i].is_whitespace() {
                if b[i] == '\\' && i + 1 < n {
                    val.push(b[i + 1]);
                    i += 2;
                } else {
                    val.push(b[i]);
                    i += 1;
                }
            }
        }
        if key.is_empty() {
            return Err(PgError::Config("empty key in connection info string".into()));
        }
        out.push((key, val));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String, PgError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| PgError::Config("invalid percent-encoded token in URI".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PgError::Config("URI is not valid UTF-8 after percent-decoding".into()))
}

/// `postgresql://user:pass@host:port/db?key=value&…`
fn parse_uri(s: &str) -> Result<Pairs, PgError> {
    let rest = s.split_once("://").map(|x| x.1).unwrap_or("");
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match main.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (main, None),
    };
    let mut out = Vec::new();
    let hostport = match authority.rsplit_once('@') {
        Some((userinfo, hp)) => {
            match userinfo.split_once(':') {
                Some((u, p)) => {
                    out.push(("user".into(), percent_decode(u)?));
                    out.push(("password".into(), percent_decode(p)?));
                }
                None if !userinfo.is_empty() => out.push(("user".into(), percent_decode(userinfo)?)),
                None => {}
            }
            hp
        }
        None => authority,
    };
    // postgresql://h1:p1,h2:p2/db: a host list, as in key/value form.
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for hostport in hostport.split(',').filter(|h| !h.is_empty()) {
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let (h, after) = h
                .split_once(']')
                .ok_or_else(|| PgError::Config(format!("malformed IPv6 address in URI: \"{hostport}\"")))?;
            (h.to_string(), after.strip_prefix(':').map(str::to_string))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p.to_string())),
                None => (hostport.to_string(), None),
            }
        };
        let port = port.filter(|p| !p.is_empty());
        if let Some(p) = &port {
            if p.parse::<u16>().is_err() {
                return Err(PgError::Config(format!("invalid port number in URI: \"{p}\"")));
            }
        }
        hosts.push(percent_decode(&host)?);
        ports.push(port.unwrap_or_default());
    }
    if hosts.iter().any(|h| !h.is_empty()) {
        out.push(("host".into(), hosts.join(",")));
    }
    if ports.iter().any(|p| !p.is_empty()) {
        out.push(("port".into(), ports.join(",")));
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        out.push(("dbname".into(), percent_decode(db)?));
    }
    if let Some(q) = query {
        for kv in q.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| PgError::Config(format!("missing \"=\" in URI query parameter \"{kv}\"")))?;
            out.push((percent_decode(k)?, percent_decode(v)?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn keyword_value() {
        let c = PgConfig::resolve(
            "host=db.example port=6543 dbname=pagila user=ana password='p a\\'ss' sslmode=require",
            &no_env,
        )
        .unwrap();
        assert_eq!(c.host, "db.example");
        assert_eq!(c.port, 6543);
        assert_eq!(c.dbname, "pagila");
        assert_eq!(c.user, "ana");
        assert_eq!(c.password.as_ref().unwrap().expose(), "p a'ss");
        assert_eq!(c.sslmode, SslMode::Require);
        assert!(!format!("{c:?}").contains("p a'ss"));
        assert!(!c.redacted().contains("ss"));
    }

    #[test]
    fn uri() {
        let c = PgConfig::resolve(
            "postgresql://ana:s%40cret@127.0.0.1:5433/pagila?sslmode=disable&connect_timeout=3",
            &no_env,
        )
        .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.dbname.as_str()),
            ("127.0.0.1", 5433, "pagila")
        );
        assert_eq!(c.password.unwrap().expose(), "s@cret");
        assert_eq!(c.sslmode, SslMode::Disable);
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(3)));
    }

    #[test]
    fn host_lists() {
        let hosts =
            |c: &PgConfig| -> Vec<(String, u16)> { c.candidates().iter().map(|c| (c.host.clone(), c.port)).collect() };
        let c = PgConfig::resolve("host=a,b,/tmp port=1,2,3 dbname=d user=u password=p", &no_env).unwrap();
        assert_eq!(hosts(&c), [("a".into(), 1), ("b".into(), 2), ("/tmp".into(), 3)]);
        assert!(c
            .candidates()
            .iter()
            .all(|x| x.password.as_ref().unwrap().expose() == "p"));
        // one port for every host; an empty entry is the default
        let c = PgConfig::resolve("host=a,b port=7 dbname=d", &no_env).unwrap();
        assert_eq!(hosts(&c), [("a".into(), 7), ("b".into(), 7)]);
        let c = PgConfig::resolve("host=a,b port=,9 dbname=d", &no_env).unwrap();
        assert_eq!(hosts(&c), [("a".into(), 5432), ("b".into(), 9)]);
        let e = PgConfig::resolve("host=a,b,c port=1,2 dbname=d", &no_env).unwrap_err();
        assert!(
            e.to_string().contains("could not match 2 port numbers to 3 hosts"),
            "{e}"
        );
        assert!(PgConfig::resolve("host=a,b target_session_attrs=any", &no_env).is_ok());
        let e = PgConfig::resolve("host=a,b target_session_attrs=read-write", &no_env).unwrap_err();
        assert!(
            e.to_string()
                .contains("target_session_attrs=\"read-write\" is not supported"),
            "{e}"
        );
        let e = PgConfig::resolve("host=a,b hostaddr=1.2.3.4,5.6.7.8,9.9.9.9", &no_env).unwrap_err();
        assert!(
            e.to_string().contains("could not match 3 host addresses to 2 hosts"),
            "{e}"
        );
        // the same in a URI, IPv6 included; a single host stays a single candidate
        let c = PgConfig::resolve("postgresql://u@h1:5433,[::1],h3:5435/d", &no_env).unwrap();
        assert_eq!(
            hosts(&c),
            [("h1".into(), 5433), ("::1".into(), 5432), ("h3".into(), 5435)]
        );
        assert_eq!(
            hosts(&PgConfig::resolve("host=solo", &no_env).unwrap()),
            [("solo".into(), 5432)]
        );
    }

    #[test]
    fn environment_fills_gaps() {
        let env = |k: &str| match k {
            "PGHOST" => Some("envhost".to_string()),
            "PGPORT" => Some("7777".to_string()),
            "PGUSER" => Some("envuser".to_string()),
            "PGPASSWORD" => Some("envpw".to_string()),
            _ => None,
        };
        let c = PgConfig::resolve("dbname=x", &env).unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.user.as_str(), c.dbname.as_str()),
            ("envhost", 7777, "envuser", "x")
        );
        assert_eq!(c.password.unwrap().expose(), "envpw");
        // The DSN wins over the environment.
        let c = PgConfig::resolve("host=dsnhost", &env).unwrap();
        assert_eq!(c.host, "dsnhost");
        assert_eq!(c.dbname, "envuser");
    }

    #[test]
    fn malformed() {
        for bad in [
            "host",
            "host=a bogus=1",
            "port=abc",
            "sslmode=maybe",
            "password='open",
            "postgresql://h:99999/db",
        ] {
            let e = PgConfig::resolve(bad, &no_env).unwrap_err().to_string();
            assert!(!e.is_empty(), "{bad}");
        }
        let e = PgConfig::resolve("host=a password=hunter2 bogus=1", &no_env)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"));
    }

    #[test]
    fn pgpass() {
        let dir = std::env::temp_dir().join(format!("pgpass-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pgpass");
        std::fs::write(&f, "# comment\nother:*:*:*:nope\nh1:5432:*:ana:pa\\:ss\n").unwrap();
        let pf = f.to_string_lossy().to_string();
        let env = move |k: &str| if k == "PGPASSFILE" { Some(pf.clone()) } else { None };
        let c = PgConfig::resolve("host=h1 user=ana dbname=d", &env).unwrap();
        assert_eq!(c.password.unwrap().expose(), "pa:ss");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("1500"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration_ms("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration_ms("1min"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration_ms("x"), None);
    }
}
