//! The SQL models of the Pagila star schema, embedded in the binary, in execution order.
//!
//! `CALL pagila_build_star()` loads the bronze tables ([`SOURCE_TABLES`]), then runs every
//! [`MODELS`] entry in order (each rendered with [`render`]), then every [`CHECKS`] query, on
//! the tables' next names ([`staged_tables`]), which it swaps in at the end in one transaction.
//! An incremental build upserts bronze instead and runs
//! [`INCREMENTAL_MODELS`] (then [`INCREMENTAL_CHECKS`], or [`CHECKS`] when time allows). The SQL
//! lives in `sql/` (one model per file, each with a header comment giving its grain, keys and
//! sources).
//!
//! dim_customer, dim_store and dim_staff keep SCD type 2 history in both modes (see the header
//! of `sql/dims/dim_customer.sql` for the tracked and overwritten attributes and the validity
//! rules). Models may create temp tables (`pagila_*`, working sets of one build, dropped by the
//! last model, `cleanup`) and set the variables `pagila_since_*` (reset by `cleanup`).
//!
//! Placeholders (`{{name}}`) understood by the SQL:
//! - every model and check: `bronze`, `silver`, `gold`, `compat` (schema names, already
//!   quoted identifiers, see [`quote_ident`] and [`Schemas::vars`]) and `run_id` (an integer);
//! - checks only: `src_payment_count`, `src_payment_sum`, `src_rental_count` (figures read
//!   from Postgres in the same snapshot, as plain decimal text: `16049`, `67416.51`; the sum
//!   of an empty table is `0`). The check SQL puts them inside string literals itself;
//!   `scd2_scope_customer`, `scd2_scope_store`, `scd2_scope_staff` (which entities
//!   `scd2_history` looks at, see [`scd2_scope_vars`]).

/// The Pagila tables copied into the bronze schema, one `CREATE OR REPLACE TABLE` each.
pub const SOURCE_TABLES: &[&str] = &[
    "actor",
    "address",
    "category",
    "city",
    "country",
    "customer",
    "film",
    "film_actor",
    "film_category",
    "inventory",
    "language",
    "payment",
    "rental",
    "staff",
    "store",
];

/// A source table as the incremental loader sees it: its primary key in bronze
/// and the column compared with its bookmark.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    pub table: &'static str,
    pub key: &'static [&'static str],
    /// Rows with this column at or after (bookmark - lookback) are read again.
    pub changed: &'static str,
    /// A key from a sequence, also bookmarked: rows past its mark are new whatever
    /// their timestamp (a payment may be dated before the latest one).
    pub id: Option<&'static str>,
}

/// Every source table, with its key and change column (payment has no
/// last_update: its rows are immutable and its bookmark is payment_date).
pub const SOURCES: &[Source] = &[
    Source {
        table: "actor",
        key: &["actor_id"],
        changed: "last_update",
        id: None,
    },
    Source {
        table: "address",
        key: &["address_id"],
        changed: "last_update",
        id: None,
    },
    Source {
        table: "category",
        key: &["category_id"],
        changed: "last_update",
        id: None,
    },
    Source {
        table: "city",
        key: &["city_id"],
        changed: "last_update",
        id: None,
    },
    Source {
        table: "country",
        key: &["country_id"],
        changed: "last_update",
        id: None,
    },
    Source {
        table: "customer",
        key: &["customer_id"],
        changed: "last_update",
        id: None,
    },
    Source {
        table: "film",
        key: &["film_id"],
        changed: "last_update",
        id: None,
    },
    Source {
        table: "film_actor",
        key: &["actor_id", "film_id"],
        changed: "last_update",
        id: None,
    },
    Source {
        table: "film_category",
        key: &["film_id", "category_id"],
        changed: "last_update",
        id: None,
    },
    Source {
        table: "inventory",
        key: &["inventory_id"],
        changed: "last_update",
        id: None,
    },
    Source {
        table: "language",
        key: &["language_id"],
        changed: "last_update",
        id: None,
    },
    Source {
        table: "payment",
        key: &["payment_id"],
        changed: "payment_date",
        id: Some("payment_id"),
    },
    Source {
        table: "rental",
        key: &["rental_id"],
        changed: "last_update",
        id: None,
    },
    Source {
        table: "staff",
        key: &["staff_id"],
        changed: "last_update",
        id: None,
    },
    Source {
        table: "store",
        key: &["store_id"],
        changed: "last_update",
        id: None,
    },
];

