//! The data model: how many rows each table gets at a scale factor, and the
//! deterministic generators that encode them as binary COPY rows.
//!
//! Row counts at scale factor 1 are those of the real Pagila dump. The tables of
//! the business (customer, address, inventory, rental, payment) scale linearly,
//! cities with the square root of the scale, and the catalogue (film, actor,
//! category, language, country, store, staff and the film links) stays fixed.
//!
//! Time: at every scale the rentals span 2022-01-21 .. 2022-07-24 UTC and the
//! payments (some are paid on return) 2022-01-21 .. 2022-07-31, so the payments
//! fall into the seven monthly partitions `payment_p2022_01` ..
//! `payment_p2022_07` like in Pagila; a larger scale means denser traffic, not a
//! longer history.

use std::io::{self, Write};

use crate::copy::CopyEncoder;
use crate::rng::{Rng, Selector};
use crate::words::*;

/// 2022-01-21 00:00:00 UTC: first possible rental and payment.
pub const START: i64 = 1_642_723_200;
/// 2022-07-25 00:00:00 UTC: end (exclusive) of rental dates.
pub const RENTAL_END: i64 = 1_658_707_200;
/// 2022-08-01 00:00:00 UTC: end (exclusive) of payment dates. With these
/// bounds the monthly payment counts at scale 1 come close to the real
/// partitions' (723 in January, 2,300 to 2,700 in the other months).
pub const END: i64 = 1_659_312_000;
/// `last_update` of the reference tables: 2021-12-31 12:00:00 UTC.
const REF_UPDATE: i64 = 1_640_952_000;
/// Customers were created during 2021 (days since 1970-01-01).
const CUSTOMER_FIRST_DAY: i32 = 18_628;
const CUSTOMER_LAST_DAY: i32 = 18_992;
pub const DAY: i64 = 86_400;
pub const HOUR: i64 = 3_600;

/// Row counts of the real Pagila dump (counted in pagila-data.sql).
pub mod base {
    pub const ACTOR: u64 = 200;
    pub const CATEGORY: u64 = 16;
    pub const COUNTRY: u64 = 109;
    pub const CITY: u64 = 600;
    /// Four addresses of stores and staff plus one per customer.
    pub const ADDRESS: u64 = 603;
    pub const LANGUAGE: u64 = 6;
    pub const FILM: u64 = 1000;
    pub const FILM_ACTOR: u64 = 5462;
    pub const FILM_CATEGORY: u64 = 2367;
    pub const STORE: u64 = 500;
    pub const STAFF: u64 = 1500;
    pub const CUSTOMER: u64 = 599;
    pub const INVENTORY: u64 = 4581;
    pub const RENTAL: u64 = 16044;
    pub const PAYMENT: u64 = 16049;
    /// Rentals with `return_date IS NULL`.
    pub const UNRETURNED: u64 = 183;
}

/// The number of rows of every table at one scale factor and seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub scale: f64,
    pub seed: u64,
    pub actor: u64,
    pub category: u64,
    pub country: u64,
    pub city: u64,
    pub address: u64,
    pub language: u64,
    pub film: u64,
    pub film_actor: u64,
    pub film_category: u64,
    pub store: u64,
    pub staff: u64,
    pub customer: u64,
    pub inventory: u64,
    pub rental: u64,
    pub payment: u64,
    pub unreturned: u64,
}

/// The largest scale whose ids still fit `integer` columns comfortably.
pub const MAX_SCALE: f64 = 50_000.0;

fn scaled(base: u64, scale: f64, min: u64) -> u64 {
    ((base as f64 * scale).round() as u64).max(min)
}

impl Plan {
    pub fn new(scale: f64, seed: u64) -> Result<Plan, String> {
        if !(scale.is_finite() && scale > 0.0 && scale <= MAX_SCALE) {
            return Err(format!("--scale must be > 0 and <= {MAX_SCALE}, got {scale}"));
        }
        let customer = scaled(base::CUSTOMER, scale, 1);
        let rental = scaled(base::RENTAL, scale, 1);
        let payment = scaled(base::PAYMENT, scale, 1).max(rental);
        Ok(Plan {
            scale,
            seed,
            actor: base::ACTOR,
            category: base::CATEGORY,
            country: base::COUNTRY,
            city: scaled(base::CITY, scale.sqrt(), 1),
            address: base::ADDRESS - base::CUSTOMER + customer,
            language: base::LANGUAGE,
            film: base::FILM,
            film_actor: base::FILM_ACTOR,
            film_category: base::FILM_CATEGORY,
            store: base::STORE,
            staff: base::STAFF,
            customer,
            inventory: scaled(base::INVENTORY, scale, 2),
            rental,
            payment,
            unreturned: ((base::UNRETURNED as f64 * scale).round() as u64).min(rental),
        })
    }

    /// (table, rows) in load order; `payment` is the partitioned parent.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("language", self.language),
            ("category", self.category),
            ("actor", self.actor),
            ("country", self.country),
            ("city", self.city),
            ("address", self.address),
            ("store", self.store),
            ("staff", self.staff),
            ("customer", self.customer),
            ("film", self.film),
            ("film_actor", self.film_actor),
            ("film_category", self.film_category),
            ("inventory", self.inventory),
            ("rental", self.rental),
            ("payment", self.payment),
        ]
    }

    fn rng(&self, stream: &str) -> Rng {
        Rng::stream(self.seed, stream)
    }
}

