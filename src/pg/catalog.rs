//! The Postgres catalog: which relation a name means, how big it is, its
//! partitions, and the exact DuckDB type of each column.
//!
//! This is the one place where Postgres types map to DuckDB types (the README's
//! type table is this module's summary).

use std::collections::HashMap;

use super::error::PgError;
use super::wire::{Connection, FieldDesc};
use super::{quote_ident, quote_literal};
use crate::types::DuckType;

/// How a column's binary value is decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum PgKind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// numeric into DECIMAL(width, scale).
    Numeric {
        width: u8,
        scale: u8,
    },
    Date,
    Time,
    Timestamp,
    Interval,
    Uuid,
    Bytea,
    /// UTF-8 text (text, varchar, bpchar, name, json, anything cast to text).
    Text,
    /// jsonb: a version byte, then text.
    Jsonb,
    /// An enum: the label text, mapped to its position.
    Enum(Vec<String>),
    /// A one-dimensional array.
    Array(Box<PgKind>),
}

/// One result column: how to select it, decode it and type it in DuckDB.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub pg_type: String,
    /// The SELECT-list expression (the quoted name, or a cast to text).
    pub select: String,
    pub kind: PgKind,
    pub duck: DuckType,
}

/// How an unconstrained `numeric` column is typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NumericPolicy {
    Decimal { width: u8, scale: u8 },
    Double,
    Varchar,
}

impl NumericPolicy {
    pub const DEFAULT: NumericPolicy = NumericPolicy::Decimal { width: 38, scale: 10 };

    /// "DECIMAL(38,10)", "DOUBLE" or "VARCHAR".
    pub fn parse(s: &str) -> Result<NumericPolicy, String> {
        let u = s.trim().to_ascii_uppercase().replace(' ', "");
        if u == "DOUBLE" {
            return Ok(NumericPolicy::Double);
        }
        if u == "VARCHAR" {
            return Ok(NumericPolicy::Varchar);
        }
        let inner = u
            .strip_prefix("DECIMAL(")
            .or_else(|| u.strip_prefix("NUMERIC("))
            .and_then(|r| r.strip_suffix(')'));
        if let Some((w, sc)) = inner.and_then(|i| i.split_once(',')) {
            if let (Ok(w), Ok(sc)) = (w.parse::<u8>(), sc.parse::<u8>()) {
                if (1..=38).contains(&w) && sc <= w {
                    return Ok(NumericPolicy::Decimal { width: w, scale: sc });
                }
            }
        }
        Err(format!(
            "unconstrained_numeric must be DECIMAL(p,s) with 1 <= p <= 38 and s <= p, DOUBLE or VARCHAR, not '{s}'"
        ))
    }
}

/// A relation as Postgres knows it.
#[derive(Clone, Debug)]
pub struct Relation {
    pub oid: u32,
    /// `"schema"."name"`, ready for SQL.
    pub qualified: String,
    /// schema.name, for messages.
    pub display: String,
    /// r table, p partitioned table, v view, m materialized view, f foreign table.
    pub kind: char,
    pub database: String,
}

/// A leaf to scan, with its size in pages (None when it has no heap pages, e.g. a view).
#[derive(Clone, Debug)]
pub struct Leaf {
    pub qualified: String,
    pub pages: Option<u64>,
    /// Scan with ONLY, because the leaf has inheritance children scanned separately.
    pub only: bool,
}

/// Resolves `name` (schema-qualified or through the search path; quoted parts
/// keep their case) to a relation. An unknown name is an error that names it and
/// the database.
pub fn resolve(conn: &mut Connection, name: &str) -> Result<Relation, PgError> {
    let sql = format!(
        "SELECT c.oid, n.nspname, c.relname, c.relkind, current_database() \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.oid = pg_catalog.to_regclass({})",
        quote_literal(name)
    );
    let rows = match conn.simple_query(&sql) {
        Ok(r) => r,
        // A syntactically invalid name ("a.b.c.d", "payment; drop …") is just unknown.
        Err(PgError::Server(e)) if e.code.starts_with("42") || e.code == "3F000" || e.code == "22023" => Vec::new(),
        Err(e) => return Err(e),
    };
    let Some(row) = rows.into_iter().next() else {
        let db = conn
            .simple_query("SELECT current_database()")?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
            .unwrap_or_default();
        return Err(PgError::Server(Box::new(super::error::ServerError {
            severity: "ERROR".into(),
            code: "42P01".into(),
            message: format!(
                "unknown table: relation \"{name}\" does not exist in PostgreSQL database \"{db}\" ({})",
                conn.target()
            ),
            ..Default::default()
        })));
    };
    let text = |i: usize| row[i].clone().unwrap_or_default();
    let nsp = text(1);
    let rel = text(2);
    Ok(Relation {
        oid: text(0).parse().unwrap_or(0),
        qualified: format!("{}.{}", quote_ident(&nsp), quote_ident(&rel)),
        display: format!("{nsp}.{rel}"),
        kind: text(3).chars().next().unwrap_or('r'),
        database: text(4),
    })
}