/// Which schema a model writes to (the key maps written by `keymap_*` live in silver).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    Silver,
    Gold,
    Compat,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Silver => "silver",
            Layer::Gold => "gold",
            Layer::Compat => "compat",
        }
    }
}

/// One model: a SQL file that may hold several `;`-separated statements.
#[derive(Clone, Copy, Debug)]
pub struct Model {
    pub name: &'static str,
    pub layer: Layer,
    pub sql: &'static str,
}

/// One data-quality check: a single SELECT returning rows
/// `(check VARCHAR, expected VARCHAR, actual VARCHAR, ok BOOLEAN)`; the build fails if any
/// row has `ok` not true.
#[derive(Clone, Copy, Debug)]
pub struct Check {
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! model {
    ($layer:ident, $path:literal, $name:literal) => {
        Model {
            name: $name,
            layer: Layer::$layer,
            sql: include_str!(concat!("../../sql/", $path, "/", $name, ".sql")),
        }
    };
}

macro_rules! check {
    ($name:literal) => {
        Check {
            name: $name,
            sql: include_str!(concat!("../../sql/checks/", $name, ".sql")),
        }
    };
}

/// Every model in execution order: each one only reads bronze tables and models above it.
pub const MODELS: &[Model] = &[
    // Schemas (CREATE SCHEMA IF NOT EXISTS silver, gold, compat).
    model!(Silver, "setup", "schemas"),
    // Staging: cleaned, conformed entities in silver.
    model!(Silver, "staging", "stg_address"),
    model!(Silver, "staging", "stg_customer"),
    model!(Silver, "staging", "stg_staff"),
    model!(Silver, "staging", "stg_store"),
    model!(Silver, "staging", "stg_category"),
    model!(Silver, "staging", "stg_film_category"),
    model!(Silver, "staging", "stg_film"),
    model!(Silver, "staging", "stg_actor"),
    model!(Silver, "staging", "stg_film_actor"),
    model!(Silver, "staging", "stg_inventory"),
    model!(Silver, "staging", "stg_rental"),
    model!(Silver, "staging", "stg_payment"),
    // Persistent surrogate-key maps in silver: created if missing, only ever appended
    // (per entity for film/actor/category, per version for the SCD2 dimensions).
    model!(Silver, "keymaps", "keymap_customer_version"),
    model!(Silver, "keymaps", "keymap_film"),
    model!(Silver, "keymaps", "keymap_store_version"),
    model!(Silver, "keymaps", "keymap_staff_version"),
    model!(Silver, "keymaps", "keymap_actor"),
    model!(Silver, "keymaps", "keymap_category"),
    // Dimensions and bridges in gold. The SCD2 dimensions (customer, store, staff) merge the
    // source into the history they already hold, for every entity (scd2_scope_full).
    model!(Gold, "dims", "dim_date"),
    model!(Gold, "dims", "scd2_scope_full"),
    model!(Gold, "dims", "dim_customer"),
    model!(Gold, "dims", "dim_film"),
    model!(Gold, "dims", "dim_store"),
    model!(Gold, "dims", "dim_staff"),
    model!(Gold, "dims", "dim_actor"),
    model!(Gold, "dims", "dim_category"),
    model!(Gold, "dims", "bridge_film_actor"),
    model!(Gold, "dims", "bridge_film_category"),
    // Facts.
    model!(Gold, "facts", "fact_sales"),
    model!(Gold, "facts", "fact_rental"),
    // Marts.
    model!(Gold, "marts", "mart_store_rentals"),
    model!(Gold, "marts", "mart_revenue_monthly"),
    // Views reproducing the original pagila_sales tables.
    model!(Compat, "compat", "pagila_sales"),
    // Drops the temp tables the models above created.
    model!(Silver, "setup", "cleanup"),
];

/// The models of an incremental build (`mode := 'incremental'`), in execution order.
///
/// Before them the orchestrator has, in the same transaction, upserted the changed rows into
/// bronze (one row per key), deleted the rows Postgres no longer has (with `detect_deletes`),
/// and created for every [`SOURCES`] table `T` the temp tables `temp.pagila_delta_T` (the rows
/// upserted in this run, as bronze now holds them, without `_run_id` and `_loaded_at`: models
/// read the changed rows from it rather than look them up in bronze) and
/// `temp.pagila_deleted_T` (keys deleted in this run, with the bronze key columns; empty without
/// `detect_deletes`). The models upsert only what those keys
/// reach: staged rows that changed, the SCD2 versions they open or close, the facts that
/// reference them, the mart groups those facts fall in. The result equals a full build from the
/// same source except for what a full build cannot know (closed SCD2 versions, members marked
/// `is_deleted`, calendar days kept after deletes). Files shared with [`MODELS`] (key maps, the
/// SCD2 dimensions, compat views, cleanup) run unchanged. A rerun without source change leaves
/// every table as it was: rows re-read by the lookback window are compared with bronze by the
/// orchestrator and, when equal, are neither rewritten nor passed on as delta keys.
pub const INCREMENTAL_MODELS: &[Model] = &[
    model!(Silver, "setup", "schemas"),
    // Staging upserts; each leaves temp pagila_chg_<entity> with the keys whose row changed.
    model!(Silver, "incremental", "stg_address"),
    model!(Silver, "incremental", "stg_customer"),
    model!(Silver, "incremental", "stg_staff"),
    model!(Silver, "incremental", "stg_store"),
    model!(Silver, "incremental", "stg_category"),
    model!(Silver, "incremental", "stg_film_category"),
    model!(Silver, "incremental", "stg_film"),
    model!(Silver, "incremental", "stg_actor"),
    model!(Silver, "incremental", "stg_film_actor"),
    model!(Silver, "incremental", "stg_inventory"),
    model!(Silver, "incremental", "stg_rental"),
    model!(Silver, "incremental", "stg_payment"),
    // Key maps: the same models as a full build (cheap on the small entity tables).
    model!(Silver, "keymaps", "keymap_customer_version"),
    model!(Silver, "keymaps", "keymap_film"),
    model!(Silver, "keymaps", "keymap_store_version"),
    model!(Silver, "keymaps", "keymap_staff_version"),
    model!(Silver, "keymaps", "keymap_actor"),
    model!(Silver, "keymaps", "keymap_category"),
    // Dimensions: the SCD2 ones are the full build's models on the changed entities only.
    model!(Gold, "incremental", "dim_date"),
    model!(Gold, "incremental", "scd2_scope"),
    model!(Gold, "dims", "dim_customer"),
    model!(Gold, "incremental", "dim_film"),
    model!(Gold, "dims", "dim_store"),
    model!(Gold, "dims", "dim_staff"),
    model!(Gold, "incremental", "dim_actor"),
    model!(Gold, "incremental", "dim_category"),
    model!(Gold, "incremental", "bridge_film_actor"),
    model!(Gold, "incremental", "bridge_film_category"),
    // Facts: the rows of changed keys and of facts whose SCD2 version changed.
    model!(Gold, "incremental", "fact_sales"),
    model!(Gold, "incremental", "fact_rental"),
    // Marts: updated by the difference the facts' changes make, group by group.
    model!(Gold, "incremental", "mart_store_rentals"),
    model!(Gold, "incremental", "mart_revenue_monthly"),
    model!(Compat, "compat", "pagila_sales"),
    model!(Silver, "setup", "cleanup"),
];

/// Every check, run after the models.
pub const CHECKS: &[Check] = &[
    check!("fact_sales_reconciles"),
    check!("fact_rental_reconciles"),
    check!("fact_keys_resolve"),
    check!("no_fanout"),
    check!("unknown_members"),
    check!("scd2_history"),
    check!("marts_reconcile"),
];

/// The checks after an incremental build: those whose cost does not grow with the facts beyond
/// one cheap pass. The full list costs about as much as a tenth of a full build on 10M-row
/// facts (hash joins and a distinct count over whole facts), which an incremental build touching
/// 0.1% of them cannot afford. Left out: the uniqueness of rental_id (kept by construction:
/// incremental facts replace rows by key), fact_keys_resolve and no_fanout (the incremental
/// models rebuild fact rows with the full build's joins). `scd2_history` looks at the run's SCD2
/// scope only ([`scd2_scope_vars`]). `pagila_check()` still runs [`CHECKS`] over everything.
pub const INCREMENTAL_CHECKS: &[Check] = &[
    check!("fact_sales_reconciles"),
    check!("fact_rental_row_count"),
    check!("unknown_members"),
    check!("scd2_history"),
    check!("marts_reconcile"),
];

/// Placeholders every model and check may use.
pub const MODEL_VARS: &[&str] = &["bronze", "silver", "gold", "compat", "run_id"];

/// Extra placeholders only the checks use.
pub const CHECK_VARS: &[&str] = &[
    "src_payment_count",
    "src_payment_sum",
    "src_rental_count",
    "scd2_scope_customer",
    "scd2_scope_store",
    "scd2_scope_staff",
];

/// The SCD2 scope placeholders of the checks: `true` (every entity) for a full build and
/// `pagila_check()`; for an incremental build, the entities its SCD2 merges could change (temp
/// `pagila_scd_scope_*`, which must still exist when the checks run: the orchestrator runs the
/// `cleanup` model after them).
pub fn scd2_scope_vars(incremental: bool) -> Vec<(&'static str, String)> {
    [
        ("scd2_scope_customer", "customer_id", "pagila_scd_scope_customer"),
        ("scd2_scope_store", "store_id", "pagila_scd_scope_store"),
        ("scd2_scope_staff", "staff_id", "pagila_scd_scope_staff"),
    ]
    .into_iter()
    .map(|(name, key, scope)| {
        let cond = if incremental {
            format!("{key} IN (SELECT {key} FROM temp.{scope})")
        } else {
            "true".to_string()
        };
        (name, cond)
    })
    .collect()
}

/// Target schema names, unquoted (as the user configured them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schemas {
    pub bronze: String,
    pub silver: String,
    pub gold: String,
    pub compat: String,
}