/// (year, month) of a Unix time (proleptic Gregorian, UTC).
pub fn year_month(unix: i64) -> (i64, i64) {
    // Howard Hinnant's civil_from_days.
    let z = unix.div_euclid(DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m)
}

/// Monthly partitions of `payment` covering [START, END): (name, from, to) with
/// bounds as UTC timestamps.
pub fn payment_partitions() -> Vec<(String, String, String)> {
    partitions_between(START, END)
}

/// Monthly partitions covering the Unix times [start, end) (end > start).
pub fn partitions_between(start: i64, end: i64) -> Vec<(String, String, String)> {
    let (mut y, mut m) = year_month(start);
    let last = year_month(end - 1);
    let mut out = Vec::new();
    loop {
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        out.push((
            format!("payment_p{y:04}_{m:02}"),
            format!("{y:04}-{m:02}-01 00:00:00+00"),
            format!("{ny:04}-{nm:02}-01 00:00:00+00"),
        ));
        if (y, m) == last {
            return out;
        }
        (y, m) = (ny, nm);
    }
}

// ---------------------------------------------------------------------------
// Catalogue and customers, kept in memory (small even at large scales).

#[derive(Clone, Debug)]
pub struct Film {
    pub title: String,
    pub description: String,
    pub release_year: i32,
    pub language_id: i32,
    pub rental_duration: i16,
    pub rental_rate_cents: i64,
    pub length: i16,
    pub replacement_cost_cents: i64,
    pub rating: &'static str,
    pub special_features: Vec<&'static str>,
}

const RATINGS: [&str; 5] = ["G", "PG", "PG-13", "R", "NC-17"];

fn films(plan: &Plan) -> Vec<Film> {
    let mut rng = plan.rng("film");
    let pairs = (TITLE_FIRST.len() * TITLE_SECOND.len()) as u64;
    let mut pick = Selector::new(plan.film, pairs);
    let mut out = Vec::with_capacity(plan.film as usize);
    for a in TITLE_FIRST {
        for b in TITLE_SECOND {
            if !pick.take(&mut rng) {
                continue;
            }
            let description = format!(
                "A {} {} of a {} And a {} who must {} a {} in {}",
                rng.pick(DESC_ADJ),
                rng.pick(DESC_NOUN),
                rng.pick(DESC_WHO),
                rng.pick(DESC_WHO),
                rng.pick(DESC_VERB),
                rng.pick(DESC_WHO),
                rng.pick(DESC_PLACE),
            );
            let language_id = if rng.chance(0.585) {
                1
            } else {
                rng.range(2, LANGUAGES.len() as i64) as i32
            };
            let mask = rng.range(1, 15);
            let special_features = (0..4)
                .filter(|k| mask & (1 << k) != 0)
                .map(|k| SPECIAL_FEATURES[k])
                .collect();
            out.push(Film {
                title: format!("{a} {b}"),
                description,
                release_year: rng.range(2006, 2024) as i32,
                language_id,
                rental_duration: rng.range(3, 7) as i16,
                rental_rate_cents: [99, 299, 499][rng.below(3) as usize],
                length: rng.range(46, 185) as i16,
                replacement_cost_cents: rng.range(9, 29) * 100 + 99,
                rating: RATINGS[rng.below(RATINGS.len() as u64) as usize],
                special_features,
            });
        }
    }
    out
}

/// A name: upper case from the main lists, or (`intl` share) in its native
/// spelling with non-ASCII letters.
pub fn person_name(rng: &mut Rng, intl: f64) -> (&'static str, &'static str) {
    if rng.chance(intl) {
        (rng.pick(INTL_FIRST_NAMES), rng.pick(INTL_LAST_NAMES))
    } else {
        (rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES))
    }
}

/// Mixed case for staff names ("MARY" -> "Mary"); native spellings stay.
fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut first = true;
    for c in s.chars() {
        if first {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        first = !c.is_alphabetic();
    }
    out
}

#[derive(Clone, Debug)]
pub struct Customer {
    pub store_id: i32,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub active: bool,
    pub create_day: i32,
}

/// Customers in id order (customer_id = index + 1).
struct Customers {
    rng: Rng,
    left: u64,
}

impl Customers {
    fn new(plan: &Plan) -> Customers {
        Customers {
            rng: plan.rng("customer"),
            left: plan.customer,
        }
    }
}

impl Iterator for Customers {
    type Item = Customer;
    fn next(&mut self) -> Option<Customer> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let rng = &mut self.rng;
        let store_id = if rng.chance(0.544) { 1 } else { 2 };
        let (first_name, last_name) = person_name(rng, 0.04);
        Some(Customer {
            store_id,
            first_name,
            last_name,
            active: !rng.chance(0.025),
            create_day: rng.range(CUSTOMER_FIRST_DAY as i64, CUSTOMER_LAST_DAY as i64) as i32,
        })
    }
}

