//! Pure decoders for Postgres' binary formats (as sent by binary COPY), into the
//! representations DuckDB stores. No I/O, no DuckDB calls: unit-testable.

/// Days from 1970-01-01 (DuckDB's epoch) to 2000-01-01 (Postgres').
pub const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds between the two epochs.
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Why a value could not be converted; the caller adds table and column.
#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

type R<T> = Result<T, DecodeError>;

#[inline]
fn need(b: &[u8], n: usize, what: &str) -> R<()> {
    if b.len() != n {
        return Err(wrong_length(b.len(), n, what));
    }
    Ok(())
}

#[cold]
#[inline(never)]
fn wrong_length(len: usize, n: usize, what: &str) -> DecodeError {
    DecodeError(format!("{what} value has {len} bytes, expected {n}"))
}

#[inline]
pub fn i16_be(b: &[u8]) -> R<i16> {
    need(b, 2, "int2")?;
    Ok(i16::from_be_bytes([b[0], b[1]]))
}
#[inline]
pub fn i32_be(b: &[u8]) -> R<i32> {
    need(b, 4, "int4")?;
    Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}
#[inline]
pub fn i64_be(b: &[u8]) -> R<i64> {
    need(b, 8, "int8")?;
    Ok(i64::from_be_bytes(b.try_into().expect("8 bytes")))
}

/// Postgres date → DuckDB date (days since 1970). ±infinity map to DuckDB's ±infinity.
#[inline]
pub fn date(b: &[u8]) -> R<i32> {
    let d = i32_be(b)?;
    Ok(match d {
        i32::MAX => i32::MAX,
        i32::MIN => -i32::MAX,
        d => d
            .checked_add(PG_EPOCH_DAYS)
            .ok_or_else(|| DecodeError(format!("date {} is out of DuckDB's range", pg_date_text(d))))?,
    })
}

/// Postgres timestamp/timestamptz → DuckDB micros since 1970 (UTC for tz).
/// ±infinity map to DuckDB's ±infinity.
#[inline]
pub fn timestamp(b: &[u8]) -> R<i64> {
    let t = i64_be(b)?;
    Ok(match t {
        i64::MAX => i64::MAX,
        i64::MIN => -i64::MAX,
        t => t
            .checked_add(PG_EPOCH_MICROS)
            // DuckDB's ±infinity are ±i64::MAX; every value between them is a timestamp.
            .filter(|v| *v < i64::MAX && *v > -i64::MAX)
            .ok_or_else(|| timestamp_out_of_range(t))?,
    })
}

#[cold]
#[inline(never)]
fn timestamp_out_of_range(t: i64) -> DecodeError {
    DecodeError(format!(
        "timestamp {} is out of DuckDB's range (it ends at 294247-01-10)",
        pg_timestamp_text(t)
    ))
}

/// Year, month and day of a day count from 1970-01-01 (proleptic Gregorian;
/// Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A date the way Postgres prints it: year 0 and before as `… BC`.
fn ymd_text(days_since_1970: i64) -> String {
    let (y, m, d) = civil_from_days(days_since_1970);
    if y > 0 {
        format!("{y:04}-{m:02}-{d:02}")
    } else {
        format!("{:04}-{m:02}-{d:02} BC", 1 - y)
    }
}

/// The text of a Postgres date (days since 2000-01-01), for messages.
fn pg_date_text(days_since_2000: i32) -> String {
    ymd_text(i64::from(days_since_2000) + i64::from(PG_EPOCH_DAYS))
}

/// The text of a Postgres timestamp (µs since 2000-01-01), for messages.
fn pg_timestamp_text(us_since_2000: i64) -> String {
    const DAY: i64 = 86_400_000_000;
    let days = us_since_2000.div_euclid(DAY);
    let us = us_since_2000.rem_euclid(DAY);
    let (h, mi, sec, frac) = (
        us / 3_600_000_000,
        us / 60_000_000 % 60,
        us / 1_000_000 % 60,
        us % 1_000_000,
    );
    let date = ymd_text(days + i64::from(PG_EPOCH_DAYS));
    let time = format!("{h:02}:{mi:02}:{sec:02}.{frac:06}");
    match date.strip_suffix(" BC") {
        Some(d) => format!("{d} {time} BC"),
        None => format!("{date} {time}"),
    }
}

/// Postgres interval (micros, days, months) → (months, days, micros).
#[inline]
pub fn interval(b: &[u8]) -> R<(i32, i32, i64)> {
    need(b, 16, "interval")?;
    let micros = i64::from_be_bytes(b[0..8].try_into().expect("8"));
    let days = i32::from_be_bytes(b[8..12].try_into().expect("4"));
    let months = i32::from_be_bytes(b[12..16].try_into().expect("4"));
    Ok((months, days, micros))
}

