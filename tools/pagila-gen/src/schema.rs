//! The Pagila DDL (src/schema.sql, derived from Pagila's pagila-schema.sql) cut
//! into the phases of a fast load, plus the DDL of the payment partitions.

use crate::gen::payment_partitions;

const SCHEMA_SQL: &str = include_str!("schema.sql");

/// Session settings of pg_dump's output that the DDL relies on (function
/// bodies refer to tables created later).
pub const SESSION: &str = "SET check_function_bodies = false; SET client_min_messages = warning;";

/// The statements of one `-- @section NAME` of schema.sql.
pub fn section(name: &str) -> Vec<String> {
    let marker = format!("-- @section {name}\n");
    let start = SCHEMA_SQL
        .find(&marker)
        .unwrap_or_else(|| panic!("schema.sql has no section {name}"))
        + marker.len();
    let body = &SCHEMA_SQL[start..];
    let body = &body[..body.find("-- @section ").unwrap_or(body.len())];
    split_statements(body)
}

/// Splits SQL into statements at `;` outside dollar quotes and string literals.
fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut dollar: Option<String> = None;
    let mut in_str = false;
    let mut chars = sql.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        cur.push(c);
        if let Some(tag) = &dollar {
            if c == '$' && sql[i..].starts_with(tag.as_str()) {
                for _ in 1..tag.len() {
                    cur.push(chars.next().unwrap().1);
                }
                dollar = None;
            }
            continue;
        }
        if in_str {
            in_str = c != '\'';
            continue;
        }
        match c {
            '\'' => in_str = true,
            '$' => {
                // A dollar-quote tag: $$ or $name$.
                let rest = &sql[i + 1..];
                if let Some(end) = rest.find('$') {
                    let tag = &rest[..end];
                    if tag.chars().all(|c| c.is_alphanumeric() || c == '_') {
                        let full = format!("${tag}$");
                        for _ in 1..full.len() {
                            cur.push(chars.next().unwrap().1);
                        }
                        dollar = Some(full);
                    }
                }
            }
            ';' => {
                let stmt = cur.trim().trim_end_matches(';').trim_end();
                if !stmt.is_empty() {
                    out.push(stmt.to_string());
                }
                cur.clear();
            }
            _ => {}
        }
    }
    assert!(cur.trim().is_empty(), "unterminated statement in schema.sql: {cur}");
    out
}

/// Creates the monthly partitions of payment the way pg_dump restores them
/// (a table of its own, then ATTACH), so that on PostgreSQL 18 the NOT NULL
/// constraints get the same names as in Pagila.
pub fn partitions_ddl() -> Vec<String> {
    partitions_ddl_for(&payment_partitions())
}

/// CREATE + ATTACH of the given (name, from, to) partitions.
pub fn partitions_ddl_for(parts: &[(String, String, String)]) -> Vec<String> {
    parts
        .iter()
        .flat_map(|(name, from, to)| {
            [
                format!(
                    "CREATE TABLE public.{name} (
    payment_id integer DEFAULT nextval('public.payment_payment_id_seq'::regclass) NOT NULL,
    customer_id integer NOT NULL,
    staff_id integer NOT NULL,
    rental_id integer NOT NULL,
    amount numeric(5,2) NOT NULL,
    payment_date timestamp with time zone NOT NULL
)"
                ),
                format!(
                    "ALTER TABLE ONLY public.payment ATTACH PARTITION public.{name} \
                     FOR VALUES FROM ('{from}') TO ('{to}')"
                ),
            ]
        })
        .collect()
}

/// Indexes of every payment partition, named like in Pagila.
pub fn partition_indexes() -> Vec<String> {
    partition_indexes_for(&payment_partitions())
}

