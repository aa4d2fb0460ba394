//! A small, fully deterministic PRNG (SplitMix64).
//!
//! The generator must produce byte-identical data for the same seed and scale on
//! every platform and every build, so it uses its own generator instead of a crate
//! whose stream could change between versions. Every table draws from its own
//! stream (`Rng::stream(seed, "table")`), so the reference tables do not change
//! when the scale (and with it the number of draws for other tables) changes.

#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function, also used to hash stream names into seeds.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// An independent stream for one purpose (for example one table), derived from
    /// the user seed and a name with FNV-1a, then mixed.
    pub fn stream(seed: u64, name: &str) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
        Rng::new(mix(seed ^ mix(h)))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in `0..n` (n > 0), by Lemire's multiply-shift (the tiny bias is
    /// irrelevant here and the result is deterministic).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    #[inline]
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One element of a non-empty slice.
    #[inline]
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Selection sampling (Knuth's Algorithm S): choose exactly `want` of `total`
/// items visited in order, each subset equally likely, without storing anything.
#[derive(Clone, Debug)]
pub struct Selector {
    remaining: u64,
    want: u64,
}

impl Selector {
    pub fn new(want: u64, total: u64) -> Selector {
        Selector {
            remaining: total,
            want: want.min(total),
        }
    }

    /// Call once per item, in order; returns whether this item is chosen.
    #[inline]
    pub fn take(&mut self, rng: &mut Rng) -> bool {
        if self.remaining == 0 {
            return false;
        }
        let chosen = self.want > 0 && rng.below(self.remaining) < self.want;
        self.remaining -= 1;
        if chosen {
            self.want -= 1;
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::stream(42, "rental");
        let mut b = Rng::stream(42, "rental");
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn streams_and_seeds_differ() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::stream(42, "rental");
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::stream(42, "payment");
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::stream(43, "rental");
                move |_| r.next_u64()
            })
            .collect();
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn known_splitmix_values() {
        // Reference values of SplitMix64 seeded with 0.
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn bounds() {
        let mut r = Rng::new(7);
        for _ in 0..10_000 {
            let v = r.range(-3, 5);
            assert!((-3..=5).contains(&v));
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn selector_takes_exact_count() {
        let mut r = Rng::new(1);
        for &(want, total) in &[(0u64, 10u64), (3, 10), (10, 10), (183, 732), (12, 5)] {
            let mut s = Selector::new(want, total);
            let n = (0..total).filter(|_| s.take(&mut r)).count() as u64;
            assert_eq!(n, want.min(total));
        }
    }
}
