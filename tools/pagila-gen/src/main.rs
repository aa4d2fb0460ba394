//! pagila-gen: a deterministic, scalable generator of Pagila-shaped data,
//! loaded into PostgreSQL through binary COPY.

mod advance;
mod copy;
mod gen;
mod load;
mod rng;
mod schema;
mod simulate;
mod words;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use postgres::Config;

#[derive(Parser)]
#[command(
    version,
    about = "Generate Pagila-shaped data at any scale and load it into PostgreSQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Target {
    /// libpq connection string ("host=… dbname=…") or postgresql:// URI. What it
    /// leaves out comes from PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE, as
    /// with libpq (a password is best given there, not on the command line).
    #[arg(long)]
    dsn: Option<String>,
}

#[derive(Args)]
struct Shape {
    /// Scale factor: 1 gives the row counts of the real Pagila.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Seed of the generator: the same seed and scale give the same rows.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Create the Pagila schema and load generated data.
    Load {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        shape: Shape,
        /// Drop the Pagila tables, views, functions and types first if they exist.
        #[arg(long)]
        drop_existing: bool,
    },
    /// Compare a loaded database with the expected row counts and check the data rules.
    Check {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        shape: Shape,
        /// Only check the data rules (for a database `simulate` has moved on).
        #[arg(long)]
        no_counts: bool,
    },
    /// Run the stores' live workload against a loaded database (small transactions at a rate)
    ///
    /// Runs until --duration, --events or Ctrl-C / SIGTERM.
    ///
    /// One business event per transaction, timestamps from the wall clock:
    /// new rentals (of copies in the store, to active customers, by staff of
    /// the copy's store), returns (each with its payment: rental_rate plus late
    /// fee, dated at the return), new customers (with a new address), customer
    /// address changes (new or existing address), customer active flag
    /// changes, film price changes, staff transfers, store manager changes and
    /// --delete-rate deleted rentals (payments first). INSERTs set last_update
    /// = now(); Pagila's triggers set it on UPDATE. The payment partition of
    /// the current month is created when missing. Ctrl-C or SIGTERM stops
    /// between transactions, prints the summary and exits 0 (a second one
    /// exits at once).
    ///
    /// Mix: 44% rentals, 44% returns, 3% new customers, 4% address changes, 2%
    /// active flag changes, 2% price changes, 0.6% staff transfers, 0.4%
    /// manager changes, all scaled by (1 - delete rate).
    #[command(verbatim_doc_comment)]
    Simulate {
        #[command(flatten)]
        target: Target,
        /// Events per time unit: 50/s, 3000/min, 100/h (a bare number is per
        /// second); 0 = as fast as possible. Default 10/s, or 0 with --events.
        #[arg(long, value_parser = simulate::parse_rate)]
        rate: Option<f64>,
        /// Stop after this long: 60s, 2m, 1h30m, 500ms (a bare number is
        /// seconds). Default: run until Ctrl-C / SIGTERM.
        #[arg(long, value_parser = simulate::parse_duration)]
        duration: Option<Duration>,
        /// Stop after exactly N events; reproducible for a seed and database
        /// state (timestamps aside) and unpaced unless --rate is given.
        #[arg(long)]
        events: Option<u64>,
        /// Seed of the event choices.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Share of events that delete a rental and its payments (0..1).
        #[arg(long, default_value_t = 0.01)]
        delete_rate: f64,
        /// No progress lines (every 5 s), only the start line and the summary.
        #[arg(long)]
        quiet: bool,
    },
    /// Move a loaded database forward in simulated time in one batch
    /// transaction (after its latest rental): return rentals, add rentals,
    /// payments and customers, update customers.
    Advance {
        #[command(flatten)]
        target: Target,
        /// New rentals to add.
        #[arg(long, default_value_t = 1000)]
        rentals: u64,
        /// Length of the simulated period, after the latest rental.
        #[arg(long, default_value_t = 1.0)]
        days: f64,
        /// Seed (combined with the database's latest rental date).
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Print the row counts a scale factor gives, without touching a database.
    Plan {
        #[command(flatten)]
        shape: Shape,
    },
}

/// The connection configuration: --dsn, with what it leaves out taken from the PG*
/// environment variables, as libpq does.
fn config(target: &Target) -> Result<Config, String> {
    config_from(target.dsn.as_deref(), &|k| {
        std::env::var(k).ok().filter(|v| !v.is_empty())
    })
}

fn config_from(dsn: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
    let mut cfg = match dsn {
        // Never echo the DSN: it may hold a password.
        Some(dsn) => dsn.parse::<Config>().map_err(|e| format!("invalid --dsn: {e}"))?,
        None => Config::new(),
    };
    if cfg.get_hosts().is_empty() {
        cfg.host(&env("PGHOST").unwrap_or_else(|| "localhost".into()));
    }
    if cfg.get_ports().is_empty() {
        if let Some(port) = env("PGPORT") {
            cfg.port(port.parse().map_err(|_| format!("invalid PGPORT {port:?}"))?);
        }
    }
    if cfg.get_user().is_none() {
        let user = env("PGUSER")
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "postgres".into());
        cfg.user(&user);
    }
    if cfg.get_dbname().is_none() {
        let db = env("PGDATABASE").unwrap_or_else(|| cfg.get_user().unwrap_or("postgres").to_string());
        cfg.dbname(&db);
    }
    if cfg.get_password().is_none() {
        if let Some(pw) = env("PGPASSWORD") {
            cfg.password(pw);
        }
    }
    if cfg.get_application_name().is_none() {
        cfg.application_name("pagila-gen");
    }
    Ok(cfg)
}