impl Default for Schemas {
    fn default() -> Self {
        Schemas {
            bronze: "bronze".to_string(),
            silver: "silver".to_string(),
            gold: "gold".to_string(),
            compat: "pagila_sales".to_string(),
        }
    }
}

impl Schemas {
    /// The schema of a layer placeholder ("bronze", "silver", "gold", "compat"), unquoted.
    pub fn layer(&self, placeholder: &str) -> &str {
        match placeholder {
            "bronze" => &self.bronze,
            "silver" => &self.silver,
            "gold" => &self.gold,
            "compat" => &self.compat,
            other => unreachable!("not a layer placeholder: {other}"),
        }
    }

    /// The model placeholders with the schema names quoted as identifiers.
    pub fn vars(&self, run_id: i64) -> Vec<(&'static str, String)> {
        vec![
            ("bronze", quote_ident(&self.bronze)),
            ("silver", quote_ident(&self.silver)),
            ("gold", quote_ident(&self.gold)),
            ("compat", quote_ident(&self.compat)),
            ("run_id", run_id.to_string()),
        ]
    }
}

/// Name prefix of the tables a full build writes before it swaps them in (see [`staged_tables`]).
pub const NEXT_PREFIX: &str = "__pagila_next_";

/// A persistent table that a full build (re)writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staged {
    /// The layer placeholder of its schema: "bronze", "silver" or "gold".
    pub layer: &'static str,
    pub table: String,
    /// Created with `CREATE TABLE IF NOT EXISTS` and merged into (key maps, SCD2
    /// dimensions): the build starts from a copy of the current table.
    pub merged: bool,
}

