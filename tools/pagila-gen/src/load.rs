//! Loading into PostgreSQL: schema, binary COPY of every table, then keys,
//! indexes, foreign keys, triggers, views, sequences and statistics.

use std::error::Error;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use postgres::{Client, Config, NoTls};

use crate::copy::CopyEncoder;
use crate::gen::{self, Plan, TableSpec, World};
use crate::schema;

pub type BoxError = Box<dyn Error + Send + Sync>;

/// An error with its chain of causes (postgres::Error only says "db error"
/// and keeps the server's message in its source).
pub fn full_error(e: &(dyn Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s += &format!(": {c}");
        cur = c.source();
    }
    s
}

/// "host:port/dbname" of a configuration, without user or password.
pub fn describe(cfg: &Config) -> String {
    let host = cfg
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(s) => s.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", cfg.get_dbname().unwrap_or("(default)"))
}

pub fn connect(cfg: &Config) -> Result<Client, BoxError> {
    let mut client = cfg
        .connect(NoTls)
        .map_err(|e| format!("cannot connect to {}: {}", describe(cfg), full_error(&e)))?;
    client.batch_execute(
        "SET synchronous_commit = off; SET maintenance_work_mem = '256MB'; SET work_mem = '128MB'; SET client_min_messages = warning",
    )?;
    Ok(client)
}

struct Clock(Instant);

impl Clock {
    fn log(&self, what: &str, rows: Option<u64>, took: f64) {
        let rows = rows.map(|r| format!("{r:>12} rows")).unwrap_or_default();
        println!(
            "[{:>8.2}s] {what:<26}{rows:>17} {took:>9.2}s",
            self.0.elapsed().as_secs_f64()
        );
        let _ = std::io::stdout().flush();
    }
}

/// Streams one table through binary COPY; returns the rows the server stored.
fn copy_table(client: &mut Client, spec: &TableSpec, world: &World) -> Result<u64, BoxError> {
    // Partitioned tables cannot be loaded with FREEZE; the others are truncated
    // in the loading transaction so that COPY can write frozen rows.
    let freeze = spec.name != "payment";
    let mut tx = client.transaction()?;
    if freeze {
        tx.batch_execute(&format!("TRUNCATE public.{}", spec.name))?;
    }
    let sql = format!(
        "COPY public.{} ({}) FROM STDIN (FORMAT binary{})",
        spec.name,
        spec.columns,
        if freeze { ", FREEZE" } else { "" }
    );
    let mut writer = tx.copy_in(sql.as_str())?;
    let generated = {
        let out: &mut dyn Write = &mut writer;
        let mut enc = CopyEncoder::new(out);
        (spec.write)(world, &mut enc)?;
        enc.finish()?.1
    };
    let stored = writer.finish()?;
    tx.commit()?;
    if stored != generated {
        return Err(format!("{}: generated {generated} rows, server stored {stored}", spec.name).into());
    }
    Ok(stored)
}

/// Runs independent statements on the given connections in parallel, biggest
/// (listed first) first.
fn run_parallel(clients: &mut [Client], stmts: &[String]) -> Result<(), BoxError> {
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|s| {
        for client in clients.iter_mut() {
            let (next, failure) = (&next, &failure);
            s.spawn(move || loop {
                if failure.lock().unwrap().is_some() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(stmt) = stmts.get(i) else { return };
                if let Err(e) = client.batch_execute(stmt) {
                    let first_line = stmt.lines().next().unwrap_or_default();
                    *failure.lock().unwrap() = Some(format!("{first_line}: {}", full_error(&e)));
                    return;
                }
            });
        }
    });
    match failure.into_inner().unwrap() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Puts the statements about the big tables first.
fn biggest_first(mut stmts: Vec<String>) -> Vec<String> {
    let weight = |s: &str| {
        if s.contains("payment") {
            0
        } else if s.contains("rental") {
            1
        } else {
            2
        }
    };
    stmts.sort_by_key(|s| weight(s));
    stmts
}