/// The leaves to scan for `rel`: the relation itself, or for a partitioned table
/// each leaf partition, with sizes measured now (call inside the snapshot).
pub fn leaves(conn: &mut Connection, rel: &Relation) -> Result<Vec<Leaf>, PgError> {
    match rel.kind {
        'p' => {
            let sql = format!(
                "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), \
                 pg_catalog.pg_relation_size(c.oid) / pg_catalog.current_setting('block_size')::bigint, c.relkind \
                 FROM pg_catalog.pg_partition_tree({}) t \
                 JOIN pg_catalog.pg_class c ON c.oid = t.relid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE t.isleaf ORDER BY 1",
                rel.oid
            );
            let rows = conn.simple_query(&sql)?;
            Ok(rows
                .into_iter()
                .map(|r| {
                    let kind = r[2].clone().unwrap_or_default();
                    Leaf {
                        qualified: r[0].clone().unwrap_or_default(),
                        pages: if kind == "r" || kind == "m" {
                            r[1].as_deref().and_then(|p| p.parse().ok())
                        } else {
                            None
                        },
                        only: false,
                    }
                })
                .collect())
        }
        'r' | 'm' => {
            let sql = format!(
                "SELECT pg_catalog.pg_relation_size({0}) / pg_catalog.current_setting('block_size')::bigint, \
                 EXISTS (SELECT 1 FROM pg_catalog.pg_inherits WHERE inhparent = {0})",
                rel.oid
            );
            let rows = conn.simple_query(&sql)?;
            let r = rows.into_iter().next().unwrap_or_default();
            let has_children = r.get(1).cloned().flatten().as_deref() == Some("t");
            Ok(vec![Leaf {
                qualified: rel.qualified.clone(),
                // Inheritance parents are read whole: their children have pages of their own.
                pages: if has_children {
                    None
                } else {
                    r.first().cloned().flatten().and_then(|p| p.parse().ok())
                },
                only: false,
            }])
        }
        _ => Ok(vec![Leaf {
            qualified: rel.qualified.clone(),
            pages: None,
            only: false,
        }]),
    }
}