impl Staged {
    /// Its name while the build writes it.
    pub fn next_name(&self) -> String {
        format!("{NEXT_PREFIX}{}", self.table)
    }
}

/// Every persistent table a full build writes: the bronze [`SOURCES`] and each table the
/// [`MODELS`] create with `CREATE OR REPLACE TABLE` or `CREATE TABLE IF NOT EXISTS`.
///
/// A full build writes them under their next names ([`to_next`]), each statement committing on
/// its own, so that every model reads committed tables (DuckDB scans a table written earlier in
/// the same transaction several times slower), then swaps them in with one short transaction
/// of DROP and RENAME. Readers see the previous star until that commit.
pub fn staged_tables() -> Vec<Staged> {
    let mut out: Vec<Staged> = SOURCES
        .iter()
        .map(|s| Staged {
            layer: "bronze",
            table: s.table.to_string(),
            merged: false,
        })
        .collect();
    for m in MODELS {
        for line in m.sql.lines().map(|l| l.split("--").next().unwrap_or("")) {
            for (pattern, merged) in [
                ("CREATE OR REPLACE TABLE ", false),
                ("CREATE TABLE IF NOT EXISTS ", true),
            ] {
                let Some(at) = line.find(pattern) else { continue };
                if let Some((layer, table, _)) = table_ref(&line[at + pattern.len()..]) {
                    if !out.iter().any(|s| s.layer == layer && s.table == table) {
                        out.push(Staged {
                            layer,
                            table: table.to_string(),
                            merged,
                        });
                    }
                }
            }
        }
    }
    out
}