/// Everything the rental simulation needs from the other tables.
pub struct World {
    pub plan: Plan,
    pub films: Vec<Film>,
    /// film_id of inventory_id = index + 1.
    pub inventory_film: Vec<u32>,
    /// store_id (1 or 2) of inventory_id = index + 1.
    pub inventory_store: Vec<u8>,
    /// Inventory ids of store 1 and store 2.
    pub store_items: [Vec<u32>; 2],
    /// store_id of customer_id = index + 1.
    pub customer_store: Vec<u8>,
}

impl World {
    pub fn new(plan: &Plan) -> World {
        let films = films(plan);
        let mut rng = plan.rng("inventory");
        // Most films get 2..8 copies (weights), about 4% none, like Pagila;
        // the copies are spread over exactly `plan.inventory` items.
        let weights: Vec<u64> = (0..films.len())
            .map(|_| if rng.chance(0.042) { 0 } else { rng.range(2, 8) as u64 })
            .collect();
        let total: u64 = weights.iter().sum::<u64>().max(1);
        let mut inventory_film = Vec::with_capacity(plan.inventory as usize);
        let mut inventory_store = Vec::with_capacity(plan.inventory as usize);
        let mut store_items = [Vec::new(), Vec::new()];
        let (mut cum, mut placed) = (0u128, 0u64);
        for (f, w) in weights.iter().enumerate() {
            cum += u128::from(*w);
            let upto = ((cum * u128::from(plan.inventory) + u128::from(total) / 2) / u128::from(total)) as u64;
            while placed < upto {
                let store = rng.below(2) as u8;
                placed += 1;
                inventory_film.push(f as u32 + 1);
                inventory_store.push(store + 1);
                store_items[store as usize].push(placed as u32);
            }
        }
        let customer_store = Customers::new(plan).map(|c| c.store_id as u8).collect();
        World {
            plan: plan.clone(),
            films,
            inventory_film,
            inventory_store,
            store_items,
            customer_store,
        }
    }
}

// ---------------------------------------------------------------------------
// Rentals and payments: a streaming simulation.

#[derive(Clone, Debug, PartialEq)]
pub struct Rental {
    pub rental_id: i32,
    /// Unix seconds.
    pub rental_date: i64,
    pub inventory_id: i32,
    pub customer_id: i32,
    pub return_date: Option<i64>,
    pub staff_id: i32,
    pub last_update: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Payment {
    pub payment_id: i32,
    pub customer_id: i32,
    pub staff_id: i32,
    pub rental_id: i32,
    pub amount_cents: i64,
    /// Unix microseconds.
    pub payment_date_us: i64,
}

/// How long a rental lasts, in seconds, for a film rented for `rental_days`:
/// 55% come back in time, most late ones within three days, a few up to six
/// days late (18 hours .. rental_duration + 6 days).
pub fn draw_duration(rng: &mut Rng, rental_days: i16) -> i64 {
    let rd = i64::from(rental_days) * DAY;
    let r = rng.unit();
    if r < 0.55 {
        rng.range(18 * HOUR, rd)
    } else if r < 0.93 {
        rng.range(rd + 1, rd + 3 * DAY)
    } else {
        rng.range(rd + 3 * DAY + 1, rd + 6 * DAY)
    }
}

/// Whole days late (>= 0) of a rental that lasted `duration` seconds.
pub fn late_days(duration: i64, rental_days: i16) -> i64 {
    ((duration + DAY - 1) / DAY - i64::from(rental_days)).max(0)
}

/// Rentals in rental_date (and rental_id) order, each with its payments.
///
/// * Rental times are spread evenly over [START, RENTAL_END) (one per stratum, so they
///   come out sorted and the stream needs no buffering).
/// * A copy of a film is never rented while it is out: an item is only picked
///   when its previous rental has been returned, which also makes
///   (rental_date, inventory_id, customer_id) unique.
/// * Exactly `plan.unreturned` rentals are never returned: two thirds among the
///   most recent rentals, the rest lost earlier.
/// * Payments: one per rental, paid at the counter (rental time) or, when the
///   film came back late and the return lies inside the period, at the return
///   with the late fee (one dollar per late day). `plan.payment - plan.rental`
///   rentals are paid in two parts (rental fee, then late fee). Every payment
///   lies within its rental period and before END.
pub struct RentalSim<'w> {
    world: &'w World,
    rng: Rng,
    next: u64,
    next_payment_id: i32,
    /// Per inventory item: seconds after START until which it is out
    /// (u32::MAX: never returned).
    busy_until: Vec<u32>,
    lost: Selector,
    recent: Selector,
    recent_from: u64,
    split: Selector,
}

pub struct RentalEvent {
    pub rental: Rental,
    pub payments: [Option<Payment>; 2],
}