fn existing_objects(client: &mut Client) -> Result<Vec<String>, BoxError> {
    let names: Vec<String> = schema::TABLES.iter().map(|t| t.to_string()).collect();
    let rows = client.query(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relname = ANY($1) \
         UNION ALL SELECT t.typname::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         WHERE n.nspname = 'public' AND t.typname IN ('mpaa_rating', 'year') ORDER BY 1",
        &[&names],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub fn load(cfg: &Config, plan: &Plan, drop_existing: bool) -> Result<(), BoxError> {
    let clock = Clock(Instant::now());
    println!(
        "pagila-gen: loading scale {} (seed {}) into {}",
        plan.scale,
        plan.seed,
        describe(cfg)
    );
    let mut admin = connect(cfg)?;

    let t = Instant::now();
    let existing = existing_objects(&mut admin)?;
    if !existing.is_empty() {
        if !drop_existing {
            return Err(format!(
                "the database already has Pagila objects ({}); pass --drop-existing to replace them",
                existing.join(", ")
            )
            .into());
        }
        admin.batch_execute(&schema::drop_sql())?;
        clock.log("drop existing", None, t.elapsed().as_secs_f64());
    }

    let t = Instant::now();
    let mut tx = admin.transaction()?;
    tx.batch_execute(schema::SESSION)?;
    for stmt in schema::section("pre").into_iter().chain(schema::partitions_ddl()) {
        tx.batch_execute(&stmt)?;
    }
    tx.commit()?;
    clock.log("schema", None, t.elapsed().as_secs_f64());

    let t = Instant::now();
    let world = World::new(plan);
    clock.log("prepare catalogue", None, t.elapsed().as_secs_f64());

    let specs = gen::tables();
    let (big, small): (Vec<&TableSpec>, Vec<&TableSpec>) =
        specs.iter().partition(|s| s.name == "rental" || s.name == "payment");
    for spec in small {
        let t = Instant::now();
        let rows = copy_table(&mut admin, spec, &world)?;
        clock.log(spec.name, Some(rows), t.elapsed().as_secs_f64());
    }

    // rental and payment stream in parallel, each on its own connection; both
    // replay the same deterministic simulation.
    let mut workers = vec![connect(cfg)?, connect(cfg)?];
    let results: Vec<Result<u64, BoxError>> = std::thread::scope(|s| {
        let handles: Vec<_> = big
            .iter()
            .zip(workers.iter_mut())
            .map(|(spec, client)| {
                let world = &world;
                let clock = &clock;
                s.spawn(move || {
                    let t = Instant::now();
                    let rows = copy_table(client, spec, world)?;
                    clock.log(spec.name, Some(rows), t.elapsed().as_secs_f64());
                    Ok(rows)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in results {
        r?;
    }

    let t = Instant::now();
    let keys = biggest_first(
        schema::section("keys")
            .into_iter()
            .chain(schema::partition_indexes())
            .collect(),
    );
    run_parallel(&mut workers, &keys)?;
    clock.log("primary keys, indexes", None, t.elapsed().as_secs_f64());

    let t = Instant::now();
    let analyze = biggest_first(schema::TABLES.iter().map(|t| format!("ANALYZE public.{t}")).collect());
    run_parallel(&mut workers, &analyze)?;
    clock.log("analyze", None, t.elapsed().as_secs_f64());

    let t = Instant::now();
    let fks = schema::foreign_keys();
    let mut tx = admin.transaction()?;
    for fk in &fks {
        tx.batch_execute(&fk.add_not_valid)?;
    }
    tx.commit()?;
    // With statistics in place and the referenced keys indexed, a nested-loop
    // anti join over the primary key index checks a big table several times
    // faster than the hash join the planner would pick.
    let validate = biggest_first(
        fks.iter()
            .map(|fk| format!("SET enable_hashjoin = off; {}; RESET enable_hashjoin", fk.validate()))
            .collect(),
    );
    run_parallel(&mut workers, &validate)?;
    clock.log("foreign keys", None, t.elapsed().as_secs_f64());

    let t = Instant::now();
    let mut tx = admin.transaction()?;
    for stmt in schema::section("triggers").into_iter().chain(schema::section("views")) {
        tx.batch_execute(&stmt)?;
    }
    tx.batch_execute(&schema::setval_sql())?;
    tx.commit()?;
    clock.log("triggers, views, sequences", None, t.elapsed().as_secs_f64());

    println!("pagila-gen: done in {:.2}s", clock.0.elapsed().as_secs_f64());
    Ok(())
}

/// Compares the database with the plan and checks data rules that Postgres
/// constraints do not express. Returns the number of problems.
pub fn check(cfg: &Config, plan: Option<&Plan>) -> Result<usize, BoxError> {
    let mut client = connect(cfg)?;
    let mut problems = 0;
    if plan.is_some() {
        println!("{:<16}{:>12}{:>12}", "table", "expected", "actual");
    }
    for (table, expected) in plan.map(Plan::counts).unwrap_or_default() {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM public.{table}"), &[])?
            .get(0);
        let flag = if n as u64 == expected { "" } else { "  MISMATCH" };
        problems += usize::from(!flag.is_empty());
        println!("{table:<16}{expected:>12}{n:>12}{flag}");
    }
    let rules = [
        (
            "constraints not validated",
            "SELECT count(*) FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND NOT convalidated",
        ),
        (
            "rentals returned before rented",
            "SELECT count(*) FROM public.rental WHERE return_date <= rental_date",
        ),
        (
            "rentals with return_date NULL (info)",
            "SELECT -count(*) FROM public.rental WHERE return_date IS NULL",
        ),
        (
            "payments outside rental period",
            "SELECT count(*) FROM public.payment p JOIN public.rental r USING (rental_id) \
             WHERE p.payment_date < r.rental_date OR p.payment_date > coalesce(r.return_date, 'infinity') \
             OR p.customer_id <> r.customer_id",
        ),
        (
            "negative amounts",
            "SELECT count(*) FROM public.payment WHERE amount < 0",
        ),
        (
            "customers/inventory not in store 1 or 2",
            "SELECT (SELECT count(*) FROM public.customer WHERE store_id NOT IN (1, 2)) \
             + (SELECT count(*) FROM public.inventory WHERE store_id NOT IN (1, 2))",
        ),
        (
            "inventory rented twice at once",
            "SELECT count(*) FROM (SELECT inventory_id, rental_date, \
             lag(coalesce(return_date, 'infinity')) OVER (PARTITION BY inventory_id ORDER BY rental_date) AS prev_back \
             FROM public.rental) s WHERE prev_back > rental_date",
        ),
    ];
    for (what, sql) in rules {
        let n: i64 = client.query_one(sql, &[])?.get(0);
        if n < 0 {
            println!("{what:<40}{:>12}", -n);
        } else {
            let flag = if n == 0 { "" } else { "  PROBLEM" };
            problems += usize::from(n != 0);
            println!("{what:<40}{n:>12}{flag}");
        }
    }
    Ok(problems)
}