/// A reference `{{layer}}.table` at the start of `s`: the layer (one of the layer
/// placeholders), the table, and the text after it.
fn table_ref(s: &str) -> Option<(&'static str, &str, &str)> {
    let rest = s.strip_prefix("{{")?;
    let end = rest.find("}}")?;
    let name = rest[..end].trim();
    let layer = ["bronze", "silver", "gold"].into_iter().find(|l| *l == name)?;
    let rest = rest[end + 2..].strip_prefix('.')?;
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    (len > 0).then(|| (layer, &rest[..len], &rest[len..]))
}

/// `sql` with every reference `{{layer}}.table` to a table in `staged` turned into one to its
/// next name (placeholders kept, for [`render`]).
pub fn to_next(sql: &str, staged: &[Staged]) -> String {
    let mut out = String::with_capacity(sql.len() + 256);
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        match table_ref(tail) {
            Some((layer, table, after)) if staged.iter().any(|s| s.layer == layer && s.table == table) => {
                let placeholder = &tail[..tail.len() - after.len() - table.len()];
                out.push_str(placeholder);
                out.push_str(NEXT_PREFIX);
                out.push_str(table);
                rest = after;
            }
            _ => {
                out.push_str("{{");
                rest = &tail[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Quote a SQL identifier for DuckDB: wrap in double quotes, double any embedded quote.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A number (or anything printed as a SQL literal by `Display`), or `NULL`.
pub fn sql_or_null<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "NULL".into())
}

/// A quoted string literal, or `NULL`.
pub fn str_or_null(s: Option<&str>) -> String {
    s.map(crate::pg::quote_literal).unwrap_or_else(|| "NULL".into())
}

/// A TIMESTAMPTZ for a time in µs since 1970 (`to_timestamp` takes seconds), or `NULL`.
pub fn timestamptz_us(us: Option<i64>) -> String {
    match us {
        Some(us) => format!("to_timestamp({us} / 1000000.0)"),
        None => "NULL".into(),
    }
}

/// Replace every `{{name}}` in `sql` by its value from `vars` (whitespace inside the braces
/// is ignored). Substituted values are not scanned again. Fails on a placeholder that is not
/// in `vars` and on an unterminated `{{`, so nothing unreplaced can reach DuckDB.
pub fn render(sql: &str, vars: &[(&str, String)]) -> Result<String, String> {
    let mut out = String::with_capacity(sql.len() + 64);
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unterminated placeholder at {:?}", excerpt(&rest[start..])))?;
        let name = after[..end].trim();
        let value = vars
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("unknown placeholder {{{{{name}}}}}"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn excerpt(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_vars() -> Vec<(&'static str, String)> {
        Schemas::default().vars(7)
    }

    fn check_vars() -> Vec<(&'static str, String)> {
        let mut v = model_vars();
        v.push(("src_payment_count", "16049".into()));
        v.push(("src_payment_sum", "67416.51".into()));
        v.push(("src_rental_count", "16044".into()));
        v.extend(scd2_scope_vars(false));
        v
    }

    #[test]
    fn staged_tables_cover_every_persistent_table_of_a_full_build() {
        let st = staged_tables();
        let has = |layer: &str, t: &str, merged: bool| {
            st.iter()
                .any(|s| s.layer == layer && s.table == t && s.merged == merged)
        };
        assert!(has("bronze", "payment", false));
        assert!(has("silver", "stg_rental", false));
        assert!(has("silver", "keymap_film", true));
        assert!(has("gold", "dim_customer", true));
        assert!(has("gold", "fact_sales", false));
        assert!(has("gold", "mart_revenue_monthly", false));
        assert!(
            !st.iter().any(|s| s.table.starts_with("pagila_")),
            "temp tables and the run log are not staged"
        );
        assert_eq!(
            st.len(),
            SOURCES.len() + st.iter().filter(|s| s.layer != "bronze").count()
        );
    }

    #[test]
    fn to_next_rewrites_only_staged_references() {
        let st = vec![Staged {
            layer: "silver",
            table: "stg_rental".into(),
            merged: false,
        }];
        let sql = "FROM {{silver}}.stg_rental r JOIN {{ silver }}.stg_rental_x x JOIN {{gold}}.stg_rental g \
                   JOIN {{silver}}.stg_rental, {{ silver }}.stg_rental WHERE {{run_id}} > 0";
        assert_eq!(
            to_next(sql, &st),
            "FROM {{silver}}.__pagila_next_stg_rental r JOIN {{ silver }}.stg_rental_x x JOIN {{gold}}.stg_rental g \
                   JOIN {{silver}}.__pagila_next_stg_rental, {{ silver }}.__pagila_next_stg_rental WHERE {{run_id}} > 0"
        );
    }

    /// Lines of `sql` without `--` comments, for structural assertions.
    fn code_lines(sql: &str) -> impl Iterator<Item = &str> {
        sql.lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .filter(|l| !l.trim().is_empty())
    }

    /// Every model of both modes (files shared by the two lists appear twice).
    fn all_models() -> impl Iterator<Item = &'static Model> {
        MODELS.iter().chain(INCREMENTAL_MODELS.iter())
    }

    /// Models that create nothing of their own in a layer.
    const HOUSEKEEPING: &[&str] = &["schemas", "cleanup"];

    #[test]
    fn every_model_renders_without_leftover_placeholders() {
        for m in all_models() {
            let sql = render(m.sql, &model_vars()).unwrap_or_else(|e| panic!("{}: {e}", m.name));
            assert!(
                !sql.contains("{{") && !sql.contains("}}"),
                "{} keeps a placeholder",
                m.name
            );
            assert!(
                sql.contains("\"silver\"") || sql.contains("\"gold\"") || m.name == "cleanup",
                "{} names no schema",
                m.name
            );
        }
    }

    fn all_checks() -> impl Iterator<Item = &'static Check> {
        CHECKS.iter().chain(INCREMENTAL_CHECKS.iter())
    }

    #[test]
    fn every_check_renders_without_leftover_placeholders() {
        for c in all_checks() {
            let sql = render(c.sql, &check_vars()).unwrap_or_else(|e| panic!("{}: {e}", c.name));
            assert!(
                !sql.contains("{{") && !sql.contains("}}"),
                "{} keeps a placeholder",
                c.name
            );
        }
    }

    #[test]
    fn models_need_no_check_figures() {
        for m in all_models() {
            for v in CHECK_VARS {
                assert!(!m.sql.contains(v), "model {} uses check-only placeholder {v}", m.name);
            }
        }
    }

    #[test]
    fn names_are_unique_and_match_the_sql() {
        let mut names: Vec<&str> = MODELS
            .iter()
            .map(|m| m.name)
            .chain(CHECKS.iter().map(|c| c.name))
            .collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate model or check name");
        let mut inc: Vec<&str> = INCREMENTAL_MODELS
            .iter()
            .map(|m| m.name)
            .chain(INCREMENTAL_CHECKS.iter().map(|c| c.name))
            .collect();
        let n = inc.len();
        inc.sort_unstable();
        inc.dedup();
        assert_eq!(inc.len(), n, "duplicate incremental model or check name");
        for c in INCREMENTAL_CHECKS {
            // Shared with the full list, or the cheap half of one of its checks.
            assert!(
                CHECKS.iter().any(|f| f.sql == c.sql) || c.name == "fact_rental_row_count",
                "{} is an incremental-only check",
                c.name
            );
        }
        for m in all_models() {
            // The header comment starts with the model's name.
            assert!(
                m.sql.starts_with(&format!("-- {}:", m.name)),
                "{} header does not name the model",
                m.name
            );
        }
        for c in all_checks() {
            assert!(
                c.sql.starts_with(&format!("-- check {}", c.name)),
                "{} header does not name the check",
                c.name
            );
        }
    }

    #[test]
    fn model_writes_to_its_layer() {
        const WRITES: &[&str] = &["CREATE", "INSERT INTO", "DELETE FROM", "UPDATE", "ALTER TABLE"];
        for m in all_models() {
            let target = match m.layer {
                Layer::Silver => "{{silver}}",
                Layer::Gold => "{{gold}}",
                Layer::Compat => "{{compat}}",
            };
            // Temp tables (working sets of one build) live on the connection, not in a layer.
            let is_temp = |l: &str| l.starts_with("CREATE OR REPLACE TEMP TABLE");
            let writes: Vec<&str> = code_lines(m.sql)
                .map(str::trim_start)
                .filter(|l| WRITES.iter().any(|w| l.starts_with(w)) && !is_temp(l))
                .collect();
            let temps = code_lines(m.sql).filter(|l| is_temp(l.trim_start())).count();
            if HOUSEKEEPING.contains(&m.name) {
                continue;
            }
            assert!(!writes.is_empty() || temps > 0, "{} writes nothing", m.name);
            for w in writes {
                // The SCD2 dimensions (gold) also hand out their version keys (silver key maps).
                let keymap = w.contains("{{silver}}.keymap_");
                assert!(
                    w.contains(target) || (keymap && m.layer == Layer::Gold),
                    "{} writes outside {}: {w}",
                    m.name,
                    m.layer.as_str()
                );
            }
        }
    }

    #[test]
    fn checks_are_single_statements() {
        for c in all_checks() {
            let code: String = code_lines(c.sql).collect::<Vec<_>>().join("\n");
            let code = code.trim_end();
            assert!(code.ends_with(';'), "{} does not end with ';'", c.name);
            assert_eq!(code.matches(';').count(), 1, "{} holds several statements", c.name);
            assert!(code.trim_start().starts_with("WITH") || code.trim_start().starts_with("SELECT"));
        }
    }

    #[test]
    fn no_semicolon_or_placeholder_braces_in_comments() {
        // Keeps the SQL safe for a splitter that cuts at ';' and for render().
        for (name, sql) in all_models()
            .map(|m| (m.name, m.sql))
            .chain(all_checks().map(|c| (c.name, c.sql)))
        {
            for line in sql.lines() {
                if let Some((_, comment)) = line.split_once("--") {
                    assert!(!comment.contains(';'), "{name}: ';' in comment: {line}");
                    assert!(!comment.contains("{{"), "{name}: placeholder in comment: {line}");
                }
            }
        }
    }

    #[test]
    fn password_never_leaves_bronze() {
        for m in all_models() {
            let code: String = code_lines(m.sql).collect::<Vec<_>>().join("\n");
            assert!(!code.to_lowercase().contains("password"), "{} reads a password", m.name);
        }
    }

    #[test]
    fn every_source_table_is_read() {
        assert_eq!(SOURCE_TABLES.len(), 15);
        for t in SOURCE_TABLES {
            let needle = format!("{{{{bronze}}}}.{t}");
            let used = MODELS.iter().any(|m| {
                m.sql.match_indices(&needle).any(|(i, _)| {
                    !m.sql[i + needle.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                })
            });
            assert!(used, "bronze table {t} is never read");
        }
    }

    /// Temp tables a model creates (`CREATE OR REPLACE TEMP TABLE name`).
    fn temps_created(sql: &str) -> Vec<String> {
        code_lines(sql)
            .filter_map(|l| l.trim_start().strip_prefix("CREATE OR REPLACE TEMP TABLE "))
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
            .collect()
    }

    /// Temp tables a model reads (`temp.name`).
    fn temps_read(sql: &str) -> Vec<String> {
        let code: String = code_lines(sql).collect::<Vec<_>>().join("\n");
        code.match_indices("temp.")
            .map(|(i, _)| {
                code[i + 5..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .collect()
    }

    /// Walks a model list in order: every temp table read was created by an earlier model (or
    /// earlier in the same file), or is one of the orchestrator's delta tables when allowed.
    fn assert_temps_flow(list: &[Model], orchestrator_tables: bool) {
        let mut created: Vec<String> = Vec::new();
        for m in list {
            let mine = temps_created(m.sql);
            for t in temps_read(m.sql) {
                let from_orchestrator = SOURCES
                    .iter()
                    .any(|s| t == format!("pagila_delta_{}", s.table) || t == format!("pagila_deleted_{}", s.table));
                if from_orchestrator {
                    assert!(orchestrator_tables, "{} reads {t} in a full build", m.name);
                    continue;
                }
                assert!(
                    created.contains(&t) || mine.contains(&t) || m.name == "cleanup",
                    "{} reads temp.{t} before any model creates it",
                    m.name
                );
            }
            created.extend(mine);
        }
    }

    #[test]
    fn temp_tables_are_created_before_they_are_read() {
        assert_temps_flow(MODELS, false);
        assert_temps_flow(INCREMENTAL_MODELS, true);
    }

    #[test]
    fn cleanup_drops_every_temp_table_and_runs_last() {
        let cleanup = MODELS.last().expect("models");
        assert_eq!(cleanup.name, "cleanup");
        assert_eq!(INCREMENTAL_MODELS.last().map(|m| m.name), Some("cleanup"));
        let dropped: Vec<String> = code_lines(cleanup.sql)
            .filter_map(|l| l.trim().strip_prefix("DROP TABLE IF EXISTS temp."))
            .map(|t| t.trim_end_matches(';').to_string())
            .collect();
        for m in all_models() {
            for t in temps_created(m.sql) {
                assert!(
                    t.starts_with("pagila_"),
                    "{}: temp table {t} lacks the pagila_ prefix",
                    m.name
                );
                assert!(
                    dropped.contains(&t),
                    "{}: temp table {t} is not dropped by cleanup",
                    m.name
                );
            }
        }
        for t in &dropped {
            assert!(!t.starts_with("pagila_delta_") && !t.starts_with("pagila_deleted_"));
        }
    }

    #[test]
    fn incremental_models_read_every_delta() {
        for s in SOURCES {
            for t in [
                format!("pagila_delta_{}", s.table),
                format!("pagila_deleted_{}", s.table),
            ] {
                let read = INCREMENTAL_MODELS.iter().any(|m| temps_read(m.sql).contains(&t));
                assert!(read, "no incremental model reads temp.{t}");
            }
        }
    }

    #[test]
    fn incremental_models_follow_the_full_order() {
        // Same first and last steps, and every full-build entity model has an incremental
        // counterpart of the same name (staging, dimensions, facts, marts).
        assert_eq!(INCREMENTAL_MODELS.first().map(|m| m.name), Some("schemas"));
        for m in MODELS.iter().filter(|m| m.name != "scd2_scope_full") {
            assert!(
                INCREMENTAL_MODELS.iter().any(|i| i.name == m.name),
                "{} has no incremental counterpart",
                m.name
            );
        }
        let pos = |name: &str| INCREMENTAL_MODELS.iter().position(|m| m.name == name).unwrap();
        assert!(pos("scd2_scope") < pos("dim_customer"));
        assert!(pos("stg_payment") < pos("dim_date") && pos("dim_date") < pos("fact_sales"));
        assert!(pos("dim_staff") < pos("fact_sales") && pos("fact_rental") < pos("mart_store_rentals"));
    }

    #[test]
    fn render_replaces_and_rejects() {
        let vars = vec![("a", "x".to_string()), ("b", "{{a}}".to_string())];
        assert_eq!(render("1 {{a}} 2 {{ a }} {{b}}", &vars).unwrap(), "1 x 2 x {{a}}");
        assert_eq!(render("no placeholders", &vars).unwrap(), "no placeholders");
        assert!(render("{{zzz}}", &vars).unwrap_err().contains("zzz"));
        assert!(render("x {{a", &vars).unwrap_err().contains("unterminated"));
        assert!(render("{{src_payment_sum}}", &model_vars()).is_err());
    }

    #[test]
    fn schema_names_are_quoted() {
        let s = Schemas {
            bronze: "my \"raw\"".into(),
            ..Schemas::default()
        };
        let vars = s.vars(1);
        assert_eq!(render("{{bronze}}.t", &vars).unwrap(), "\"my \"\"raw\"\"\".t");
        assert_eq!(render("{{compat}}", &vars).unwrap(), "\"pagila_sales\"");
        assert_eq!(render("{{run_id}}", &vars).unwrap(), "1");
        let names: Vec<&str> = vars.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, MODEL_VARS);
    }
}