pub fn partition_indexes_for(parts: &[(String, String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (p, _, _) in parts {
        out.push(format!(
            "CREATE INDEX idx_fk_{p}_customer_id ON public.{p} USING btree (customer_id)"
        ));
        out.push(format!(
            "CREATE INDEX idx_fk_{p}_staff_id ON public.{p} USING btree (staff_id)"
        ));
        out.push(format!(
            "CREATE INDEX {p}_customer_id_idx ON public.{p} USING btree (customer_id)"
        ));
    }
    out
}

/// A foreign key: (table, constraint name, ADD ... NOT VALID statement).
pub struct ForeignKey {
    pub table: String,
    pub name: String,
    pub add_not_valid: String,
}

impl ForeignKey {
    pub fn validate(&self) -> String {
        format!("ALTER TABLE public.{} VALIDATE CONSTRAINT {}", self.table, self.name)
    }
}

/// All foreign keys, those of schema.sql plus those of every payment
/// partition (Pagila names them `<partition>_<column>_fkey`).
pub fn foreign_keys() -> Vec<ForeignKey> {
    let mut out: Vec<ForeignKey> = section("foreign_keys")
        .into_iter()
        .map(|stmt| {
            // ALTER TABLE ONLY public.<table>\n    ADD CONSTRAINT <name> FOREIGN KEY ...
            let words: Vec<&str> = stmt.split_whitespace().collect();
            assert_eq!(&words[..3], ["ALTER", "TABLE", "ONLY"], "{stmt}");
            assert_eq!(&words[4..6], ["ADD", "CONSTRAINT"], "{stmt}");
            ForeignKey {
                table: words[3].trim_start_matches("public.").to_string(),
                name: words[6].to_string(),
                add_not_valid: format!("{stmt} NOT VALID"),
            }
        })
        .collect();
    out.extend(partition_foreign_keys(&payment_partitions()));
    out
}

/// The foreign keys of the given payment partitions (Pagila names them
/// `<partition>_<column>_fkey`).
pub fn partition_foreign_keys(parts: &[(String, String, String)]) -> Vec<ForeignKey> {
    let mut out = Vec::new();
    for (p, _, _) in parts {
        for (col, target) in [
            ("customer_id", "customer(customer_id)"),
            ("rental_id", "rental(rental_id)"),
            ("staff_id", "staff(staff_id)"),
        ] {
            let name = format!("{p}_{col}_fkey");
            out.push(ForeignKey {
                table: p.clone(),
                add_not_valid: format!(
                    "ALTER TABLE ONLY public.{p} ADD CONSTRAINT {name} \
                     FOREIGN KEY ({col}) REFERENCES public.{target} NOT VALID"
                ),
                name,
            });
        }
    }
    out
}

/// Tables with a serial id: (sequence, table, column).
pub const SEQUENCES: [(&str, &str, &str); 13] = [
    ("actor_actor_id_seq", "actor", "actor_id"),
    ("address_address_id_seq", "address", "address_id"),
    ("category_category_id_seq", "category", "category_id"),
    ("city_city_id_seq", "city", "city_id"),
    ("country_country_id_seq", "country", "country_id"),
    ("customer_customer_id_seq", "customer", "customer_id"),
    ("film_film_id_seq", "film", "film_id"),
    ("inventory_inventory_id_seq", "inventory", "inventory_id"),
    ("language_language_id_seq", "language", "language_id"),
    ("payment_payment_id_seq", "payment", "payment_id"),
    ("rental_rental_id_seq", "rental", "rental_id"),
    ("staff_staff_id_seq", "staff", "staff_id"),
    ("store_store_id_seq", "store", "store_id"),
];

pub fn setval_sql() -> String {
    SEQUENCES
        .iter()
        .map(|(seq, table, col)| {
            format!(
                "SELECT setval('public.{seq}', COALESCE(max({col}), 1), max({col}) IS NOT NULL) FROM public.{table};"
            )
        })
        .collect()
}

/// Drops every object the schema creates (for --drop-existing).
pub fn drop_sql() -> String {
    let mut s = String::new();
    s += "DROP MATERIALIZED VIEW IF EXISTS public.rental_by_category CASCADE;\n";
    for v in [
        "actor_info",
        "customer_list",
        "film_list",
        "nicer_but_slower_film_list",
        "sales_by_film_category",
        "sales_by_store",
        "staff_list",
    ] {
        s += &format!("DROP VIEW IF EXISTS public.{v} CASCADE;\n");
    }
    for t in TABLES {
        s += &format!("DROP TABLE IF EXISTS public.{t} CASCADE;\n");
    }
    for (seq, _, _) in SEQUENCES {
        s += &format!("DROP SEQUENCE IF EXISTS public.{seq} CASCADE;\n");
    }
    s += "DROP AGGREGATE IF EXISTS public.group_concat(text) CASCADE;\n";
    for f in [
        "_group_concat(text, text)",
        "film_in_stock(integer, integer)",
        "film_not_in_stock(integer, integer)",
        "get_customer_balance(integer, timestamp with time zone)",
        "inventory_held_by_customer(integer)",
        "inventory_in_stock(integer)",
        "last_day(timestamp with time zone)",
        "last_updated()",
        "rewards_report(integer, numeric)",
    ] {
        s += &format!("DROP FUNCTION IF EXISTS public.{f} CASCADE;\n");
    }
    s += "DROP DOMAIN IF EXISTS public.year CASCADE;\n";
    s += "DROP DOMAIN IF EXISTS public.\"bıgınt\" CASCADE;\n";
    s += "DROP TYPE IF EXISTS public.mpaa_rating CASCADE;\n";
    s
}

/// The tables of Pagila (payment is the partitioned parent).
pub const TABLES: [&str; 15] = [
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_split() {
        let pre = section("pre");
        assert!(pre.iter().any(|s| s.starts_with("CREATE TABLE public.payment")));
        assert!(pre.iter().any(|s| s.contains("CREATE FUNCTION public.rewards_report")));
        // Function bodies with semicolons stay whole.
        let balance = pre.iter().find(|s| s.contains("get_customer_balance")).unwrap();
        assert!(balance.trim_end().ends_with("$$"));
        assert_eq!(section("keys").iter().filter(|s| s.contains("PRIMARY KEY")).count(), 15);
        assert_eq!(section("views").len(), 9);
        assert_eq!(section("triggers").len(), 14);
    }

    #[test]
    fn foreign_keys_parse() {
        let fks = foreign_keys();
        assert_eq!(fks.len(), 18 + 3 * payment_partitions().len());
        let rental_inv = fks.iter().find(|f| f.name == "rental_inventory_id_fkey").unwrap();
        assert_eq!(rental_inv.table, "rental");
        assert!(rental_inv.add_not_valid.ends_with("ON DELETE RESTRICT NOT VALID"));
        assert_eq!(
            rental_inv.validate(),
            "ALTER TABLE public.rental VALIDATE CONSTRAINT rental_inventory_id_fkey"
        );
    }
}
