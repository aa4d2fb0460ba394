//! `advance`: moves a loaded Pagila database forward in (simulated) time in
//! one batch transaction, the way the stores would, so that incremental loads
//! have something to pick up. `simulate` is the live, wall-clock workload.
//!
//! One run covers `days` days after the latest rental in the database and, in
//! one transaction:
//! * returns most recent open rentals (UPDATE: the `last_updated` trigger stamps
//!   `last_update`), with a late-fee payment when they come back late;
//! * inserts new rentals (a copy is only rented while it is in the store) and
//!   their payments, creating the monthly payment partitions (with Pagila's
//!   indexes and foreign keys) the new payment dates need;
//! * registers a few new customers (with addresses) and updates a few others.
//!
//! Ids come from the tables' sequences and `last_update` from the column
//! defaults and triggers, as for any application writing to Pagila. The run is
//! deterministic for a seed and a database state. New rows are held in memory:
//! this is for increments, `load` is for bulk data.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::Instant;

use postgres::{Config, Transaction};

use crate::copy::CopyEncoder;
use crate::gen::{self, draw_duration, late_days, person_name, DAY, HOUR};
use crate::load::{connect, describe, BoxError};
use crate::rng::Rng;
use crate::schema;

pub struct AdvanceOptions {
    pub rentals: u64,
    pub days: f64,
    pub seed: u64,
}

struct Item {
    id: i32,
    store: i32,
    rental_days: i16,
    rate_cents: i64,
    /// Unix seconds until which the copy is out (i64::MAX: not returned).
    busy_until: i64,
}

struct NewRental {
    id: i32,
    date: i64,
    inventory_id: i32,
    customer_id: i32,
    return_date: Option<i64>,
    staff_id: i32,
}

struct NewPayment {
    customer_id: i32,
    staff_id: i32,
    rental_id: i32,
    amount_cents: i64,
    date_us: i64,
}

#[derive(Default)]
struct Summary {
    returned: u64,
    rentals: u64,
    no_copy_free: u64,
    payments: u64,
    new_customers: u64,
    updated_customers: u64,
    partitions: Vec<String>,
}

fn epoch(tx: &mut Transaction, sql: &str) -> Result<Option<i64>, BoxError> {
    Ok(tx.query_one(sql, &[])?.get(0))
}

