//! `simulate`: the live workload of the stores' "retail app" against a loaded
//! Pagila database, for testing incremental loads next to a writer.
//!
//! Every business event is one short transaction (READ COMMITTED, a handful of
//! rows, no table locks), paced at a given rate, using the wall clock: business
//! timestamps (rental_date, return_date, payment_date) are `clock_timestamp()`
//! and `last_update` is `now()` (set explicitly on INSERT, by Pagila's
//! `last_updated` trigger on UPDATE). The events:
//!
//! * rental: a copy that is in the store (no rental of it open or ending in the
//!   future) is rented to an active customer by a staff member of the copy's
//!   store; the inventory row is locked FOR NO KEY UPDATE for the check, so two
//!   simulators cannot rent the same copy;
//! * return: an open rental gets its return_date, and a payment of the film's
//!   rental_rate plus the late fee ($1 a day late, the replacement cost when
//!   more than twice the rental duration late, as in Pagila's
//!   get_customer_balance) dated at the return;
//! * new customer (with a new address); customer address change (to a new or
//!   another customer's address); customer active flag (active and activebool
//!   together); film price change; staff transfer; store manager change;
//! * delete: a rental and its payments (payments first: their foreign key to
//!   rental has no ON DELETE action).
//!
//! The monthly partition of payment for the current (and, near the end of a
//! month, the next) month is created when missing, with Pagila's indexes and
//! foreign keys. Choices come from a seeded generator over state read once at
//! start and kept up to date, so `--events N` is reproducible for a seed and a
//! database state (the timestamps aside).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::{Client, Config, Statement, Transaction};

use crate::gen::{self, person_name, place_name, DAY};
use crate::load::{connect, describe, full_error, BoxError};
use crate::rng::Rng;
use crate::schema;
use crate::words::{DISTRICTS, STREET_TYPES};

pub struct LiveOptions {
    /// Events per second; 0 = as fast as possible.
    pub rate: f64,
    pub duration: Option<Duration>,
    pub events: Option<u64>,
    pub seed: u64,
    pub delete_rate: f64,
    pub quiet: bool,
}

/// Seconds between progress lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Command-line values.

/// Parses a rate: "50/s", "3000/min", "2/h", "0.5/sec", a bare number is per
/// second; 0 means as fast as possible. Returns events per second.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, unit) = t.split_once('/').unwrap_or((t, "s"));
    let per = match unit.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hr" | "hour" => 3600.0,
        _ => return Err(format!("invalid rate {s:?}: the unit must be /s, /min or /h")),
    };
    match num.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n / per),
        _ => Err(format!(
            "invalid rate {s:?}: expected a number >= 0 with an optional /s, /min or /h, e.g. 50/s"
        )),
    }
}

/// Parses a duration: "60s", "2m", "1h30m", "500ms", "1.5h"; a bare number is
/// seconds. Must be > 0.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}: expected e.g. 60s, 2m, 1h30m, 500ms");
    let t = s.trim().to_ascii_lowercase();
    if t.is_empty() {
        return Err(bad());
    }
    let mut secs = 0.0;
    let mut rest = t.as_str();
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..n_end].parse().map_err(|_| bad())?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "ms" => 0.001,
            "" | "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" | "hr" => 3600.0,
            "d" => 86_400.0,
            _ => return Err(bad()),
        };
        // A bare number only on its own ("90", not "1m30").
        if rest[..u_end].is_empty() && rest.len() + n_end != t.len() {
            return Err(bad());
        }
        rest = &rest[u_end..];
        secs += n * unit;
    }
    if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
        return Err(format!("invalid duration {s:?}: must be > 0"));
    }
    Ok(Duration::from_secs_f64(secs))
}

// ---------------------------------------------------------------------------
// The event mix.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Rental,
    Return,
    NewCustomer,
    CustomerAddress,
    CustomerActive,
    FilmPrice,
    StaffMove,
    StoreManager,
    DeleteRental,
}

pub const KINDS: [Kind; 9] = [
    Kind::Rental,
    Kind::Return,
    Kind::NewCustomer,
    Kind::CustomerAddress,
    Kind::CustomerActive,
    Kind::FilmPrice,
    Kind::StaffMove,
    Kind::StoreManager,
    Kind::DeleteRental,
];