fn run(cli: Cli) -> Result<ExitCode, load::BoxError> {
    match cli.command {
        Command::Load {
            target,
            shape,
            drop_existing,
        } => {
            let plan = gen::Plan::new(shape.scale, shape.seed)?;
            load::load(&config(&target)?, &plan, drop_existing)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            target,
            shape,
            no_counts,
        } => {
            let plan = gen::Plan::new(shape.scale, shape.seed)?;
            let problems = load::check(&config(&target)?, (!no_counts).then_some(&plan))?;
            if problems == 0 {
                println!("check: ok");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("check: {problems} problem(s)");
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Simulate {
            target,
            rate,
            duration,
            events,
            seed,
            delete_rate,
            quiet,
        } => {
            let opts = simulate::LiveOptions {
                rate: rate.unwrap_or(if events.is_some() { 0.0 } else { 10.0 }),
                duration,
                events,
                seed,
                delete_rate,
                quiet,
            };
            simulate::simulate(&config(&target)?, &opts)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Advance {
            target,
            rentals,
            days,
            seed,
        } => {
            let opts = advance::AdvanceOptions { rentals, days, seed };
            advance::advance(&config(&target)?, &opts)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { shape } => {
            let plan = gen::Plan::new(shape.scale, shape.seed)?;
            for (table, rows) in plan.counts() {
                println!("{table:<16}{rows:>12}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pagila-gen: {}", load::full_error(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod config_tests {
    use super::config_from;

    #[test]
    fn the_environment_fills_what_the_dsn_leaves_out() {
        let env = |k: &str| match k {
            "PGHOST" => Some("envhost".to_string()),
            "PGPORT" => Some("6543".to_string()),
            "PGUSER" => Some("envuser".to_string()),
            "PGPASSWORD" => Some("envpw".to_string()),
            _ => None,
        };
        let c = config_from(Some("host=127.0.0.1 dbname=shop"), &env).unwrap();
        assert_eq!(format!("{:?}", c.get_hosts()), "[Tcp(\"127.0.0.1\")]");
        assert_eq!(
            (c.get_ports(), c.get_user(), c.get_dbname()),
            (&[6543][..], Some("envuser"), Some("shop"))
        );
        assert_eq!(c.get_password(), Some(&b"envpw"[..]));
        // the DSN wins over the environment
        let c = config_from(Some("user=u password=p port=1"), &env).unwrap();
        assert_eq!(
            (c.get_ports(), c.get_user(), c.get_password()),
            (&[1][..], Some("u"), Some(&b"p"[..]))
        );
        assert_eq!(format!("{:?}", c.get_hosts()), "[Tcp(\"envhost\")]");
        assert_eq!(c.get_dbname(), Some("u"));
        // no DSN: the environment alone
        let c = config_from(None, &env).unwrap();
        assert_eq!((c.get_user(), c.get_dbname()), (Some("envuser"), Some("envuser")));
        assert!(config_from(Some("host='unterminated"), &env)
            .unwrap_err()
            .starts_with("invalid --dsn"));
    }
}