pub fn advance(cfg: &Config, opts: &AdvanceOptions) -> Result<(), BoxError> {
    if !(opts.days.is_finite() && opts.days > 0.0 && opts.days <= 3660.0) {
        return Err("--days must be > 0 and <= 3660".into());
    }
    let started = Instant::now();
    let mut client = connect(cfg)?;
    let mut tx = client.transaction()?;
    // One batch at a time; readers are not blocked.
    tx.batch_execute("LOCK TABLE public.rental IN SHARE ROW EXCLUSIVE MODE")?;

    let t0 = epoch(
        &mut tx,
        "SELECT extract(epoch FROM max(rental_date))::int8 FROM public.rental",
    )?
    .unwrap_or(gen::START);
    let t1 = t0 + (opts.days * DAY as f64) as i64;
    let mut rng = Rng::stream(opts.seed ^ (t0 as u64).rotate_left(17), "simulate");
    let mut sum = Summary::default();

    // The copies, their film's terms, and when each is back in the store.
    let mut items: Vec<Item> = tx
        .query(
            "SELECT i.inventory_id, i.store_id, f.rental_duration, (f.rental_rate * 100)::int8 \
             FROM public.inventory i JOIN public.film f USING (film_id) ORDER BY 1",
            &[],
        )?
        .iter()
        .map(|r| Item {
            id: r.get(0),
            store: r.get(1),
            rental_days: r.get(2),
            rate_cents: r.get(3),
            busy_until: i64::MIN,
        })
        .collect();
    if items.is_empty() {
        return Err("the database has no inventory: load it first".into());
    }
    let index: HashMap<i32, usize> = items.iter().enumerate().map(|(k, it)| (it.id, k)).collect();
    let mut open = Vec::new();
    for r in tx.query(
        "SELECT rental_id, inventory_id, extract(epoch FROM rental_date)::int8, \
         extract(epoch FROM return_date)::int8, customer_id, staff_id \
         FROM public.rental WHERE return_date IS NULL OR return_date > to_timestamp($1)",
        &[&(t0 as f64)],
    )? {
        let (id, inv, date, ret): (i32, i32, i64, Option<i64>) = (r.get(0), r.get(1), r.get(2), r.get(3));
        let k = index[&inv];
        let until = ret.unwrap_or(i64::MAX);
        items[k].busy_until = items[k].busy_until.max(until);
        if ret.is_none() {
            open.push((id, k, date, r.get::<_, i32>(4), r.get::<_, i32>(5)));
        }
    }

    let mut customers: Vec<(i32, i32)> = tx
        .query(
            "SELECT customer_id, store_id FROM public.customer WHERE activebool ORDER BY 1",
            &[],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    if customers.is_empty() {
        return Err("the database has no active customer".into());
    }
    let staff: HashMap<i32, i32> = tx
        .query("SELECT store_id, min(staff_id) FROM public.staff GROUP BY 1", &[])?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let any_staff: i32 = tx.query_one("SELECT min(staff_id) FROM public.staff", &[])?.get(0);
    let staff_of = |store: i32| *staff.get(&store).unwrap_or(&any_staff);

    let mut payments = Vec::new();

    // Returns: an open rental of the last 30 days (older ones are lost) comes
    // back if its drawn return time falls in the period; late ones pay the
    // late fee on return.
    let mut returns: (Vec<i32>, Vec<i64>) = (Vec::new(), Vec::new());
    for (id, k, date, customer_id, staff_id) in open {
        if date < t0 - 30 * DAY {
            continue;
        }
        let ret = return_time(&mut rng, date, items[k].rental_days, t0);
        if ret >= t1 {
            continue;
        }
        items[k].busy_until = ret;
        returns.0.push(id);
        returns.1.push(ret);
        let late = late_days(ret - date, items[k].rental_days);
        if late > 0 {
            payments.push(NewPayment {
                customer_id,
                staff_id,
                rental_id: id,
                amount_cents: late * 100,
                date_us: (ret - rng.range(1, 300)) * 1_000_000 + rng.below(1_000_000) as i64,
            });
        }
    }
    sum.returned = returns.0.len() as u64;

    // New customers (about one per 200 rentals), each with a new address.
    let new_customers = opts.rentals / 200;
    if new_customers > 0 {
        let cities: Vec<i32> = tx
            .query("SELECT city_id FROM public.city ORDER BY 1", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let (mut addr, mut city, mut first, mut last, mut store) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..new_customers {
            let (f, l) = person_name(&mut rng, 0.05);
            addr.push(format!("{} {} Street", rng.range(1, 1999), l));
            city.push(rng.pick(&cities));
            first.push(f);
            last.push(l);
            store.push(if rng.chance(0.544) { 1i32 } else { 2 });
        }
        let create_day = t0.div_euclid(DAY) as i32;
        let rows = tx.query(
            "WITH a AS ( \
               INSERT INTO public.address (address, address2, district, city_id, postal_code, phone) \
               SELECT addr, '', 'Online', city, lpad((1000 + ord * 7919 % 89000)::text, 5, '0'), '5550100' \
               FROM unnest($1::text[], $2::int4[]) WITH ORDINALITY AS u(addr, city, ord) \
               RETURNING address_id), \
             n AS (SELECT address_id, row_number() OVER (ORDER BY address_id) AS ord FROM a) \
             INSERT INTO public.customer (store_id, first_name, last_name, email, address_id, create_date, active) \
             SELECT s, f, l, f || '.' || l || '@sakilacustomer.org', n.address_id, \
                    DATE '1970-01-01' + $6::int4, 1 \
             FROM unnest($3::text[], $4::text[], $5::int4[]) WITH ORDINALITY AS c(f, l, s, ord) \
             JOIN n USING (ord) RETURNING customer_id, store_id",
            &[&addr, &city, &first, &last, &store, &create_day],
        )?;
        for r in rows {
            customers.push((r.get(0), r.get(1)));
        }
        sum.new_customers = new_customers;
    }

    // Some existing customers change their details (the trigger stamps
    // last_update), one in ten of those leaves.
    let updates = (opts.rentals / 100).min(customers.len() as u64);
    let mut changed = HashSet::new();
    let mut leaving = Vec::new();
    for _ in 0..updates {
        let (id, _) = customers[rng.below(customers.len() as u64) as usize];
        if changed.insert(id) && rng.chance(0.1) {
            leaving.push(id);
        }
    }
    let changed: Vec<i32> = changed.into_iter().collect();
    tx.execute(
        "UPDATE public.customer SET email = lower(email) WHERE customer_id = ANY($1)",
        &[&changed],
    )?;
    tx.execute(
        "UPDATE public.customer SET active = 0, activebool = false WHERE customer_id = ANY($1)",
        &[&leaving],
    )?;
    sum.updated_customers = changed.len() as u64;
    let leaving: HashSet<i32> = leaving.into_iter().collect();
    customers.retain(|(id, _)| !leaving.contains(id));

    // New rentals, spread evenly over the period.
    let mut by_store: HashMap<i32, Vec<usize>> = HashMap::new();
    for (k, it) in items.iter().enumerate() {
        by_store.entry(it.store).or_default().push(k);
    }
    let mut stores: Vec<i32> = by_store.keys().copied().collect();
    stores.sort_unstable();
    let ids: Vec<i64> = tx
        .query(
            "SELECT nextval('public.rental_rental_id_seq') FROM generate_series(1, $1::int8)",
            &[&(opts.rentals as i64)],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let span = (t1 - t0 - 1).max(1) as u128;
    let mut rentals = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let u = u128::from(rng.next_u64() >> 32);
        let offset = (((i as u128) << 32) + u) * span / ((ids.len() as u128) << 32);
        let t = t0 + 1 + offset as i64;
        let (customer_id, home) = customers[rng.below(customers.len() as u64) as usize];
        let store = if rng.chance(0.85) && by_store.contains_key(&home) {
            home
        } else {
            stores[rng.below(stores.len() as u64) as usize]
        };
        let Some(k) = free_copy(&mut rng, &items, &by_store[&store], t)
            .or_else(|| stores.iter().find_map(|s| free_copy(&mut rng, &items, &by_store[s], t)))
        else {
            sum.no_copy_free += 1;
            continue;
        };
        let duration = draw_duration(&mut rng, items[k].rental_days);
        let return_date = Some(t + duration).filter(|&r| r < t1);
        items[k].busy_until = return_date.unwrap_or(i64::MAX);
        let staff_id = staff_of(items[k].store);
        let rental_id = *id as i32;
        let late = return_date.map_or(0, |_| late_days(duration, items[k].rental_days));
        let at = match return_date {
            Some(r) if late > 0 => r - rng.range(1, 300),
            _ => t + rng.range(0, 600).min(duration - 1),
        };
        payments.push(NewPayment {
            customer_id,
            staff_id,
            rental_id,
            amount_cents: items[k].rate_cents + late * 100,
            date_us: at * 1_000_000 + rng.below(1_000_000) as i64,
        });
        rentals.push(NewRental {
            id: rental_id,
            date: t,
            inventory_id: items[k].id,
            customer_id,
            return_date,
            staff_id,
        });
    }
    sum.rentals = rentals.len() as u64;
    sum.payments = payments.len() as u64;

    // Partitions for the new payment dates.
    if let (Some(lo), Some(hi)) = (
        payments.iter().map(|p| p.date_us.div_euclid(1_000_000)).min(),
        payments.iter().map(|p| p.date_us.div_euclid(1_000_000)).max(),
    ) {
        let existing: HashSet<String> = tx
            .query(
                "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = 'public.payment'::regclass",
                &[],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let missing: Vec<_> = gen::partitions_between(lo, hi + 1)
            .into_iter()
            .filter(|(name, _, _)| !existing.contains(name))
            .collect();
        let fks = schema::partition_foreign_keys(&missing);
        for stmt in schema::partitions_ddl_for(&missing)
            .into_iter()
            .chain(schema::partition_indexes_for(&missing))
            .chain(fks.iter().map(|fk| fk.add_not_valid.clone()))
            .chain(fks.iter().map(|fk| fk.validate()))
        {
            tx.batch_execute(&stmt)?;
        }
        sum.partitions = missing.into_iter().map(|p| p.0).collect();
    }

    tx.execute(
        "UPDATE public.rental r SET return_date = to_timestamp(v.ret) \
         FROM unnest($1::int4[], $2::int8[]) AS v(id, ret) WHERE r.rental_id = v.id",
        &[&returns.0, &returns.1],
    )?;
    copy_rows(
        &mut tx,
        "COPY public.rental (rental_id, rental_date, inventory_id, customer_id, return_date, staff_id) \
         FROM STDIN (FORMAT binary)",
        |e| {
            for r in &rentals {
                e.row(6)?;
                e.i32(r.id);
                e.timestamptz(r.date, 0);
                e.i32(r.inventory_id);
                e.i32(r.customer_id);
                match r.return_date {
                    Some(t) => e.timestamptz(t, 0),
                    None => e.null(),
                }
                e.i32(r.staff_id);
            }
            Ok(())
        },
    )?;
    copy_rows(
        &mut tx,
        "COPY public.payment (customer_id, staff_id, rental_id, amount, payment_date) \
         FROM STDIN (FORMAT binary)",
        |e| {
            for p in &payments {
                e.row(5)?;
                e.i32(p.customer_id);
                e.i32(p.staff_id);
                e.i32(p.rental_id);
                e.numeric_cents(p.amount_cents);
                e.timestamptz(0, p.date_us);
            }
            Ok(())
        },
    )?;
    tx.commit()?;

    println!(
        "pagila-gen advance: {} .. {} UTC on {} in {:.2}s",
        fmt_ts(t0),
        fmt_ts(t1),
        describe(cfg),
        started.elapsed().as_secs_f64()
    );
    println!("  rentals returned      {:>10}", sum.returned);
    println!("  new rentals           {:>10}", sum.rentals);
    if sum.no_copy_free > 0 {
        println!("  no copy free          {:>10}", sum.no_copy_free);
    }
    println!("  new payments          {:>10}", sum.payments);
    println!("  new customers         {:>10}", sum.new_customers);
    println!("  updated customers     {:>10}", sum.updated_customers);
    if !sum.partitions.is_empty() {
        println!("  new partitions        {}", sum.partitions.join(", "));
    }
    Ok(())
}

/// A copy among `items[candidates]` that is in the store at `t`.
fn free_copy(rng: &mut Rng, items: &[Item], candidates: &[usize], t: i64) -> Option<usize> {
    for _ in 0..24 {
        let k = candidates[rng.below(candidates.len() as u64) as usize];
        if items[k].busy_until <= t {
            return Some(k);
        }
    }
    let start = rng.below(candidates.len() as u64) as usize;
    (0..candidates.len())
        .map(|j| candidates[(start + j) % candidates.len()])
        .find(|&k| items[k].busy_until <= t)
}

fn copy_rows(
    tx: &mut Transaction,
    sql: &str,
    write: impl FnOnce(&mut gen::Enc) -> std::io::Result<()>,
) -> Result<u64, BoxError> {
    let mut writer = tx.copy_in(sql)?;
    {
        let out: &mut dyn Write = &mut writer;
        let mut enc = CopyEncoder::new(out);
        write(&mut enc)?;
        enc.finish()?;
    }
    Ok(writer.finish()?)
}

/// "YYYY-MM-DD HH:MM" of a Unix time.
fn fmt_ts(unix: i64) -> String {
    let (y, m) = gen::year_month(unix);
    let day_start = unix.div_euclid(DAY) * DAY;
    // Day of month: days since the first of the month.
    let first = (0..31)
        .map(|d| day_start - d * DAY)
        .take_while(|&t| gen::year_month(t) == (y, m))
        .count();
    let secs = unix - day_start;
    format!("{y:04}-{m:02}-{first:02} {:02}:{:02}", secs / HOUR, secs % HOUR / 60)
}

/// When a rental made at `date` and still open at `t0` comes back (seconds,
/// after `t0`). A duration is drawn as for any rental; if the return it gives
/// already lies before `t0`, the rental is overdue and comes back after an
/// exponential wait (a third of the overdue rentals return per day). So the
/// returns of a period are about those that fall due in it, whatever its
/// length: a short `advance` returns few.
fn return_time(rng: &mut Rng, date: i64, rental_days: i16, t0: i64) -> i64 {
    let due = date + draw_duration(rng, rental_days);
    if due > t0 {
        return due;
    }
    let wait = -(1.0 - rng.unit()).ln() * 3.0 * DAY as f64;
    t0 + 1 + wait as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format() {
        assert_eq!(fmt_ts(gen::START), "2022-01-21 00:00");
        assert_eq!(fmt_ts(1_658_707_200 + 13 * HOUR + 5 * 60), "2022-07-25 13:05");
        assert_eq!(fmt_ts(951_782_400), "2000-02-29 00:00");
    }

    #[test]
    fn free_copy_only_returns_copies_in_store() {
        let item = |id, busy_until| Item {
            id,
            store: 1,
            rental_days: 3,
            rate_cents: 99,
            busy_until,
        };
        let items = vec![item(1, 100), item(2, i64::MAX), item(3, 50)];
        let mut rng = Rng::new(1);
        for _ in 0..100 {
            let k = free_copy(&mut rng, &items, &[0, 1, 2], 60).unwrap();
            assert_eq!(items[k].id, 3);
        }
        assert!(free_copy(&mut rng, &items, &[0, 1, 2], 10).is_none());
    }

    #[test]
    fn returns_follow_the_period() {
        // 10,000 rentals made over the 4 days before t0, all still open.
        let t0 = gen::START + 100 * DAY;
        let mut rng = Rng::new(7);
        let dates: Vec<i64> = (0..10_000).map(|i| t0 - 4 * DAY + i * (4 * DAY / 10_000)).collect();
        let back_within = |rng: &mut Rng, days: f64| {
            let t1 = t0 + (days * DAY as f64) as i64;
            dates
                .iter()
                .map(|&d| return_time(rng, d, 5, t0))
                .inspect(|&ret| assert!(ret > t0))
                .filter(|&ret| ret < t1)
                .count()
        };
        let short = back_within(&mut rng, 0.1);
        let long = back_within(&mut rng, 30.0);
        // A 0.1-day period returns a few percent of them, a month nearly all.
        assert!((50..1_000).contains(&short), "{short}");
        assert!(long > 9_900, "{long}");
    }
}