impl Kind {
    /// Short name for progress lines.
    fn label(self) -> &'static str {
        match self {
            Kind::Rental => "rental",
            Kind::Return => "return",
            Kind::NewCustomer => "customer",
            Kind::CustomerAddress => "address",
            Kind::CustomerActive => "active",
            Kind::FilmPrice => "price",
            Kind::StaffMove => "staff",
            Kind::StoreManager => "manager",
            Kind::DeleteRental => "delete",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Rental => "new rentals",
            Kind::Return => "returns (each with a payment)",
            Kind::NewCustomer => "new customers (each with an address)",
            Kind::CustomerAddress => "customer address changes",
            Kind::CustomerActive => "customer active flag changes",
            Kind::FilmPrice => "film price changes",
            Kind::StaffMove => "staff transfers",
            Kind::StoreManager => "store manager changes",
            Kind::DeleteRental => "deleted rentals (with payments)",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Shares of the events other than deletes (they sum to 1; deletes take
/// `--delete-rate` and scale these down). Rentals and returns balance, so the
/// number of open rentals stays about where it started.
const BASE_MIX: [(Kind, f64); 8] = [
    (Kind::Rental, 0.44),
    (Kind::Return, 0.44),
    (Kind::NewCustomer, 0.03),
    (Kind::CustomerAddress, 0.04),
    (Kind::CustomerActive, 0.02),
    (Kind::FilmPrice, 0.02),
    (Kind::StaffMove, 0.006),
    (Kind::StoreManager, 0.004),
];

pub struct Mix {
    /// (kind, cumulative share), zero shares left out.
    cumulative: Vec<(Kind, f64)>,
}

impl Mix {
    pub fn new(delete_rate: f64) -> Result<Mix, String> {
        if !(delete_rate.is_finite() && (0.0..=1.0).contains(&delete_rate)) {
            return Err(format!("--delete-rate must be between 0 and 1, not {delete_rate}"));
        }
        let mut acc = 0.0;
        let mut cumulative = Vec::new();
        let shares = BASE_MIX
            .iter()
            .map(|&(k, w)| (k, w * (1.0 - delete_rate)))
            .chain([(Kind::DeleteRental, delete_rate)]);
        for (k, w) in shares {
            if w > 0.0 {
                acc += w;
                cumulative.push((k, acc));
            }
        }
        Ok(Mix { cumulative })
    }

    /// The share of a kind of event.
    #[cfg(test)]
    pub fn share(&self, kind: Kind) -> f64 {
        let mut prev = 0.0;
        for &(k, c) in &self.cumulative {
            if k == kind {
                return (c - prev) / self.total();
            }
            prev = c;
        }
        0.0
    }

    fn total(&self) -> f64 {
        self.cumulative.last().map_or(1.0, |c| c.1)
    }

    pub fn draw(&self, rng: &mut Rng) -> Kind {
        let u = rng.unit() * self.total();
        self.cumulative
            .iter()
            .find(|c| u < c.1)
            .or(self.cumulative.last())
            .map_or(Kind::Rental, |c| c.0)
    }
}

// ---------------------------------------------------------------------------
// What the simulator knows about the database.

#[derive(Debug)]
struct Item {
    id: i32,
    store: i32,
    /// Rented out (an open rental, or one that ends in the future).
    busy: bool,
}

#[derive(Debug)]
struct Customer {
    id: i32,
    store: i32,
    address: i32,
    active: bool,
}

#[derive(Debug)]
struct Staff {
    id: i32,
    store: i32,
    active: bool,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    rental: i32,
    /// Index into `Shop::items` (None: a copy this run does not know).
    item: Option<usize>,
}

#[derive(Default)]
struct Shop {
    items: Vec<Item>,
    /// Item indexes of each store that has inventory.
    by_store: BTreeMap<i32, Vec<usize>>,
    /// Open rentals that may be returned, and their positions in `open`.
    open: Vec<Open>,
    open_pos: HashMap<i32, usize>,
    customers: Vec<Customer>,
    cities: Vec<i32>,
    /// (film_id, rental_rate in cents).
    films: Vec<(i32, i32)>,
    staff: Vec<Staff>,
    stores: Vec<i32>,
    /// manager staff_id -> store_id, and store_id -> manager.
    manager_of: HashMap<i32, i32>,
    store_manager: HashMap<i32, i32>,
    /// Range of rental ids to probe for deletes.
    min_rental: i32,
    max_rental: i32,
}

#[derive(Debug, Clone, PartialEq)]
struct NewAddress {
    street: String,
    district: &'static str,
    city: i32,
    postal: String,
    phone: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Rental {
        item: usize,
        customer: usize,
        staff: i32,
    },
    Return {
        rental: i32,
        staff: i32,
    },
    NewCustomer {
        store: i32,
        first: &'static str,
        last: &'static str,
        address: NewAddress,
    },
    /// To a new address (Some) or to another customer's address.
    CustomerAddress {
        customer: usize,
        new: Option<NewAddress>,
        existing: i32,
    },
    CustomerActive {
        customer: usize,
        active: bool,
    },
    FilmPrice {
        film: usize,
        cents: i32,
    },
    StaffMove {
        staff: usize,
        store: i32,
    },
    StoreManager {
        store: i32,
        staff: i32,
    },
    /// The first rental with rental_id >= probe (wrapping around).
    DeleteRental {
        probe: i32,
    },
}

/// What the database did with an event.
#[derive(Debug, Clone, PartialEq)]
enum Applied {
    /// Not possible in the current database state (another writer got there
    /// first, or a copy is out in the database's view): nothing written.
    Skipped,
    Rented {
        rental_id: i32,
    },
    Returned {
        amount_cents: i64,
    },
    NewCustomer {
        customer_id: i32,
        address_id: i32,
    },
    Moved {
        address_id: i32,
    },
    Updated,
    Deleted {
        rental_id: i32,
        was_open: bool,
        payments: u64,
    },
}

/// Rental rates a price change picks from (cents).
const RATES: [i32; 3] = [99, 299, 499];

/// An index in 0..len with `ok(index)`: a few random tries, then a scan from a
/// random start. Deterministic for the rng state.
fn pick_where(rng: &mut Rng, len: usize, ok: impl Fn(usize) -> bool) -> Option<usize> {
    if len == 0 {
        return None;
    }
    for _ in 0..32 {
        let k = rng.below(len as u64) as usize;
        if ok(k) {
            return Some(k);
        }
    }
    let start = rng.below(len as u64) as usize;
    (0..len).map(|j| (start + j) % len).find(|&k| ok(k))
}

fn new_address(rng: &mut Rng, cities: &[i32]) -> NewAddress {
    let street = format!("{} {} {}", rng.range(1, 1999), place_name(rng), rng.pick(STREET_TYPES));
    let district = rng.pick(DISTRICTS);
    let city = rng.pick(cities);
    let postal = format!("{:05}", rng.range(1000, 99999));
    let digits = rng.range(10, 12) as u32;
    let phone = rng.range(10_i64.pow(digits - 1), 10_i64.pow(digits) - 1).to_string();
    NewAddress {
        street,
        district,
        city,
        postal,
        phone,
    }
}

impl Shop {
    fn rental_stores(&self) -> Vec<i32> {
        self.by_store.keys().copied().collect()
    }

    /// An active staff member of `store`, else any active staff member.
    fn staff_at(&self, rng: &mut Rng, store: i32) -> Option<i32> {
        let at: Vec<i32> = self
            .staff
            .iter()
            .filter(|s| s.active && s.store == store)
            .map(|s| s.id)
            .collect();
        if !at.is_empty() {
            return Some(rng.pick(&at));
        }
        let k = pick_where(rng, self.staff.len(), |k| self.staff[k].active)?;
        Some(self.staff[k].id)
    }

    fn free_item(&self, rng: &mut Rng, store: i32) -> Option<usize> {
        let list = self.by_store.get(&store)?;
        pick_where(rng, list.len(), |j| !self.items[list[j]].busy).map(|j| list[j])
    }

    /// The event of a kind to run next, or None when the state allows none.
    fn plan(&self, kind: Kind, rng: &mut Rng) -> Option<Event> {
        match kind {
            Kind::Rental => {
                let c = pick_where(rng, self.customers.len(), |k| self.customers[k].active)?;
                let home = self.customers[c].store;
                let stores = self.rental_stores();
                if stores.is_empty() {
                    return None;
                }
                // 85% at the customer's home store, like the generated history.
                let first = if rng.chance(0.85) && self.by_store.contains_key(&home) {
                    home
                } else {
                    rng.pick(&stores)
                };
                let item = self.free_item(rng, first).or_else(|| {
                    stores
                        .iter()
                        .filter(|&&s| s != first)
                        .find_map(|&s| self.free_item(rng, s))
                })?;
                let staff = self.staff_at(rng, self.items[item].store)?;
                Some(Event::Rental {
                    item,
                    customer: c,
                    staff,
                })
            }
            Kind::Return => {
                if self.open.is_empty() {
                    return None;
                }
                let o = self.open[rng.below(self.open.len() as u64) as usize];
                let store = o.item.map_or(i32::MIN, |k| self.items[k].store);
                let staff = self.staff_at(rng, store)?;
                Some(Event::Return {
                    rental: o.rental,
                    staff,
                })
            }
            Kind::NewCustomer => {
                let stores = self.rental_stores();
                if stores.is_empty() || self.cities.is_empty() {
                    return None;
                }
                let store = rng.pick(&stores);
                let (first, last) = person_name(rng, 0.04);
                let address = new_address(rng, &self.cities);
                Some(Event::NewCustomer {
                    store,
                    first,
                    last,
                    address,
                })
            }
            Kind::CustomerAddress => {
                if self.customers.is_empty() || self.cities.is_empty() {
                    return None;
                }
                let c = rng.below(self.customers.len() as u64) as usize;
                let own = self.customers[c].address;
                let other = rng.below(self.customers.len() as u64) as usize;
                let existing = self.customers[other].address;
                if rng.chance(0.5) || existing == own {
                    Some(Event::CustomerAddress {
                        customer: c,
                        new: Some(new_address(rng, &self.cities)),
                        existing: 0,
                    })
                } else {
                    Some(Event::CustomerAddress {
                        customer: c,
                        new: None,
                        existing,
                    })
                }
            }
            Kind::CustomerActive => {
                if self.customers.is_empty() {
                    return None;
                }
                let c = rng.below(self.customers.len() as u64) as usize;
                Some(Event::CustomerActive {
                    customer: c,
                    active: !self.customers[c].active,
                })
            }
            Kind::FilmPrice => {
                if self.films.is_empty() {
                    return None;
                }
                let f = rng.below(self.films.len() as u64) as usize;
                let others: Vec<i32> = RATES.iter().copied().filter(|&r| r != self.films[f].1).collect();
                Some(Event::FilmPrice {
                    film: f,
                    cents: rng.pick(&others),
                })
            }
            Kind::StaffMove => {
                // A staff member who manages no store moves to another store;
                // a store with inventory keeps at least one active staff member.
                let mut active_at: HashMap<i32, usize> = HashMap::new();
                for s in self.staff.iter().filter(|s| s.active) {
                    *active_at.entry(s.store).or_default() += 1;
                }
                let k = pick_where(rng, self.staff.len(), |k| {
                    let s = &self.staff[k];
                    s.active
                        && !self.manager_of.contains_key(&s.id)
                        && (!self.by_store.contains_key(&s.store) || active_at[&s.store] > 1)
                })?;
                let pool = if rng.chance(0.5) {
                    self.rental_stores()
                } else {
                    self.stores.clone()
                };
                let targets: Vec<i32> = pool.into_iter().filter(|&s| s != self.staff[k].store).collect();
                if targets.is_empty() {
                    return None;
                }
                Some(Event::StaffMove {
                    staff: k,
                    store: rng.pick(&targets),
                })
            }
            Kind::StoreManager => {
                // A store gets a new manager among its staff who manage nothing.
                let pool = if rng.chance(0.5) {
                    self.rental_stores()
                } else {
                    self.stores.clone()
                };
                if pool.is_empty() {
                    return None;
                }
                let store = rng.pick(&pool);
                let cands: Vec<i32> = self
                    .staff
                    .iter()
                    .filter(|s| s.active && s.store == store && !self.manager_of.contains_key(&s.id))
                    .map(|s| s.id)
                    .collect();
                if cands.is_empty() {
                    return None;
                }
                Some(Event::StoreManager {
                    store,
                    staff: rng.pick(&cands),
                })
            }
            Kind::DeleteRental => {
                if self.max_rental < self.min_rental {
                    return None;
                }
                Some(Event::DeleteRental {
                    probe: rng.range(i64::from(self.min_rental), i64::from(self.max_rental)) as i32,
                })
            }
        }
    }

    fn push_open(&mut self, o: Open) {
        self.open_pos.insert(o.rental, self.open.len());
        self.open.push(o);
    }

    fn remove_open(&mut self, rental: i32) -> Option<Open> {
        let pos = self.open_pos.remove(&rental)?;
        let o = self.open.swap_remove(pos);
        if let Some(moved) = self.open.get(pos) {
            self.open_pos.insert(moved.rental, pos);
        }
        Some(o)
    }

    /// Brings the state up to date with what the database did.
    fn record(&mut self, ev: &Event, applied: &Applied) {
        match (ev, applied) {
            (Event::Rental { item, .. }, Applied::Skipped) => {
                // The database has it out (another writer, or a rental dated
                // in the future): leave it alone.
                self.items[*item].busy = true;
            }
            (Event::Return { rental, .. }, Applied::Skipped) => {
                // Returned or deleted by another writer.
                if let Some(Open { item: Some(k), .. }) = self.remove_open(*rental) {
                    self.items[k].busy = false;
                }
            }
            (_, Applied::Skipped) => {}
            (Event::Rental { item, .. }, Applied::Rented { rental_id }) => {
                self.items[*item].busy = true;
                self.push_open(Open {
                    rental: *rental_id,
                    item: Some(*item),
                });
                self.max_rental = self.max_rental.max(*rental_id);
                self.min_rental = self.min_rental.min(*rental_id);
            }
            (Event::Return { rental, .. }, Applied::Returned { .. }) => {
                if let Some(Open { item: Some(k), .. }) = self.remove_open(*rental) {
                    self.items[k].busy = false;
                }
            }
            (
                Event::NewCustomer { store, .. },
                Applied::NewCustomer {
                    customer_id,
                    address_id,
                },
            ) => self.customers.push(Customer {
                id: *customer_id,
                store: *store,
                address: *address_id,
                active: true,
            }),
            (Event::CustomerAddress { customer, .. }, Applied::Moved { address_id }) => {
                self.customers[*customer].address = *address_id;
            }
            (Event::CustomerActive { customer, active }, Applied::Updated) => {
                self.customers[*customer].active = *active;
            }
            (Event::FilmPrice { film, cents }, Applied::Updated) => self.films[*film].1 = *cents,
            (Event::StaffMove { staff, store }, Applied::Updated) => {
                self.staff[*staff].store = *store;
            }
            (Event::StoreManager { store, staff }, Applied::Updated) => {
                if let Some(old) = self.store_manager.insert(*store, *staff) {
                    self.manager_of.remove(&old);
                }
                self.manager_of.insert(*staff, *store);
            }
            (
                Event::DeleteRental { .. },
                Applied::Deleted {
                    rental_id, was_open, ..
                },
            ) => {
                if *was_open {
                    if let Some(Open { item: Some(k), .. }) = self.remove_open(*rental_id) {
                        self.items[k].busy = false;
                    }
                }
            }
            (ev, applied) => unreachable!("{applied:?} for {ev:?}"),
        }
    }

    /// Reads what the simulator needs (plain reads, no locks).
    fn load(client: &mut Client) -> Result<Shop, BoxError> {
        let mut shop = Shop::default();
        let mut item_of = HashMap::new();
        for r in client.query("SELECT inventory_id, store_id FROM public.inventory ORDER BY 1", &[])? {
            let (id, store): (i32, i32) = (r.get(0), r.get(1));
            item_of.insert(id, shop.items.len());
            shop.by_store.entry(store).or_default().push(shop.items.len());
            shop.items.push(Item { id, store, busy: false });
        }
        if shop.items.is_empty() {
            return Err("the database has no inventory: load it first".into());
        }
        // Copies out now or later (rentals dated in the future, e.g. by
        // `advance` after a live run); only open ones can be returned.
        for r in client.query(
            "SELECT rental_id, inventory_id, return_date IS NULL AND rental_date < now() \
             FROM public.rental WHERE coalesce(return_date, 'infinity') > now() ORDER BY 1",
            &[],
        )? {
            let (rental, inv, returnable): (i32, i32, bool) = (r.get(0), r.get(1), r.get(2));
            let item = item_of.get(&inv).copied();
            if let Some(k) = item {
                shop.items[k].busy = true;
            }
            if returnable {
                shop.push_open(Open { rental, item });
            }
        }
        let (lo, hi): (Option<i32>, Option<i32>) = {
            let r = client.query_one("SELECT min(rental_id), max(rental_id) FROM public.rental", &[])?;
            (r.get(0), r.get(1))
        };
        (shop.min_rental, shop.max_rental) = (lo.unwrap_or(1), hi.unwrap_or(0));
        shop.customers = client
            .query(
                "SELECT customer_id, store_id, address_id, coalesce(active, 1) = 1 AND activebool \
                 FROM public.customer ORDER BY 1",
                &[],
            )?
            .iter()
            .map(|r| Customer {
                id: r.get(0),
                store: r.get(1),
                address: r.get(2),
                active: r.get(3),
            })
            .collect();
        shop.cities = client
            .query("SELECT city_id FROM public.city ORDER BY 1", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        shop.films = client
            .query(
                "SELECT film_id, (rental_rate * 100)::int4 FROM public.film ORDER BY 1",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        shop.staff = client
            .query("SELECT staff_id, store_id, active FROM public.staff ORDER BY 1", &[])?
            .iter()
            .map(|r| Staff {
                id: r.get(0),
                store: r.get(1),
                active: r.get(2),
            })
            .collect();
        for r in client.query("SELECT store_id, manager_staff_id FROM public.store ORDER BY 1", &[])? {
            let (store, manager): (i32, i32) = (r.get(0), r.get(1));
            shop.stores.push(store);
            shop.store_manager.insert(store, manager);
            shop.manager_of.insert(manager, store);
        }
        if !shop.staff.iter().any(|s| s.active) {
            return Err("the database has no active staff".into());
        }
        Ok(shop)
    }
}

// ---------------------------------------------------------------------------
// SQL.

struct Stmts {
    lock_item: Statement,
    rent: Statement,
    ret: Statement,
    new_customer: Statement,
    move_new: Statement,
    move_existing: Statement,
    active: Statement,
    price: Statement,
    staff_move: Statement,
    manager: Statement,
    del_pick: Statement,
    del_pay_customer: Statement,
    del_pay_all: Statement,
    del_rental: Statement,
}

impl Stmts {
    fn prepare(c: &mut Client) -> Result<Stmts, postgres::Error> {
        Ok(Stmts {
            lock_item: c.prepare(
                "SELECT 1 FROM public.inventory WHERE inventory_id = $1 FOR NO KEY UPDATE",
            )?,
            // The copy must be in the store: no rental of it open or ending
            // after the new rental_date (clock_timestamp() is read after the
            // statement's snapshot, so a return committed before is seen).
            rent: c.prepare(
                "WITH t AS (SELECT clock_timestamp() AS ts) \
                 INSERT INTO public.rental (rental_date, inventory_id, customer_id, staff_id, last_update) \
                 SELECT t.ts, $1::int4, $2::int4, $3::int4, now() FROM t \
                 WHERE NOT EXISTS (SELECT 1 FROM public.rental r \
                                   WHERE r.inventory_id = $1 AND coalesce(r.return_date, 'infinity') >= t.ts) \
                 RETURNING rental_id",
            )?,
            ret: c.prepare(
                "WITH t AS (SELECT clock_timestamp() AS ts), \
                 r AS (UPDATE public.rental SET return_date = t.ts FROM t \
                       WHERE rental_id = $1 AND return_date IS NULL AND rental_date < t.ts \
                       RETURNING rental_id, customer_id, inventory_id, rental_date, return_date) \
                 INSERT INTO public.payment (customer_id, staff_id, rental_id, amount, payment_date) \
                 SELECT r.customer_id, $2::int4, r.rental_id, \
                        f.rental_rate + CASE WHEN late.days > 2 * f.rental_duration \
                                             THEN f.replacement_cost ELSE late.days END, \
                        r.return_date \
                 FROM r JOIN public.inventory i ON i.inventory_id = r.inventory_id \
                        JOIN public.film f ON f.film_id = i.film_id, \
                 LATERAL (SELECT greatest(0, ceil(extract(epoch FROM r.return_date - r.rental_date) / 86400) \
                                             - f.rental_duration)::numeric AS days) late \
                 RETURNING (amount * 100)::int8",
            )?,
            new_customer: c.prepare(
                "WITH a AS (INSERT INTO public.address (address, address2, district, city_id, postal_code, phone, last_update) \
                            VALUES ($1, '', $2, $3, $4, $5, now()) RETURNING address_id) \
                 INSERT INTO public.customer (store_id, first_name, last_name, email, address_id, activebool, \
                                              create_date, last_update, active) \
                 SELECT $6::int4, $7::text, $8::text, $9::text, a.address_id, true, current_date, now(), 1 FROM a \
                 RETURNING customer_id, address_id",
            )?,
            move_new: c.prepare(
                "WITH a AS (INSERT INTO public.address (address, address2, district, city_id, postal_code, phone, last_update) \
                            VALUES ($1, '', $2, $3, $4, $5, now()) RETURNING address_id) \
                 UPDATE public.customer c SET address_id = a.address_id FROM a \
                 WHERE c.customer_id = $6 RETURNING c.address_id",
            )?,
            move_existing: c.prepare(
                "UPDATE public.customer SET address_id = $2 \
                 WHERE customer_id = $1 AND address_id <> $2 RETURNING address_id",
            )?,
            active: c.prepare(
                "UPDATE public.customer SET active = $2, activebool = ($2 = 1) \
                 WHERE customer_id = $1 AND (active IS DISTINCT FROM $2 OR activebool <> ($2 = 1))",
            )?,
            price: c.prepare(
                "UPDATE public.film SET rental_rate = $2::int4 / 100.0 \
                 WHERE film_id = $1 AND rental_rate <> $2::int4 / 100.0",
            )?,
            staff_move: c.prepare(
                "UPDATE public.staff SET store_id = $2 WHERE staff_id = $1 AND store_id <> $2 \
                 AND NOT EXISTS (SELECT 1 FROM public.store WHERE manager_staff_id = $1)",
            )?,
            manager: c.prepare(
                "UPDATE public.store SET manager_staff_id = $2 WHERE store_id = $1 AND manager_staff_id <> $2 \
                 AND NOT EXISTS (SELECT 1 FROM public.store WHERE manager_staff_id = $2)",
            )?,
            del_pick: c.prepare(
                "SELECT rental_id, customer_id, return_date IS NULL FROM public.rental \
                 WHERE rental_id >= $1 ORDER BY rental_id LIMIT 1 FOR UPDATE",
            )?,
            // payment has no index on rental_id; a rental's payments are its
            // customer's (found through each partition's customer_id index).
            del_pay_customer: c.prepare(
                "DELETE FROM public.payment WHERE customer_id = $1 AND rental_id = $2",
            )?,
            del_pay_all: c.prepare("DELETE FROM public.payment WHERE rental_id = $1")?,
            del_rental: c.prepare("DELETE FROM public.rental WHERE rental_id = $1")?,
        })
    }
}

/// Runs one event in a transaction the caller commits.
fn execute(tx: &mut Transaction, st: &Stmts, shop: &Shop, ev: &Event) -> Result<Applied, postgres::Error> {
    let updated = |n: u64| if n > 0 { Applied::Updated } else { Applied::Skipped };
    Ok(match ev {
        Event::Rental { item, customer, staff } => {
            let inv = shop.items[*item].id;
            tx.query(&st.lock_item, &[&inv])?;
            let cust = shop.customers[*customer].id;
            match tx.query_opt(&st.rent, &[&inv, &cust, staff])? {
                Some(r) => Applied::Rented { rental_id: r.get(0) },
                None => Applied::Skipped,
            }
        }
        Event::Return { rental, staff } => match tx.query_opt(&st.ret, &[rental, staff])? {
            Some(r) => Applied::Returned { amount_cents: r.get(0) },
            None => Applied::Skipped,
        },
        Event::NewCustomer {
            store,
            first,
            last,
            address: a,
        } => {
            let email = format!("{first}.{last}@sakilacustomer.org");
            let r = tx.query_one(
                &st.new_customer,
                &[
                    &a.street,
                    &a.district,
                    &a.city,
                    &a.postal,
                    &a.phone,
                    store,
                    first,
                    last,
                    &email,
                ],
            )?;
            Applied::NewCustomer {
                customer_id: r.get(0),
                address_id: r.get(1),
            }
        }
        Event::CustomerAddress {
            customer,
            new,
            existing,
        } => {
            let cust = shop.customers[*customer].id;
            let row = match new {
                Some(a) => tx.query_opt(
                    &st.move_new,
                    &[&a.street, &a.district, &a.city, &a.postal, &a.phone, &cust],
                )?,
                None => tx.query_opt(&st.move_existing, &[&cust, existing])?,
            };
            match row {
                Some(r) => Applied::Moved { address_id: r.get(0) },
                None => Applied::Skipped,
            }
        }
        Event::CustomerActive { customer, active } => {
            let cust = shop.customers[*customer].id;
            updated(tx.execute(&st.active, &[&cust, &i32::from(*active)])?)
        }
        Event::FilmPrice { film, cents } => updated(tx.execute(&st.price, &[&shop.films[*film].0, cents])?),
        Event::StaffMove { staff, store } => updated(tx.execute(&st.staff_move, &[&shop.staff[*staff].id, store])?),
        Event::StoreManager { store, staff } => updated(tx.execute(&st.manager, &[store, staff])?),
        Event::DeleteRental { probe } => {
            let row = match tx.query_opt(&st.del_pick, &[probe])? {
                Some(r) => Some(r),
                None => tx.query_opt(&st.del_pick, &[&i32::MIN])?,
            };
            let Some(row) = row else {
                return Ok(Applied::Skipped);
            };
            let (rental_id, customer_id, was_open): (i32, i32, bool) = (row.get(0), row.get(1), row.get(2));
            let mut payments = tx.execute(&st.del_pay_customer, &[&customer_id, &rental_id])?;
            let first_try = {
                let mut sp = tx.savepoint("del_rental")?;
                match sp.execute(&st.del_rental, &[&rental_id]) {
                    Ok(n) => {
                        sp.commit()?;
                        Ok(n)
                    }
                    Err(e) => Err(e),
                }
            };
            match first_try {
                Ok(_) => {}
                // A payment of another customer refers to it (the real
                // Pagila's data allows that): delete by rental_id (slower).
                Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                    payments += tx.execute(&st.del_pay_all, &[&rental_id])?;
                    tx.execute(&st.del_rental, &[&rental_id])?;
                }
                Err(e) => return Err(e),
            }
            Applied::Deleted {
                rental_id,
                was_open,
                payments,
            }
        }
    })
}

/// Errors that another writer can cause: the event is dropped and another
/// one drawn.
fn is_conflict(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
            || *c == SqlState::FOREIGN_KEY_VIOLATION
            || *c == SqlState::LOCK_NOT_AVAILABLE
            || *c == SqlState::CHECK_VIOLATION
    )
}

/// Creates the monthly partitions of payment for the database's current time
/// (and the next day's month), with Pagila's indexes and foreign keys.
/// Returns the names created.
fn ensure_partitions(client: &mut Client) -> Result<Vec<String>, BoxError> {
    const PARTITIONS: &str = "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                              WHERE i.inhparent = 'public.payment'::regclass";
    let names = |rows: Vec<postgres::Row>| -> HashSet<String> { rows.iter().map(|r| r.get(0)).collect() };
    let now: i64 = client.query_one("SELECT extract(epoch FROM now())::int8", &[])?.get(0);
    let wanted = gen::partitions_between(now - 60, now + DAY);
    let have = names(client.query(PARTITIONS, &[])?);
    if wanted.iter().all(|p| have.contains(&p.0)) {
        return Ok(Vec::new());
    }
    let mut tx = client.transaction()?;
    // One creator at a time (another simulator may be at it too).
    tx.execute("SELECT pg_advisory_xact_lock(7405917, 1)", &[])?;
    let have = names(tx.query(PARTITIONS, &[])?);
    let missing: Vec<_> = wanted.into_iter().filter(|p| !have.contains(&p.0)).collect();
    let fks = schema::partition_foreign_keys(&missing);
    for stmt in schema::partitions_ddl_for(&missing)
        .into_iter()
        .chain(schema::partition_indexes_for(&missing))
        .chain(fks.iter().map(|fk| fk.add_not_valid.clone()))
        .chain(fks.iter().map(|fk| fk.validate()))
    {
        tx.batch_execute(&stmt)?;
    }
    tx.commit()?;
    Ok(missing.into_iter().map(|p| p.0).collect())
}

// ---------------------------------------------------------------------------
// Stopping on SIGINT / SIGTERM between transactions.

mod stop {
    use std::sync::atomic::{AtomicI32, Ordering};

    /// The first stop signal received (0: none).
    static SIGNAL: AtomicI32 = AtomicI32::new(0);

    #[cfg(unix)]
    mod sys {
        use super::SIGNAL;
        use std::sync::atomic::Ordering;

        pub const SIGINT: i32 = 2;
        pub const SIGTERM: i32 = 15;

        extern "C" {
            // glibc's and the BSDs' signal() install a persistent handler with
            // SA_RESTART, so interrupted socket reads are resumed.
            fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
            fn _exit(status: i32) -> !;
        }

        extern "C" fn on_signal(sig: i32) {
            // The first signal asks for a clean stop between transactions; a
            // second one ends the process at once (async-signal-safe calls
            // only).
            if SIGNAL.swap(sig, Ordering::SeqCst) != 0 {
                unsafe { _exit(128 + sig) }
            }
        }

        pub fn install() {
            unsafe {
                signal(SIGINT, on_signal);
                signal(SIGTERM, on_signal);
            }
        }
    }

    #[cfg(unix)]
    pub use sys::install;

    #[cfg(not(unix))]
    pub fn install() {}

    pub fn requested() -> bool {
        SIGNAL.load(Ordering::SeqCst) != 0
    }

    /// "SIGINT" or "SIGTERM".
    pub fn name() -> &'static str {
        match SIGNAL.load(Ordering::SeqCst) {
            2 => "SIGINT",
            15 => "SIGTERM",
            _ => "signal",
        }
    }
}

// ---------------------------------------------------------------------------
// The run.

#[derive(Default, Clone)]
struct Stats {
    done: [u64; KINDS.len()],
    payment_cents: i64,
    payments_deleted: u64,
    skipped: u64,
    conflicts: u64,
    partitions: Vec<String>,
}

impl Stats {
    fn total(&self) -> u64 {
        self.done.iter().sum()
    }
}

/// Runs events until `--events`, `--duration` or a signal stops it.
pub fn simulate(cfg: &Config, opts: &LiveOptions) -> Result<(), BoxError> {
    let mix = Mix::new(opts.delete_rate)?;
    if !(opts.rate.is_finite() && opts.rate >= 0.0) {
        return Err("--rate must be >= 0".into());
    }
    stop::install();
    let mut client = connect(cfg)?;
    client.batch_execute("SET lock_timeout = '10s'; SET application_name = 'pagila-gen simulate'")?;
    let mut stats = Stats {
        partitions: ensure_partitions(&mut client)?,
        ..Stats::default()
    };
    let mut shop = Shop::load(&mut client)?;
    let st = Stmts::prepare(&mut client)?;
    let mut rng = Rng::stream(opts.seed, "simulate-live");
    let where_ = describe(cfg);
    println!(
        "pagila-gen simulate on {where_}: rate {}, {}, seed {}, delete rate {}; \
         {} copies ({} out), {} customers, {} films",
        if opts.rate > 0.0 {
            format!("{}/s", (opts.rate * 1000.0).round() / 1000.0)
        } else {
            "unpaced".to_string()
        },
        match (opts.events, opts.duration) {
            (Some(n), Some(d)) => format!("{n} events or {:.1}s", d.as_secs_f64()),
            (Some(n), None) => format!("{n} events"),
            (None, Some(d)) => format!("{:.1}s", d.as_secs_f64()),
            (None, None) => "until Ctrl-C".to_string(),
        },
        opts.seed,
        opts.delete_rate,
        shop.items.len(),
        shop.items.iter().filter(|i| i.busy).count(),
        shop.customers.len(),
        shop.films.len(),
    );

    let started = Instant::now();
    let deadline = opts.duration.map(|d| started + d);
    let interval = (opts.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / opts.rate));
    let mut next = started;
    let mut last_tick = (started, stats.clone());
    let outcome = (|| -> Result<&'static str, BoxError> {
        loop {
            if stop::requested() {
                return Ok(stop::name());
            }
            if opts.events.is_some_and(|n| stats.total() >= n) {
                return Ok("event count reached");
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok("duration reached");
            }
            if last_tick.0.elapsed() >= PROGRESS_EVERY {
                stats.partitions.extend(ensure_partitions(&mut client)?);
                if !opts.quiet {
                    progress(started, &last_tick, &stats, &shop);
                }
                last_tick = (Instant::now(), stats.clone());
            }
            if let Some(iv) = interval {
                // Pace: wait in short slices (a signal or the deadline ends
                // the wait); at most one second of backlog is caught up.
                let now = Instant::now();
                if next + Duration::from_secs(1) < now {
                    next = now;
                }
                if now < next {
                    std::thread::sleep((next - now).min(Duration::from_millis(50)));
                    continue;
                }
                next += iv;
            }
            one_event(&mut client, &st, &mut shop, &mix, &mut rng, &mut stats)?;
        }
    })();
    let elapsed = started.elapsed().as_secs_f64();
    let reason = match &outcome {
        Ok(r) => r.to_string(),
        Err(e) => format!("error: {}", full_error(e.as_ref())),
    };
    summary(&where_, elapsed, &reason, &stats, &shop);
    outcome.map(|_| ())
}