/// Postgres uuid (16 bytes, big-endian) → DuckDB's hugeint storage [lower, upper]
/// (the upper half has its sign bit flipped so that UUIDs sort as bytes).
#[inline]
pub fn uuid(b: &[u8]) -> R<[u64; 2]> {
    need(b, 16, "uuid")?;
    let upper = u64::from_be_bytes(b[0..8].try_into().expect("8")) ^ (1u64 << 63);
    let lower = u64::from_be_bytes(b[8..16].try_into().expect("8"));
    Ok([lower, upper])
}

/// A Postgres numeric in binary form.
pub struct Numeric<'a> {
    weight: i16,
    sign: u16,
    dscale: u16,
    digits: &'a [u8],
}

const NUMERIC_NEG: u16 = 0x4000;
/// 10^0 ..= 10^(N-1) in type T.
macro_rules! pow10_table {
    ($t:ty, $n:literal) => {{
        let mut t: [$t; $n] = [1; $n];
        let mut i = 1;
        while i < $n {
            t[i] = t[i - 1] * 10;
            i += 1;
        }
        t
    }};
}
const POW10_I128: [i128; 39] = pow10_table!(i128, 39);
const POW10_I64: [i64; 19] = pow10_table!(i64, 19);
const POW10_U16: [u16; 4] = [1, 10, 100, 1000];

const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// A numeric value × 10^scale, for a DECIMAL(width, scale) of at most 18 digits (stored
/// in 16, 32 or 64 bits); the error names a value that does not fit exactly.
///
/// The same sum as [`Numeric::to_scaled`], written for the column writer's loop: no
/// intermediate struct, and the trailing digits beyond the scale divided by constants.
#[inline]
pub fn decimal_i64(b: &[u8], width: u8, scale: u8) -> R<i64> {
    debug_assert!(width <= 18);
    if b.len() < 8 {
        return Err(decimal_error(b, width, scale));
    }
    let ndigits = usize::from(u16::from_be_bytes([b[0], b[1]]));
    let weight = i32::from(i16::from_be_bytes([b[2], b[3]]));
    let sign = u16::from_be_bytes([b[4], b[5]]);
    if b.len() != 8 + 2 * ndigits || (sign != 0 && sign != NUMERIC_NEG) {
        return Err(decimal_error(b, width, scale));
    }
    let mut acc: i64 = 0;
    // The power of ten of the first base-10000 digit, scaled.
    let mut e = 4 * weight + i32::from(scale);
    for d in b[8..].chunks_exact(2) {
        let d = i64::from(u16::from_be_bytes([d[0], d[1]]));
        let term = match e {
            _ if d == 0 => Some(0),
            0..=18 => d.checked_mul(POW10_I64[e as usize]),
            // Only the digit's trailing zeros may fall beyond the scale.
            -1 => (d % 10 == 0).then_some(d / 10),
            -2 => (d % 100 == 0).then_some(d / 100),
            -3 => (d % 1000 == 0).then_some(d / 1000),
            _ => None,
        };
        match term.and_then(|t| acc.checked_add(t)) {
            Some(a) => acc = a,
            None => return Err(decimal_error(b, width, scale)),
        }
        e -= 4;
    }
    if acc >= POW10_I64[usize::from(width)] {
        return Err(decimal_error(b, width, scale));
    }
    Ok(if sign == NUMERIC_NEG { -acc } else { acc })
}

#[cold]
#[inline(never)]
fn decimal_error(b: &[u8], width: u8, scale: u8) -> DecodeError {
    match Numeric::parse(b) {
        Ok(n) => n.does_not_fit(width, scale),
        Err(e) => e,
    }
}

