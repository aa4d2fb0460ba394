//! pagila-gen: a deterministic, scalable generator of Pagila-shaped data,
//! loaded into PostgreSQL through binary COPY.

mod copy;
mod gen;
mod load;
mod rng;
mod schema;
mod simulate;
mod words;

use std::process::ExitCode;

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
    /// libpq connection string ("host=… dbname=…") or postgresql:// URI. Without
    /// it, PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE are used.
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
    /// Move a loaded database forward in time: return rentals, add rentals,
    /// payments and customers, update customers (one transaction).
    Simulate {
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

/// The connection configuration: --dsn, or the PG* environment variables.
fn config(target: &Target) -> Result<Config, String> {
    if let Some(dsn) = &target.dsn {
        // Never echo the DSN: it may hold a password.
        return dsn.parse::<Config>().map_err(|e| format!("invalid --dsn: {e}"));
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut cfg = Config::new();
    cfg.host(&env("PGHOST").unwrap_or_else(|| "localhost".into()));
    if let Some(port) = env("PGPORT") {
        cfg.port(port.parse().map_err(|_| format!("invalid PGPORT {port:?}"))?);
    }
    let user = env("PGUSER")
        .or_else(|| env("USER"))
        .unwrap_or_else(|| "postgres".into());
    cfg.dbname(&env("PGDATABASE").unwrap_or_else(|| user.clone()));
    cfg.user(&user);
    if let Some(pw) = env("PGPASSWORD") {
        cfg.password(pw);
    }
    cfg.application_name("pagila-gen");
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
            rentals,
            days,
            seed,
        } => {
            let opts = simulate::SimOptions { rentals, days, seed };
            simulate::simulate(&config(&target)?, &opts)?;
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