/// Draws and runs one event (falling back to other kinds when the state or
/// the database does not allow the one drawn).
fn one_event(
    client: &mut Client,
    st: &Stmts,
    shop: &mut Shop,
    mix: &Mix,
    rng: &mut Rng,
    stats: &mut Stats,
) -> Result<(), BoxError> {
    let mut fresh_partitions = false;
    let mut last_conflict = None;
    for _ in 0..64 {
        let kind = mix.draw(rng);
        let Some(ev) = shop.plan(kind, rng) else {
            continue;
        };
        let mut tx = client.transaction()?;
        match execute(&mut tx, st, shop, &ev) {
            Ok(applied) => {
                tx.commit()?;
                shop.record(&ev, &applied);
                match applied {
                    Applied::Skipped => stats.skipped += 1,
                    Applied::Returned { amount_cents } => {
                        stats.payment_cents += amount_cents;
                        stats.done[kind.index()] += 1;
                        return Ok(());
                    }
                    Applied::Deleted { payments, .. } => {
                        stats.payments_deleted += payments;
                        stats.done[kind.index()] += 1;
                        return Ok(());
                    }
                    _ => {
                        stats.done[kind.index()] += 1;
                        return Ok(());
                    }
                }
            }
            Err(e) if is_conflict(&e) => {
                drop(tx);
                stats.conflicts += 1;
                // No partition for the payment date (the month turned, or the
                // clocks disagree): create it once and go on.
                if e.code() == Some(&SqlState::CHECK_VIOLATION) {
                    if fresh_partitions {
                        return Err(e.into());
                    }
                    stats.partitions.extend(ensure_partitions(client)?);
                    fresh_partitions = true;
                }
                last_conflict = Some(e);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(match last_conflict {
        Some(e) => format!("64 events in a row failed, the last with: {}", full_error(&e)).into(),
        None => "no event possible: the database lacks customers, copies or staff".into(),
    })
}

fn counts_line(stats: &Stats, base: &Stats) -> String {
    KINDS
        .iter()
        .map(|k| format!("{} {}", k.label(), stats.done[k.index()] - base.done[k.index()]))
        .collect::<Vec<_>>()
        .join("  ")
}

fn progress(started: Instant, last: &(Instant, Stats), stats: &Stats, shop: &Shop) {
    let dt = last.0.elapsed().as_secs_f64().max(1e-9);
    let recent = (stats.total() - last.1.total()) as f64 / dt;
    let t = started.elapsed().as_secs_f64();
    println!(
        "[{t:7.1}s] {:>8} events  {recent:7.1}/s (avg {:.1}/s)  last {:.0}s: {}  | open {}  skipped {}  conflicts {}",
        stats.total(),
        stats.total() as f64 / t.max(1e-9),
        dt,
        counts_line(stats, &last.1),
        shop.open.len(),
        stats.skipped,
        stats.conflicts,
    );
    let _ = std::io::stdout().flush();
}

fn summary(where_: &str, elapsed: f64, reason: &str, stats: &Stats, shop: &Shop) {
    println!(
        "pagila-gen simulate: {} events in {elapsed:.2}s ({:.1}/s) on {where_}, stopped: {reason}",
        stats.total(),
        stats.total() as f64 / elapsed.max(1e-9)
    );
    for k in KINDS {
        let extra = match k {
            Kind::Return => format!(
                "   payments {}, total {}.{:02}",
                stats.done[k.index()],
                stats.payment_cents / 100,
                stats.payment_cents % 100
            ),
            Kind::DeleteRental => format!("   payments deleted {}", stats.payments_deleted),
            _ => String::new(),
        };
        println!("  {:<38}{:>9}{extra}", k.title(), stats.done[k.index()]);
    }
    println!("  {:<38}{:>9}", "skipped (database state said no)", stats.skipped);
    println!("  {:<38}{:>9}", "conflicts (rolled back, redrawn)", stats.conflicts);
    println!(
        "  {:<38}{:>9}",
        "open rentals (as this run knows them)",
        shop.open.len()
    );
    if !stats.partitions.is_empty() {
        println!(
            "  payment partitions created            {}",
            stats.partitions.join(", ")
        );
    }
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("50/s").unwrap(), 50.0);
        assert_eq!(parse_rate("50").unwrap(), 50.0);
        assert_eq!(parse_rate(" 50 / sec ").unwrap(), 50.0);
        assert_eq!(parse_rate("3000/min").unwrap(), 50.0);
        assert_eq!(parse_rate("3000/m").unwrap(), 50.0);
        assert_eq!(parse_rate("7200/h").unwrap(), 2.0);
        assert_eq!(parse_rate("0.5/s").unwrap(), 0.5);
        assert_eq!(parse_rate("0").unwrap(), 0.0);
        assert_eq!(parse_rate("0/s").unwrap(), 0.0);
        for bad in ["", "fast", "-1/s", "50/d", "50/", "/s", "inf", "NaN/s", "5 0/s"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn durations_parse() {
        let secs = |s: &str| parse_duration(s).unwrap().as_secs_f64();
        assert_eq!(secs("60s"), 60.0);
        assert_eq!(secs("60"), 60.0);
        assert_eq!(secs("2m"), 120.0);
        assert_eq!(secs("2min"), 120.0);
        assert_eq!(secs("1h"), 3600.0);
        assert_eq!(secs("1h30m"), 5400.0);
        assert_eq!(secs("1m30s"), 90.0);
        assert_eq!(secs("500ms"), 0.5);
        assert_eq!(secs("1.5h"), 5400.0);
        assert_eq!(secs("1d"), 86400.0);
        assert_eq!(secs(" 20S "), 20.0);
        for bad in [
            "", "0", "0s", "s", "2x", "-5s", "1h-2m", "m5", "5 m", "1.2.3s", "60s5", "1m30",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn mix_shares_sum_to_one() {
        let base: f64 = BASE_MIX.iter().map(|m| m.1).sum();
        assert!((base - 1.0).abs() < 1e-12);
        for d in [0.0, 0.01, 0.2, 1.0] {
            let mix = Mix::new(d).unwrap();
            let total: f64 = KINDS.iter().map(|&k| mix.share(k)).sum();
            assert!((total - 1.0).abs() < 1e-12, "delete rate {d}: {total}");
            assert!((mix.share(Kind::DeleteRental) - d).abs() < 1e-12);
        }
        assert!(Mix::new(-0.1).is_err());
        assert!(Mix::new(1.5).is_err());
        assert!(Mix::new(f64::NAN).is_err());
    }

    #[test]
    fn mix_draws_follow_the_shares() {
        let n = 200_000;
        for d in [0.0, 0.01, 0.3] {
            let mix = Mix::new(d).unwrap();
            let mut rng = Rng::new(7);
            let mut count = [0u64; KINDS.len()];
            for _ in 0..n {
                count[mix.draw(&mut rng).index()] += 1;
            }
            for k in KINDS {
                let got = count[k.index()] as f64 / n as f64;
                let want = mix.share(k);
                // Within 5 standard deviations.
                let tol = 5.0 * (want * (1.0 - want) / n as f64).sqrt() + 1e-9;
                assert!((got - want).abs() <= tol, "{k:?} at delete rate {d}: {got} vs {want}");
            }
            if d == 0.0 {
                assert_eq!(count[Kind::DeleteRental.index()], 0);
            }
        }
        let only_deletes = Mix::new(1.0).unwrap();
        let mut rng = Rng::new(1);
        assert!((0..1000).all(|_| only_deletes.draw(&mut rng) == Kind::DeleteRental));
    }

    /// A shop like a small generated database: stores 0..9, inventory and
    /// customers at stores 1 and 2, store n managed by staff n.
    fn test_shop() -> Shop {
        let mut shop = Shop::default();
        for id in 1..=60 {
            let store = 1 + id % 2;
            shop.by_store.entry(store).or_default().push(shop.items.len());
            shop.items.push(Item { id, store, busy: false });
        }
        for id in 1..=40 {
            shop.customers.push(Customer {
                id,
                store: 1 + id % 2,
                address: id + 4,
                active: id % 10 != 0,
            });
        }
        shop.cities = (1..=20).collect();
        shop.films = (1..=30).map(|id| (id, RATES[id as usize % 3])).collect();
        shop.stores = (0..10).collect();
        for id in 0..30 {
            shop.staff.push(Staff {
                id,
                store: if id < 10 { id } else { id % 10 },
                active: true,
            });
        }
        for s in 0..10 {
            shop.store_manager.insert(s, s);
            shop.manager_of.insert(s, s);
        }
        // Items 1..5 are out.
        for k in 0..5 {
            shop.items[k].busy = true;
            shop.push_open(Open {
                rental: 100 + k as i32,
                item: Some(k),
            });
        }
        (shop.min_rental, shop.max_rental) = (1, 104);
        shop
    }

    /// Plans and "applies" events in memory the way the database would and
    /// returns them; checks the invariants after every event.
    fn run_in_memory(seed: u64, n: usize, delete_rate: f64) -> Vec<Event> {
        let mut shop = test_shop();
        let mix = Mix::new(delete_rate).unwrap();
        let mut rng = Rng::new(seed);
        let mut next_id = 1000;
        // Which item each rental holds, as the database would know.
        let mut holds: HashMap<i32, usize> = shop.open.iter().map(|o| (o.rental, o.item.unwrap())).collect();
        let mut events = Vec::new();
        while events.len() < n {
            let kind = mix.draw(&mut rng);
            let Some(ev) = shop.plan(kind, &mut rng) else {
                continue;
            };
            let applied = match &ev {
                Event::Rental { item, customer, staff } => {
                    assert!(!shop.items[*item].busy, "rented a copy that is out");
                    assert!(holds.values().all(|k| k != item));
                    assert!(shop.customers[*customer].active);
                    let at = shop.staff.iter().find(|s| s.id == *staff).unwrap();
                    assert_eq!(at.store, shop.items[*item].store, "staff of another store");
                    next_id += 1;
                    holds.insert(next_id, *item);
                    Applied::Rented { rental_id: next_id }
                }
                Event::Return { rental, staff } => {
                    let k = holds.remove(rental).expect("returned a rental that is not open");
                    let at = shop.staff.iter().find(|s| s.id == *staff).unwrap();
                    assert_eq!(at.store, shop.items[k].store);
                    Applied::Returned { amount_cents: 299 }
                }
                Event::NewCustomer { store, .. } => {
                    assert!(shop.by_store.contains_key(store));
                    next_id += 1;
                    Applied::NewCustomer {
                        customer_id: next_id,
                        address_id: next_id,
                    }
                }
                Event::CustomerAddress {
                    customer,
                    new,
                    existing,
                } => match new {
                    Some(_) => {
                        next_id += 1;
                        Applied::Moved { address_id: next_id }
                    }
                    None => {
                        assert_ne!(*existing, shop.customers[*customer].address);
                        Applied::Moved { address_id: *existing }
                    }
                },
                Event::CustomerActive { customer, active } => {
                    assert_ne!(shop.customers[*customer].active, *active);
                    Applied::Updated
                }
                Event::FilmPrice { film, cents } => {
                    assert_ne!(shop.films[*film].1, *cents);
                    assert!(RATES.contains(cents));
                    Applied::Updated
                }
                Event::StaffMove { staff, store } => {
                    let s = &shop.staff[*staff];
                    assert!(!shop.manager_of.contains_key(&s.id));
                    assert_ne!(s.store, *store);
                    Applied::Updated
                }
                Event::StoreManager { store, staff } => {
                    assert!(!shop.manager_of.contains_key(staff));
                    let s = shop.staff.iter().find(|s| s.id == *staff).unwrap();
                    assert_eq!(s.store, *store);
                    Applied::Updated
                }
                Event::DeleteRental { probe } => {
                    // The database deletes the first rental >= probe; here
                    // the probe itself, open when we hold it.
                    let was_open = holds.remove(probe).is_some();
                    Applied::Deleted {
                        rental_id: *probe,
                        was_open,
                        payments: 1,
                    }
                }
            };
            shop.record(&ev, &applied);
            // Invariants: the busy flags are exactly the copies held, the
            // open list is the rentals held, stores with inventory keep
            // staff, managers are unique.
            for (k, it) in shop.items.iter().enumerate() {
                assert_eq!(it.busy, holds.values().any(|&h| h == k), "busy flag of item {k}");
            }
            assert_eq!(shop.open.len(), holds.len());
            for (pos, o) in shop.open.iter().enumerate() {
                assert_eq!(shop.open_pos[&o.rental], pos);
                assert_eq!(holds[&o.rental], o.item.unwrap());
            }
            for s in shop.by_store.keys() {
                assert!(shop.staff.iter().any(|st| st.active && st.store == *s));
            }
            assert_eq!(shop.manager_of.len(), shop.store_manager.len());
            events.push(ev);
        }
        events
    }

    #[test]
    fn planned_events_keep_the_rules() {
        let events = run_in_memory(42, 5000, 0.05);
        for k in KINDS {
            let n = events.iter().filter(|e| kind_of(e) == k).count();
            assert!(n > 0, "no {k:?} in 5000 events");
        }
    }

    fn kind_of(e: &Event) -> Kind {
        match e {
            Event::Rental { .. } => Kind::Rental,
            Event::Return { .. } => Kind::Return,
            Event::NewCustomer { .. } => Kind::NewCustomer,
            Event::CustomerAddress { .. } => Kind::CustomerAddress,
            Event::CustomerActive { .. } => Kind::CustomerActive,
            Event::FilmPrice { .. } => Kind::FilmPrice,
            Event::StaffMove { .. } => Kind::StaffMove,
            Event::StoreManager { .. } => Kind::StoreManager,
            Event::DeleteRental { .. } => Kind::DeleteRental,
        }
    }

    #[test]
    fn same_seed_same_events() {
        assert_eq!(run_in_memory(5, 500, 0.01), run_in_memory(5, 500, 0.01));
        assert_ne!(run_in_memory(5, 500, 0.01), run_in_memory(6, 500, 0.01));
    }

    #[test]
    fn no_free_copy_means_no_rental() {
        let mut shop = test_shop();
        for it in &mut shop.items {
            it.busy = true;
        }
        let mut rng = Rng::new(3);
        assert!(shop.plan(Kind::Rental, &mut rng).is_none());
        shop.items[17].busy = false;
        match shop.plan(Kind::Rental, &mut rng) {
            Some(Event::Rental { item, .. }) => assert_eq!(item, 17),
            other => panic!("{other:?}"),
        }
        shop.open.clear();
        shop.open_pos.clear();
        assert!(shop.plan(Kind::Return, &mut rng).is_none());
    }
}