impl<'a> Numeric<'a> {
    pub fn parse(b: &'a [u8]) -> R<Numeric<'a>> {
        if b.len() < 8 {
            return Err(DecodeError("numeric value is truncated".into()));
        }
        let ndigits = u16::from_be_bytes([b[0], b[1]]) as usize;
        let weight = i16::from_be_bytes([b[2], b[3]]);
        let sign = u16::from_be_bytes([b[4], b[5]]);
        let dscale = u16::from_be_bytes([b[6], b[7]]);
        if b.len() != 8 + 2 * ndigits {
            return Err(DecodeError("numeric value has a bad length".into()));
        }
        Ok(Numeric {
            weight,
            sign,
            dscale,
            digits: &b[8..],
        })
    }

    fn digit(&self, i: usize) -> u16 {
        u16::from_be_bytes([self.digits[2 * i], self.digits[2 * i + 1]])
    }

    fn ndigits(&self) -> usize {
        self.digits.len() / 2
    }

    /// The value scaled by 10^scale as an integer, if it is exact and has at most
    /// `width` digits; otherwise None.
    ///
    /// Summed in i128, for DECIMALs of any width; those of up to 18 digits are decoded by
    /// [`decimal_i64`] instead (a checked 128-bit multiply is a library call).
    pub fn to_scaled(&self, width: u8, scale: u8) -> Option<i128> {
        if matches!(self.sign, NUMERIC_NAN | NUMERIC_PINF | NUMERIC_NINF) || width > 38 {
            return None;
        }
        // value * 10^scale = sum of digit_i * 10^(4 * (weight - i) + scale): each
        // base-10000 group is placed at its own power of ten, so no intermediate
        // value is wider than the result (a 38-digit DECIMAL fits i128).
        let mut acc: i128 = 0;
        for i in 0..self.ndigits() {
            let d = self.digit(i);
            if d == 0 {
                continue;
            }
            let e = 4 * (i32::from(self.weight) - i as i32) + i32::from(scale);
            let term = if e >= 0 {
                i128::from(d).checked_mul(*POW10_I128.get(e as usize)?)?
            } else if e > -4 {
                // Only the group's trailing zeros may fall beyond the scale.
                let div = POW10_U16[(-e) as usize];
                if !d.is_multiple_of(div) {
                    return None;
                }
                i128::from(d / div)
            } else {
                return None;
            };
            acc = acc.checked_add(term)?;
        }
        if acc >= POW10_I128[usize::from(width)] {
            return None;
        }
        Some(if self.sign == NUMERIC_NEG { -acc } else { acc })
    }

    /// The error for a value that is not exactly a DECIMAL(width, scale).
    #[cold]
    #[inline(never)]
    pub fn does_not_fit(&self, width: u8, scale: u8) -> DecodeError {
        DecodeError(format!(
            "numeric value {} does not fit DECIMAL({width},{scale}) exactly",
            self.to_text()
        ))
    }

    /// Postgres' text form, for messages.
    pub fn to_text(&self) -> String {
        match self.sign {
            NUMERIC_NAN => return "NaN".into(),
            NUMERIC_PINF => return "Infinity".into(),
            NUMERIC_NINF => return "-Infinity".into(),
            _ => {}
        }
        let mut int_part = String::new();
        let mut frac_part = String::new();
        let n = self.ndigits() as i32;
        let w = i32::from(self.weight);
        for g in 0..=w.max(0) {
            let d = if g < n && g <= w { self.digit(g as usize) } else { 0 };
            if g > w {
                break;
            }
            if int_part.is_empty() {
                if d != 0 {
                    int_part = d.to_string();
                }
            } else {
                int_part.push_str(&format!("{d:04}"));
            }
        }
        if int_part.is_empty() {
            int_part.push('0');
        }
        let mut g = w + 1;
        while (frac_part.len() as i32) < i32::from(self.dscale) {
            let d = if g >= 0 && g < n { self.digit(g as usize) } else { 0 };
            frac_part.push_str(&format!("{d:04}"));
            g += 1;
        }
        frac_part.truncate(self.dscale as usize);
        let sign = if self.sign == NUMERIC_NEG { "-" } else { "" };
        if frac_part.is_empty() {
            format!("{sign}{int_part}")
        } else {
            format!("{sign}{int_part}.{frac_part}")
        }
    }
}

/// The header of a binary array value.
pub struct ArrayHeader {
    pub ndim: i32,
    pub elem_oid: u32,
    /// Elements in total (product of the dimensions).
    pub len: usize,
    /// Offset of the first element in the value.
    pub data_start: usize,
}

pub fn array_header(b: &[u8]) -> R<ArrayHeader> {
    if b.len() < 12 {
        return Err(DecodeError("array value is truncated".into()));
    }
    let ndim = i32::from_be_bytes(b[0..4].try_into().expect("4"));
    let elem_oid = u32::from_be_bytes(b[8..12].try_into().expect("4"));
    if ndim < 0 || b.len() < 12 + 8 * ndim as usize {
        return Err(DecodeError("array value is truncated".into()));
    }
    let mut len: usize = if ndim == 0 { 0 } else { 1 };
    for d in 0..ndim as usize {
        let dl = i32::from_be_bytes(b[12 + 8 * d..16 + 8 * d].try_into().expect("4"));
        len = len.saturating_mul(dl.max(0) as usize);
    }
    Ok(ArrayHeader {
        ndim,
        elem_oid,
        len,
        data_start: 12 + 8 * ndim as usize,
    })
}

/// Iterates over the fields of a tuple (or the elements of an array):
/// `Some(bytes)` for a value, `None` for NULL.
pub struct Fields<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Fields<'a> {
    pub fn new(b: &'a [u8], start: usize) -> Fields<'a> {
        Fields { b, p: start }
    }

    #[inline]
    pub fn next_field(&mut self) -> R<Option<&'a [u8]>> {
        let (start, len) = self.next_span()?;
        Ok((len >= 0).then(|| &self.b[start..start + len as usize]))
    }