impl<'w> RentalSim<'w> {
    pub fn new(world: &'w World) -> RentalSim<'w> {
        let plan = &world.plan;
        let n = plan.rental;
        let recent_unreturned = plan.unreturned * 2 / 3;
        let lost_unreturned = plan.unreturned - recent_unreturned;
        let recent_window = (recent_unreturned * 3).min(n);
        let recent_from = n - recent_window;
        RentalSim {
            world,
            rng: plan.rng("rental"),
            next: 0,
            next_payment_id: 1,
            busy_until: vec![0; world.inventory_film.len()],
            lost: Selector::new(lost_unreturned, recent_from),
            recent: Selector::new(recent_unreturned, recent_window),
            recent_from,
            split: Selector::new(plan.payment - plan.rental, n),
        }
    }

    /// An inventory item of `store` (0 or 1) free at `rel` seconds after START.
    fn free_item(&mut self, store: usize, rel: u32) -> Option<u32> {
        let items = &self.world.store_items[store];
        if items.is_empty() {
            return None;
        }
        for _ in 0..24 {
            let id = items[self.rng.below(items.len() as u64) as usize];
            if self.busy_until[id as usize - 1] <= rel {
                return Some(id);
            }
        }
        let start = self.rng.below(items.len() as u64) as usize;
        (0..items.len())
            .map(|k| items[(start + k) % items.len()])
            .find(|&id| self.busy_until[id as usize - 1] <= rel)
    }

    fn payment(&mut self, rental: &Rental, amount_cents: i64, at: i64) -> Payment {
        let id = self.next_payment_id;
        self.next_payment_id += 1;
        let micros = self.rng.below(1_000_000) as i64;
        Payment {
            payment_id: id,
            customer_id: rental.customer_id,
            staff_id: rental.staff_id,
            rental_id: rental.rental_id,
            amount_cents,
            payment_date_us: at * 1_000_000 + micros,
        }
    }
}

impl Iterator for RentalSim<'_> {
    type Item = RentalEvent;