/// The planner's row estimate (sum over leaf partitions), for DuckDB's optimizer.
pub fn estimate_rows(conn: &mut Connection, rel: &Relation) -> Result<u64, PgError> {
    let sql = if rel.kind == 'p' {
        format!(
            "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint FROM pg_catalog.pg_partition_tree({}) t \
             JOIN pg_catalog.pg_class c ON c.oid = t.relid WHERE t.isleaf",
            rel.oid
        )
    } else {
        format!(
            "SELECT greatest(reltuples, 0)::bigint FROM pg_catalog.pg_class WHERE oid = {}",
            rel.oid
        )
    };
    let rows = conn.simple_query(&sql)?;
    Ok(rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// What the catalog says about one type.
#[derive(Clone, Debug)]
struct TypeInfo {
    name: String,
    typtype: char,
    basetype: u32,
    typtypmod: i32,
    elem: u32,
    category: char,
}

/// Maps the described result columns of a query to DuckDB columns.
pub fn columns(conn: &mut Connection, fields: &[FieldDesc], numeric: &NumericPolicy) -> Result<Vec<Column>, PgError> {
    let mut types: HashMap<u32, TypeInfo> = HashMap::new();
    let mut enums: HashMap<u32, Vec<String>> = HashMap::new();
    // Resolve the types transitively (domains → base, arrays → element).
    let mut todo: Vec<u32> = fields.iter().map(|f| f.type_oid).collect();
    while !todo.is_empty() {
        todo.sort_unstable();
        todo.dedup();
        todo.retain(|o| !types.contains_key(o));
        if todo.is_empty() {
            break;
        }
        let list = todo.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(",");
        let rows = conn.simple_query(&format!(
            "SELECT t.oid, pg_catalog.format_type(t.oid, NULL), t.typtype, t.typbasetype, t.typtypmod, t.typelem, t.typcategory \
             FROM pg_catalog.pg_type t WHERE t.oid IN ({list})"
        ))?;
        todo.clear();
        for r in rows {
            let g = |i: usize| r[i].clone().unwrap_or_default();
            let oid: u32 = g(0).parse().unwrap_or(0);
            let info = TypeInfo {
                name: g(1),
                typtype: g(2).chars().next().unwrap_or('b'),
                basetype: g(3).parse().unwrap_or(0),
                typtypmod: g(4).parse().unwrap_or(-1),
                elem: g(5).parse().unwrap_or(0),
                category: g(6).chars().next().unwrap_or('U'),
            };
            if info.typtype == 'd' {
                todo.push(info.basetype);
            }
            if info.category == 'A' && info.elem != 0 {
                todo.push(info.elem);
            }
            types.insert(oid, info);
        }
    }
    let enum_oids: Vec<String> = types
        .iter()
        .filter(|(_, t)| t.typtype == 'e')
        .map(|(o, _)| o.to_string())
        .collect();
    if !enum_oids.is_empty() {
        let rows = conn.simple_query(&format!(
            "SELECT enumtypid, enumlabel FROM pg_catalog.pg_enum WHERE enumtypid IN ({}) ORDER BY enumtypid, enumsortorder",
            enum_oids.join(",")
        ))?;
        for r in rows {
            let oid: u32 = r[0].as_deref().unwrap_or("0").parse().unwrap_or(0);
            enums.entry(oid).or_default().push(r[1].clone().unwrap_or_default());
        }
    }
    let cat = Catalog {
        types: &types,
        enums: &enums,
        numeric,
    };
    Ok(fields.iter().map(|f| cat.column(f)).collect())
}

struct Catalog<'a> {
    types: &'a HashMap<u32, TypeInfo>,
    enums: &'a HashMap<u32, Vec<String>>,
    numeric: &'a NumericPolicy,
}

/// A scalar's mapping: decoder and DuckDB type; None means "read it as text".
type Scalar = Option<(PgKind, DuckType)>;

impl Catalog<'_> {
    /// Follows domains to their base type, keeping the innermost typmod.
    fn base(&self, mut oid: u32, mut typmod: i32) -> (u32, i32) {
        for _ in 0..32 {
            match self.types.get(&oid) {
                Some(t) if t.typtype == 'd' => {
                    if typmod < 0 {
                        typmod = t.typtypmod;
                    }
                    oid = t.basetype;
                }
                _ => break,
            }
        }
        (oid, typmod)
    }

    fn scalar(&self, oid: u32, typmod: i32) -> Scalar {
        Some(match oid {
            16 => (PgKind::Bool, DuckType::Boolean),
            17 => (PgKind::Bytea, DuckType::Blob),
            19 | 25 | 1042 | 1043 => (PgKind::Text, DuckType::Varchar),
            20 => (PgKind::Int8, DuckType::BigInt),
            21 => (PgKind::Int2, DuckType::SmallInt),
            23 => (PgKind::Int4, DuckType::Integer),
            700 => (PgKind::Float4, DuckType::Float),
            701 => (PgKind::Float8, DuckType::Double),
            114 => (PgKind::Text, DuckType::Json),
            3802 => (PgKind::Jsonb, DuckType::Json),
            1082 => (PgKind::Date, DuckType::Date),
            1083 => (PgKind::Time, DuckType::Time),
            1114 => (PgKind::Timestamp, DuckType::Timestamp),
            1184 => (PgKind::Timestamp, DuckType::TimestampTz),
            1186 => (PgKind::Interval, DuckType::Interval),
            2950 => (PgKind::Uuid, DuckType::Uuid),
            1700 => {
                if typmod >= 4 {
                    let precision = (((typmod - 4) >> 16) & 0xffff) as u32;
                    let scale = ((typmod - 4) & 0x7ff) as u32;
                    let width = precision.clamp(1, 38) as u8;
                    let scale = scale.min(u32::from(width)) as u8;
                    (PgKind::Numeric { width, scale }, DuckType::Decimal { width, scale })
                } else {
                    match self.numeric {
                        NumericPolicy::Decimal { width, scale } => (
                            PgKind::Numeric {
                                width: *width,
                                scale: *scale,
                            },
                            DuckType::Decimal {
                                width: *width,
                                scale: *scale,
                            },
                        ),
                        // Cast on the server; Postgres rounds to the nearest double.
                        NumericPolicy::Double => (PgKind::Float8, DuckType::Double),
                        NumericPolicy::Varchar => return None,
                    }
                }
            }
            _ => {
                let t = self.types.get(&oid)?;
                if t.typtype == 'e' {
                    let labels = self.enums.get(&oid).cloned().unwrap_or_default();
                    if labels.is_empty() {
                        return None;
                    }
                    (PgKind::Enum(labels.clone()), DuckType::Enum(labels))
                } else {
                    return None;
                }
            }
        })
    }

    fn column(&self, f: &FieldDesc) -> Column {
        let quoted = quote_ident(&f.name);
        let (oid, typmod) = self.base(f.type_oid, f.typmod);
        let pg_type = self
            .types
            .get(&f.type_oid)
            .map(|t| t.name.clone())
            .unwrap_or_else(|| format!("oid {}", f.type_oid));
        let is_array = self.types.get(&oid).is_some_and(|t| t.category == 'A' && t.elem != 0);
        if is_array {
            let elem = self.types.get(&oid).map(|t| t.elem).unwrap_or(0);
            let (eoid, etypmod) = self.base(elem, typmod);
            let (kind, duck, select) = match self.scalar(eoid, etypmod) {
                Some((k, d)) => {
                    // A server-side cast is needed when the element is a domain.
                    let select = if eoid != elem {
                        format!(
                            "{quoted}::{}[]",
                            self.types.get(&eoid).map(|t| t.name.as_str()).unwrap_or("text")
                        )
                    } else {
                        quoted.clone()
                    };
                    (k, d, select)
                }
                // Each element through its type's output function (a cast to
                // text is not always that: text(inet) adds the netmask).
                None => (
                    PgKind::Text,
                    DuckType::Varchar,
                    format!(
                        "CASE WHEN {quoted} IS NULL THEN NULL ELSE ARRAY(SELECT CASE WHEN u.e IS NULL THEN NULL \
                         ELSE pg_catalog.concat(u.e) END FROM unnest({quoted}) WITH ORDINALITY AS u(e, n) \
                         ORDER BY u.n) END"
                    ),
                ),
            };
            return Column {
                name: f.name.clone(),
                pg_type,
                select,
                kind: PgKind::Array(Box::new(kind)),
                duck: DuckType::List(Box::new(duck)),
            };
        }
        match self.scalar(oid, typmod) {
            Some((kind, duck)) => {
                let select = match (&kind, oid == 1700 && typmod < 4) {
                    (PgKind::Float8, true) => format!("{quoted}::float8"),
                    _ => quoted,
                };
                Column {
                    name: f.name.clone(),
                    pg_type,
                    select,
                    kind,
                    duck,
                }
            }
            None => Column {
                name: f.name.clone(),
                pg_type,
                // The type's output function (concat calls it), which is what
                // "its text form" means; a cast to text is not always the same.
                select: format!("CASE WHEN {quoted} IS NULL THEN NULL ELSE pg_catalog.concat({quoted}) END"),
                kind: PgKind::Text,
                duck: DuckType::Varchar,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_policy() {
        assert_eq!(NumericPolicy::parse("double").unwrap(), NumericPolicy::Double);
        assert_eq!(NumericPolicy::parse("VARCHAR").unwrap(), NumericPolicy::Varchar);
        assert_eq!(
            NumericPolicy::parse("decimal(18, 4)").unwrap(),
            NumericPolicy::Decimal { width: 18, scale: 4 }
        );
        assert!(NumericPolicy::parse("decimal(40,2)").is_err());
        assert!(NumericPolicy::parse("float").is_err());
    }
}