    /// Where the next field's bytes start, and its length (negative for NULL).
    #[inline]
    pub fn next_span(&mut self) -> R<(usize, i32)> {
        let b = self.b;
        let w = b.get(self.p..self.p + 4).ok_or_else(truncated)?;
        let len = i32::from_be_bytes([w[0], w[1], w[2], w[3]]);
        self.p += 4;
        let start = self.p;
        if len > 0 {
            self.p += len as usize;
            if self.p > b.len() {
                return Err(truncated());
            }
        }
        Ok((start, len))
    }

    /// Where the next field's length word starts (past the last field: where they end).
    pub fn position(&self) -> usize {
        self.p
    }
}

#[cold]
fn truncated() -> DecodeError {
    DecodeError("tuple is truncated".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_are_named_in_postgres_text() {
        // Postgres' last timestamp, 294276-12-31 23:59:59.999999: its END_TIMESTAMP - 1 µs.
        let last: i64 = 9_223_371_331_200_000_000 - 1;
        let e = timestamp(&last.to_be_bytes()).unwrap_err().0;
        assert_eq!(
            e,
            "timestamp 294276-12-31 23:59:59.999999 is out of DuckDB's range (it ends at 294247-01-10)"
        );
        // DuckDB's last timestamp (i64::MAX - 1 µs after 1970) arrives; one µs later is an error.
        let duck_last = i64::MAX - 1 - PG_EPOCH_MICROS;
        assert_eq!(timestamp(&duck_last.to_be_bytes()).unwrap(), i64::MAX - 1);
        let e = timestamp(&(duck_last + 1).to_be_bytes()).unwrap_err().0;
        assert!(e.starts_with("timestamp 294247-01-10 04:00:54.775807 is out of"), "{e}");
        assert_eq!(pg_timestamp_text(0), "2000-01-01 00:00:00.000000");
        assert_eq!(pg_timestamp_text(-1), "1999-12-31 23:59:59.999999");
        // Postgres' first day, Julian day 0 (values checked against Postgres' own date arithmetic).
        assert_eq!(pg_date_text(-2_451_545), "4714-11-24 BC");
        assert_eq!(pg_date_text(-730_119), "0001-01-01");
        assert_eq!(pg_date_text(-730_120), "0001-12-31 BC");
    }

    fn numeric(ndigits: &[u16], weight: i16, sign: u16, dscale: u16) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(ndigits.len() as u16).to_be_bytes());
        b.extend_from_slice(&weight.to_be_bytes());
        b.extend_from_slice(&sign.to_be_bytes());
        b.extend_from_slice(&dscale.to_be_bytes());
        for d in ndigits {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b
    }

    #[test]
    fn decimals_in_64_bits_match_128() {
        let cases: Vec<Vec<u8>> = vec![
            numeric(&[12, 3456, 7000], 1, 0, 4),
            numeric(&[99], -1, 0x4000, 2),
            numeric(&[], 0, 0, 0),
            numeric(&[1], 4, 0, 0),
            numeric(&[9999, 9999, 9999, 9999, 99], 3, 0, 2),
            numeric(&[9999, 9999, 9999, 9999, 9999], 4, 0x4000, 0),
            numeric(&[1, 5], 0, 0, 4),
            numeric(&[3, 1415, 9265], 0, 0, 8),
        ];
        assert!(decimal_i64(&numeric(&[], 0, NUMERIC_NAN, 0), 5, 2).is_err());
        assert_eq!(decimal_i64(&[0, 1], 5, 2).unwrap_err().0, "numeric value is truncated");
        assert_eq!(
            decimal_i64(&numeric(&[1], 0, 0, 0)[..9], 5, 2).unwrap_err().0,
            "numeric value has a bad length"
        );
        for b in &cases {
            let n = Numeric::parse(b).unwrap();
            for width in 1..=18u8 {
                for scale in 0..=width {
                    // The 64-bit path: the same value as the 128-bit one, or the error naming it.
                    match (decimal_i64(b, width, scale), n.to_scaled(width, scale)) {
                        (Ok(x), Some(y)) => assert_eq!(i128::from(x), y),
                        (Err(e), None) => assert_eq!(
                            e.0,
                            format!(
                                "numeric value {} does not fit DECIMAL({width},{scale}) exactly",
                                n.to_text()
                            )
                        ),
                        (x, y) => panic!("{} as DECIMAL({width},{scale}): {x:?} against {y:?}", n.to_text()),
                    }
                }
            }
        }
    }

    #[test]
    fn numerics() {
        // 12345.67 = [1, 2345, 6700], weight 1
        let b = numeric(&[1, 2345, 6700], 1, 0, 2);
        let n = Numeric::parse(&b).unwrap();
        assert_eq!(n.to_scaled(7, 2), Some(1_234_567));
        assert_eq!(n.to_scaled(9, 4), Some(123_456_700));
        assert_eq!(n.to_scaled(6, 2), None, "7 digits do not fit width 6");
        assert_eq!(n.to_scaled(7, 1), None, "would lose the last digit");
        assert_eq!(n.to_text(), "12345.67");
        // -0.99
        let b = numeric(&[9900], -1, NUMERIC_NEG, 2);
        let n = Numeric::parse(&b).unwrap();
        assert_eq!(n.to_scaled(5, 2), Some(-99));
        assert_eq!(n.to_text(), "-0.99");
        // 0
        let b = numeric(&[], 0, 0, 2);
        assert_eq!(Numeric::parse(&b).unwrap().to_scaled(5, 2), Some(0));
        assert_eq!(Numeric::parse(&b).unwrap().to_text(), "0.00");
        // 1e30 with scale 10 does not fit DECIMAL(38,10)
        let b = numeric(&[1], 7, 0, 0);
        assert_eq!(Numeric::parse(&b).unwrap().to_scaled(38, 10), None);
        assert_eq!(Numeric::parse(&b).unwrap().to_text(), "10000000000000000000000000000");
        // 38 significant digits: 9999999999999999999999999999.9999999999 = seven
        // integer groups and three fraction groups (the last one 9900).
        let mut groups = vec![9999u16; 9];
        groups.push(9900);
        let b = numeric(&groups, 6, 0, 10);
        let n = Numeric::parse(&b).unwrap();
        assert_eq!(n.to_scaled(38, 10), Some(10i128.pow(38) - 1));
        assert_eq!(n.to_text(), "9999999999999999999999999999.9999999999");
        // -0.99999999999999999999999999999999999999 in numeric(38,38)
        let mut groups = vec![9999u16; 9];
        groups.push(9900);
        let b = numeric(&groups, -1, NUMERIC_NEG, 38);
        assert_eq!(
            Numeric::parse(&b).unwrap().to_scaled(38, 38),
            Some(-(10i128.pow(38) - 1))
        );
        let b = numeric(&[], 0, NUMERIC_NAN, 0);
        assert_eq!(Numeric::parse(&b).unwrap().to_scaled(38, 10), None);
        assert_eq!(Numeric::parse(&b).unwrap().to_text(), "NaN");
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(date(&0i32.to_be_bytes()).unwrap(), 10_957);
        assert_eq!(date(&i32::MAX.to_be_bytes()).unwrap(), i32::MAX);
        assert_eq!(date(&i32::MIN.to_be_bytes()).unwrap(), -i32::MAX);
        assert_eq!(timestamp(&0i64.to_be_bytes()).unwrap(), PG_EPOCH_MICROS);
        assert_eq!(timestamp(&i64::MIN.to_be_bytes()).unwrap(), -i64::MAX);
        assert!(date(&[0, 1]).is_err());
    }

    #[test]
    fn uuids() {
        let b: Vec<u8> = (0u8..16).collect();
        let [lower, upper] = uuid(&b).unwrap();
        assert_eq!(lower, 0x0809_0a0b_0c0d_0e0f);
        assert_eq!(upper, 0x0001_0203_0405_0607 ^ (1 << 63));
    }

    #[test]
    fn fields() {
        let mut b = Vec::new();
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&[1, 2]);
        b.extend_from_slice(&(-1i32).to_be_bytes());
        let mut f = Fields::new(&b, 0);
        assert_eq!(f.next_field().unwrap(), Some(&[1u8, 2][..]));
        assert_eq!(f.next_field().unwrap(), None);
        assert!(f.next_field().is_err());
    }
}