    fn next(&mut self) -> Option<RentalEvent> {
        let n = self.world.plan.rental;
        if self.next >= n {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let span = (RENTAL_END - START) as u128;
        let u = u128::from(self.rng.next_u64() >> 32);
        let offset = ((u128::from(i) << 32) + u) * span / (u128::from(n) << 32);
        let rel = offset as u32;
        let rental_date = START + i64::from(rel);

        let customer_id = self.rng.below(self.world.customer_store.len() as u64) as usize + 1;
        let home = self.world.customer_store[customer_id - 1] as usize - 1;
        let store = if self.rng.chance(0.85) { home } else { 1 - home };
        let inventory_id = self
            .free_item(store, rel)
            .or_else(|| self.free_item(1 - store, rel))
            // Only when every copy is out (tiny scales): take any item.
            .unwrap_or_else(|| 1 + self.rng.below(self.busy_until.len() as u64) as u32);
        let film = &self.world.films[self.world.inventory_film[inventory_id as usize - 1] as usize - 1];
        let store_id = i32::from(self.world.inventory_store[inventory_id as usize - 1]);
        let rate = film.rental_rate_cents;

        let unreturned = if i < self.recent_from {
            self.lost.take(&mut self.rng)
        } else {
            self.recent.take(&mut self.rng)
        };
        let duration = draw_duration(&mut self.rng, film.rental_duration);
        let return_date = (!unreturned).then_some(rental_date + duration);
        self.busy_until[inventory_id as usize - 1] = match return_date {
            Some(ret) => (ret - START) as u32,
            None => u32::MAX,
        };
        let rental = Rental {
            rental_id: i as i32 + 1,
            rental_date,
            inventory_id: inventory_id as i32,
            customer_id: customer_id as i32,
            return_date,
            staff_id: store_id,
            last_update: return_date.unwrap_or(rental_date),
        };

        let late_days = match return_date {
            Some(_) => late_days(duration, film.rental_duration),
            None => 0,
        };
        // Paid at the counter: a few minutes after the rental started.
        let at_rental = (rental_date + self.rng.range(0, 600)).min(END - 1);
        // Paid on return (late fee): a few minutes before the return is booked,
        // unless the return lies beyond the period.
        let at_return = return_date.map(|ret| ret - self.rng.range(1, 300)).filter(|&t| t < END);
        let split = self.split.take(&mut self.rng);
        let free = self.rng.chance(0.0015);
        let payments = if split {
            let fee = self.payment(&rental, rate, at_rental);
            let late_at = at_return.unwrap_or(at_rental);
            let late = self.payment(&rental, late_days * 100, late_at);
            [Some(fee), Some(late)]
        } else {
            let amount = if free { 0 } else { rate + late_days * 100 };
            let at = match at_return {
                Some(t) if late_days > 0 => t,
                _ => at_rental,
            };
            [Some(self.payment(&rental, amount, at)), None]
        };
        Some(RentalEvent { rental, payments })
    }
}

// ---------------------------------------------------------------------------
// Table writers.

pub type Enc<'a> = CopyEncoder<&'a mut dyn Write>;
type Writer = fn(&World, &mut Enc) -> io::Result<()>;

/// One table to load: name, COPY column list, writer.
pub struct TableSpec {
    pub name: &'static str,
    pub columns: &'static str,
    pub write: Writer,
}

pub fn tables() -> Vec<TableSpec> {
    vec![
        TableSpec {
            name: "language",
            columns: "language_id, name, last_update",
            write: write_language,
        },
        TableSpec {
            name: "category",
            columns: "category_id, name, last_update",
            write: write_category,
        },
        TableSpec {
            name: "actor",
            columns: "actor_id, first_name, last_name, last_update",
            write: write_actor,
        },
        TableSpec {
            name: "country",
            columns: "country_id, country, last_update",
            write: write_country,
        },
        TableSpec {
            name: "city",
            columns: "city_id, city, country_id, last_update",
            write: write_city,
        },
        TableSpec {
            name: "address",
            columns: "address_id, address, address2, district, city_id, postal_code, phone, last_update",
            write: write_address,
        },
        TableSpec {
            name: "store",
            columns: "store_id, manager_staff_id, address_id, last_update",
            write: write_store,
        },
        TableSpec {
            name: "staff",
            columns: "staff_id, first_name, last_name, address_id, email, store_id, active, username, password, last_update, picture",
            write: write_staff,
        },
        TableSpec {
            name: "customer",
            columns: "customer_id, store_id, first_name, last_name, email, address_id, activebool, create_date, last_update, active",
            write: write_customer,
        },
        TableSpec {
            // fulltext is filled by the film_fulltext_trigger, as in Pagila.
            name: "film",
            columns: "film_id, title, description, release_year, language_id, original_language_id, rental_duration, rental_rate, length, replacement_cost, rating, last_update, special_features",
            write: write_film,
        },
        TableSpec {
            name: "film_actor",
            columns: "actor_id, film_id, last_update",
            write: write_film_actor,
        },
        TableSpec {
            name: "film_category",
            columns: "film_id, category_id, last_update",
            write: write_film_category,
        },
        TableSpec {
            name: "inventory",
            columns: "inventory_id, film_id, store_id, last_update",
            write: write_inventory,
        },
        TableSpec {
            name: "rental",
            columns: "rental_id, rental_date, inventory_id, customer_id, return_date, staff_id, last_update",
            write: write_rental,
        },
        TableSpec {
            name: "payment",
            columns: "payment_id, customer_id, staff_id, rental_id, amount, payment_date",
            write: write_payment,
        },
    ]
}

fn write_language(_: &World, e: &mut Enc) -> io::Result<()> {
    for (i, name) in LANGUAGES.iter().enumerate() {
        e.row(3)?;
        e.i32(i as i32 + 1);
        e.text(name);
        e.timestamptz(REF_UPDATE, 0);
    }
    Ok(())
}

fn write_category(_: &World, e: &mut Enc) -> io::Result<()> {
    for (i, name) in CATEGORIES.iter().enumerate() {
        e.row(3)?;
        e.i32(i as i32 + 1);
        e.text(name);
        e.timestamptz(REF_UPDATE, 0);
    }
    Ok(())
}

fn write_actor(w: &World, e: &mut Enc) -> io::Result<()> {
    let mut rng = w.plan.rng("actor");
    for id in 1..=w.plan.actor {
        let (first, last) = person_name(&mut rng, 0.04);
        e.row(4)?;
        e.i32(id as i32);
        e.text(first);
        e.text(last);
        e.timestamptz(REF_UPDATE, 0);
    }
    Ok(())
}

fn write_country(_: &World, e: &mut Enc) -> io::Result<()> {
    for (i, name) in COUNTRIES.iter().enumerate() {
        e.row(3)?;
        e.i32(i as i32 + 1);
        e.text(name);
        e.timestamptz(REF_UPDATE, 0);
    }
    Ok(())
}

/// A capitalised place name of two or three syllables.
pub fn place_name(rng: &mut Rng) -> String {
    let n = if rng.chance(0.3) { 3 } else { 2 };
    let raw: String = (0..n).map(|_| rng.pick(SYLLABLES)).collect();
    title_case(&raw)
}

fn write_city(w: &World, e: &mut Enc) -> io::Result<()> {
    let mut rng = w.plan.rng("city");
    let countries = COUNTRIES.len() as u64;
    for id in 1..=w.plan.city {
        // Every country gets a city first, the rest are spread at random.
        let country = if id <= countries { id } else { 1 + rng.below(countries) };
        let name = place_name(&mut rng);
        e.row(4)?;
        e.i32(id as i32);
        e.text(&name);
        e.i32(country as i32);
        e.timestamptz(REF_UPDATE, 0);
    }
    Ok(())
}

fn write_address(w: &World, e: &mut Enc) -> io::Result<()> {
    let mut rng = w.plan.rng("address");
    // Addresses 1..=4 belong to the head offices (stores 1, 2 and staff 1, 2).
    for id in 1..=w.plan.address {
        let office = id <= 4;
        let street = format!(
            "{} {} {}",
            rng.range(1, 1999),
            place_name(&mut rng),
            rng.pick(STREET_TYPES)
        );
        e.row(8)?;
        e.i32(id as i32);
        e.text(&street);
        if office {
            e.null();
        } else {
            e.text("");
        }
        e.text(rng.pick(DISTRICTS));
        e.i32(1 + rng.below(w.plan.city) as i32);
        if office {
            e.text("");
        } else {
            e.text(&format!("{:05}", rng.range(1000, 99999)));
        }
        if id <= 2 {
            e.text("");
        } else {
            let digits = rng.range(10, 12) as u32;
            e.text(&rng.range(10_i64.pow(digits - 1), 10_i64.pow(digits) - 1).to_string());
        }
        e.timestamptz(REF_UPDATE, 0);
    }
    Ok(())
}

fn write_store(w: &World, e: &mut Enc) -> io::Result<()> {
    let mut rng = w.plan.rng("store");
    // Store ids start at 0 like in Pagila; store n is managed by staff n.
    for id in 0..w.plan.store as i32 {
        let address = match id {
            1 | 2 => id,
            _ => 1 + rng.below(w.plan.address) as i32,
        };
        e.row(4)?;
        e.i32(id);
        e.i32(id);
        e.i32(address);
        e.timestamptz(REF_UPDATE, 0);
    }
    Ok(())
}

/// A small deterministic PNG-like blob for the `picture` column.
fn picture(rng: &mut Rng) -> Vec<u8> {
    let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
    let len = rng.range(32, 96) as usize;
    p.extend((0..len).map(|_| rng.below(256) as u8));
    p
}

fn ascii_lower(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn write_staff(w: &World, e: &mut Enc) -> io::Result<()> {
    let mut rng = w.plan.rng("staff");
    // Staff ids start at 0 like in Pagila; staff 1 and 2 run stores 1 and 2
    // and book every rental and payment.
    for id in 0..w.plan.staff as i32 {
        let (first, last) = person_name(&mut rng, 0.06);
        let (first, last) = (title_case(first), title_case(last));
        let (address, store) = match id {
            1 | 2 => (id + 2, id),
            _ => (
                1 + rng.below(w.plan.address) as i32,
                1 + rng.below(w.plan.store - 1) as i32,
            ),
        };
        let user = format!("{}.{}{}", ascii_lower(&first), ascii_lower(&last), id);
        e.row(11)?;
        e.i32(id);
        e.text(&first);
        e.text(&last);
        e.i32(address);
        e.text(&format!("{user}@sakilastaff.com"));
        e.i32(store);
        e.bool(true);
        e.text(&user);
        // sha1('12345'), the password hash of every Pagila staff member.
        e.text("8cb2237d0679ca88db6464eac60da96345513964");
        e.timestamptz(REF_UPDATE, 0);
        if id <= 2 || rng.chance(0.02) {
            e.bytes(&picture(&mut rng));
        } else {
            e.null();
        }
    }
    Ok(())
}

fn write_customer(w: &World, e: &mut Enc) -> io::Result<()> {
    for (i, c) in Customers::new(&w.plan).enumerate() {
        let id = i as i32 + 1;
        e.row(10)?;
        e.i32(id);
        e.i32(c.store_id);
        e.text(c.first_name);
        e.text(c.last_name);
        e.text(&format!("{}.{}@sakilacustomer.org", c.first_name, c.last_name));
        e.i32(id + 4);
        e.bool(c.active);
        e.date(c.create_day);
        e.timestamptz(REF_UPDATE, 0);
        e.i32(i32::from(c.active));
    }
    Ok(())
}

fn write_film(w: &World, e: &mut Enc) -> io::Result<()> {
    for (i, f) in w.films.iter().enumerate() {
        e.row(13)?;
        e.i32(i as i32 + 1);
        e.text(&f.title);
        e.text(&f.description);
        e.i32(f.release_year);
        e.i32(f.language_id);
        e.null();
        e.i16(f.rental_duration);
        e.numeric_cents(f.rental_rate_cents);
        e.i16(f.length);
        e.numeric_cents(f.replacement_cost_cents);
        e.text(f.rating);
        e.timestamptz(REF_UPDATE, 0);
        e.text_array(&f.special_features);
    }
    Ok(())
}

/// Links every film to one random item and then exactly `total - films` more,
/// chosen uniformly among the remaining (film, item) pairs; returns the sorted
/// item ids per film.
fn links(rng: &mut Rng, films: u64, items: u64, total: u64) -> Vec<Vec<u32>> {
    let mut extra = Selector::new(total.saturating_sub(films), films * (items - 1));
    (0..films)
        .map(|_| {
            let first = 1 + rng.below(items) as u32;
            let mut ids = vec![first];
            for item in (1..=items as u32).filter(|&a| a != first) {
                if extra.take(rng) {
                    ids.push(item);
                }
            }
            ids.sort_unstable();
            ids
        })
        .collect()
}

fn write_film_actor(w: &World, e: &mut Enc) -> io::Result<()> {
    let mut rng = w.plan.rng("film_actor");
    for (f, actors) in links(&mut rng, w.plan.film, w.plan.actor, w.plan.film_actor)
        .iter()
        .enumerate()
    {
        for a in actors {
            e.row(3)?;
            e.i32(*a as i32);
            e.i32(f as i32 + 1);
            e.timestamptz(REF_UPDATE, 0);
        }
    }
    Ok(())
}

fn write_film_category(w: &World, e: &mut Enc) -> io::Result<()> {
    let mut rng = w.plan.rng("film_category");
    let links = links(&mut rng, w.plan.film, w.plan.category, w.plan.film_category);
    for (f, cats) in links.iter().enumerate() {
        for c in cats {
            e.row(3)?;
            e.i32(f as i32 + 1);
            e.i32(*c as i32);
            e.timestamptz(REF_UPDATE, 0);
        }
    }
    Ok(())
}

fn write_inventory(w: &World, e: &mut Enc) -> io::Result<()> {
    for (i, (film, store)) in w.inventory_film.iter().zip(&w.inventory_store).enumerate() {
        e.row(4)?;
        e.i32(i as i32 + 1);
        e.i32(*film as i32);
        e.i32(i32::from(*store));
        e.timestamptz(REF_UPDATE, 0);
    }
    Ok(())
}

fn write_rental(w: &World, e: &mut Enc) -> io::Result<()> {
    for ev in RentalSim::new(w) {
        let r = &ev.rental;
        e.row(7)?;
        e.i32(r.rental_id);
        e.timestamptz(r.rental_date, 0);
        e.i32(r.inventory_id);
        e.i32(r.customer_id);
        match r.return_date {
            Some(t) => e.timestamptz(t, 0),
            None => e.null(),
        }
        e.i32(r.staff_id);
        e.timestamptz(r.last_update, 0);
    }
    Ok(())
}

fn write_payment(w: &World, e: &mut Enc) -> io::Result<()> {
    for ev in RentalSim::new(w) {
        for p in ev.payments.iter().flatten() {
            e.row(6)?;
            e.i32(p.payment_id);
            e.i32(p.customer_id);
            e.i32(p.staff_id);
            e.i32(p.rental_id);
            e.numeric_cents(p.amount_cents);
            e.timestamptz(0, p.payment_date_us);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    /// FNV-1a, to fingerprint generated rows.
    fn fnv(bytes: &[u8], mut h: u64) -> u64 {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
        h
    }
    const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

    fn encode(world: &World, spec: &TableSpec) -> (Vec<u8>, u64) {
        let mut buf = Vec::new();
        let rows = {
            let out: &mut dyn Write = &mut buf;
            let mut enc = CopyEncoder::new(out);
            (spec.write)(world, &mut enc).unwrap();
            enc.finish().unwrap().1
        };
        (buf, rows)
    }

    /// Fingerprint of the first `n` rentals with their payments.
    fn first_rentals_hash(world: &World, n: usize) -> u64 {
        RentalSim::new(world).take(n).fold(FNV0, |h, ev| {
            let r = &ev.rental;
            let mut h = fnv(
                format!(
                    "{} {} {} {} {:?} {} {}",
                    r.rental_id, r.rental_date, r.inventory_id, r.customer_id, r.return_date, r.staff_id, r.last_update
                )
                .as_bytes(),
                h,
            );
            for p in ev.payments.iter().flatten() {
                h = fnv(format!("{p:?}").as_bytes(), h);
            }
            h
        })
    }

    #[test]
    fn same_seed_same_rows() {
        let a = World::new(&Plan::new(1.0, 42).unwrap());
        let b = World::new(&Plan::new(1.0, 42).unwrap());
        let c = World::new(&Plan::new(1.0, 43).unwrap());
        let fixed = ["language", "category", "country"];
        for spec in tables() {
            let (ea, ra) = encode(&a, &spec);
            let (eb, rb) = encode(&b, &spec);
            let (ec, _) = encode(&c, &spec);
            assert_eq!(ra, rb, "{}", spec.name);
            assert!(ea == eb, "{}: same seed gave different rows", spec.name);
            if fixed.contains(&spec.name) {
                assert!(ea == ec, "{}", spec.name);
            } else {
                assert!(ea != ec, "{}: another seed gave the same rows", spec.name);
            }
        }
        assert_eq!(first_rentals_hash(&a, 1000), first_rentals_hash(&b, 1000));
        assert_ne!(first_rentals_hash(&a, 1000), first_rentals_hash(&c, 1000));
    }

    /// The generator must give the same rows on every platform and build: a
    /// change of this fingerprint changes the data of every user.
    #[test]
    fn pinned_fingerprint() {
        let w = World::new(&Plan::new(1.0, 42).unwrap());
        assert_eq!(first_rentals_hash(&w, 1000), PINNED_RENTALS_HASH);
    }
    const PINNED_RENTALS_HASH: u64 = 10_913_281_359_203_797_330;

    /// Row counts of the real dump, counted from its COPY blocks; None (the test
    /// skips, saying so) where ../shared/pagila is absent.
    fn real_counts() -> Option<HashMap<String, u64>> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/pagila/pagila-data.sql");
        let dump = match std::fs::read_to_string(path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("SKIPPED: the real Pagila dump is not at {path} ({e}); compare with it where it is");
                return None;
            }
        };
        let mut counts = HashMap::new();
        let mut current: Option<String> = None;
        for line in dump.lines() {
            if let Some(rest) = line.strip_prefix("COPY public.") {
                let table = rest.split([' ', '(']).next().unwrap();
                // payment_p2022_01 .. _07 are counted as payment.
                let table = if table.starts_with("payment_p") {
                    "payment"
                } else {
                    table
                };
                counts.entry(table.to_string()).or_insert(0);
                current = Some(table.to_string());
            } else if line == "\\." {
                current = None;
            } else if let Some(t) = &current {
                *counts.get_mut(t).unwrap() += 1;
            }
        }
        Some(counts)
    }

    #[test]
    fn scale_one_matches_real_pagila_within_one_percent() {
        let Some(real) = real_counts() else { return };
        let plan = Plan::new(1.0, 42).unwrap();
        assert_eq!(real.len(), plan.counts().len());
        for (table, rows) in plan.counts() {
            let want = real[table] as f64;
            assert!(
                (rows as f64 - want).abs() <= want * 0.01,
                "{table}: plan {rows}, real {want}"
            );
        }
    }

    #[test]
    fn generated_rows_match_plan() {
        for scale in [0.01, 1.0, 2.5] {
            let plan = Plan::new(scale, 7).unwrap();
            let world = World::new(&plan);
            let expected: HashMap<_, _> = plan.counts().into_iter().collect();
            for spec in tables() {
                let (_, rows) = encode(&world, &spec);
                assert_eq!(rows, expected[spec.name], "{} at scale {scale}", spec.name);
            }
        }
    }

    #[test]
    fn counts_scale() {
        let p = Plan::new(100.0, 42).unwrap();
        assert_eq!(p.rental, 1_604_400);
        assert_eq!(p.payment, 1_604_900);
        assert_eq!(p.customer, 59_900);
        assert_eq!(p.address, 59_904);
        assert_eq!(p.inventory, 458_100);
        assert_eq!(p.city, 6_000);
        assert_eq!(p.film, 1000);
        let big = Plan::new(625.0, 42).unwrap();
        assert!(big.rental + big.payment >= 20_000_000);
        assert!(Plan::new(0.0, 1).is_err());
        assert!(Plan::new(f64::NAN, 1).is_err());
        assert!(Plan::new(MAX_SCALE * 2.0, 1).is_err());
    }

    /// The rules the loaded data must follow (Postgres enforces the keys; these
    /// are the ones it cannot).
    fn check_rentals(scale: f64) {
        let plan = Plan::new(scale, 42).unwrap();
        let world = World::new(&plan);
        let mut last_date = i64::MIN;
        let mut keys = HashSet::new();
        let mut out_until: HashMap<i32, i64> = HashMap::new();
        let (mut rentals, mut payments, mut unreturned, mut multi) = (0u64, 0u64, 0u64, 0u64);
        let mut payment_ids = HashSet::new();
        for ev in RentalSim::new(&world) {
            let r = ev.rental;
            rentals += 1;
            assert_eq!(r.rental_id as u64, rentals);
            assert!(r.rental_date >= last_date && (START..RENTAL_END).contains(&r.rental_date));
            last_date = r.rental_date;
            assert!(keys.insert((r.rental_date, r.inventory_id, r.customer_id)));
            assert!(r.customer_id >= 1 && r.customer_id as u64 <= plan.customer);
            assert!(r.inventory_id >= 1 && r.inventory_id as u64 <= plan.inventory);
            assert!(r.staff_id == 1 || r.staff_id == 2);
            // A copy is not rented out again before it came back.
            let prev = out_until.insert(r.inventory_id, r.return_date.unwrap_or(i64::MAX));
            assert!(prev.is_none_or(|t| t <= r.rental_date), "{r:?}");
            match r.return_date {
                Some(t) => assert!(t > r.rental_date),
                None => unreturned += 1,
            }
            let n = ev.payments.iter().flatten().count();
            multi += u64::from(n > 1);
            for p in ev.payments.iter().flatten() {
                payments += 1;
                assert!(payment_ids.insert(p.payment_id));
                assert_eq!((p.rental_id, p.customer_id), (r.rental_id, r.customer_id));
                assert!(p.amount_cents >= 0 && p.amount_cents < 100_000);
                let secs = p.payment_date_us.div_euclid(1_000_000);
                assert!(secs >= r.rental_date && secs < END, "{p:?} {r:?}");
                if let Some(t) = r.return_date {
                    assert!(p.payment_date_us <= t * 1_000_000, "{p:?} {r:?}");
                }
            }
        }
        assert_eq!(rentals, plan.rental);
        assert_eq!(payments, plan.payment);
        assert_eq!(unreturned, plan.unreturned);
        assert_eq!(multi, plan.payment - plan.rental);
    }

    #[test]
    fn rentals_follow_the_rules() {
        check_rentals(1.0);
        check_rentals(0.02);
        check_rentals(3.0);
    }

    #[test]
    fn stores_and_names() {
        let plan = Plan::new(1.0, 42).unwrap();
        let world = World::new(&plan);
        assert!(world.customer_store.iter().all(|&s| s == 1 || s == 2));
        assert!(world.inventory_store.iter().all(|&s| s == 1 || s == 2));
        let names: String = Customers::new(&plan)
            .map(|c| format!("{} {} ", c.first_name, c.last_name))
            .collect();
        for ch in ['ß', 'ı', 'É'] {
            assert!(names.contains(ch), "no customer name with {ch}");
        }
        let titles: HashSet<_> = world.films.iter().map(|f| &f.title).collect();
        assert_eq!(titles.len(), world.films.len());
        assert!(world.films.windows(2).all(|w| w[0].title < w[1].title));
    }

    #[test]
    fn partitions_cover_the_period() {
        let parts = payment_partitions();
        assert_eq!(parts.len(), 7);
        assert_eq!(parts[0].0, "payment_p2022_01");
        assert_eq!(parts[0].1, "2022-01-01 00:00:00+00");
        assert_eq!(parts[6].2, "2022-08-01 00:00:00+00");
        assert_eq!(year_month(1_640_995_199), (2021, 12));
        assert_eq!(year_month(1_646_092_800), (2022, 3)); // 2022-03-01 00:00
        assert_eq!(year_month(951_782_400), (2000, 2)); // 2000-02-29 00:00
    }
}
