//! A mergeable latency sketch: a histogram of integer milliseconds over logarithmic
//! buckets (the DDSketch mapping), from which any quantile is read with a bounded relative
//! error, and which merges by adding counts, so that rollup cells written by different
//! batches, loaders and grains combine into exactly the sketch of all their values.
//!
//! # Buckets
//!
//! Zero has a count of its own. A value v ≥ 1 goes to bucket ⌈log_γ v⌉ with
//! γ = (1 + α)/(1 − α) and α = 1/100, i.e. γ = 101/99 exactly: bucket i holds the integers
//! in (γ^(i−1), γ^i]. The largest integer of each bucket, ⌊γ^i⌋, is computed exactly at
//! compile time (γ is a ratio of integers), so the mapping is the same on every platform
//! and in SQL (`sql/sketch_quantile.sql` computes the same bounds with `numeric`).
//! `i32::MAX` falls into bucket [`MAX_INDEX`] = 1075; only 929 of the 1076 buckets can
//! hold an integer at all. Buckets are never collapsed, so merging is addition.
//!
//! # Accuracy
//!
//! Let x be the value `percentile_disc(q)` returns over the same values: with n values
//! in ascending order, the one at rank max(1, ⌈q·n⌉). [`Sketch::quantile`] finds the
//! bucket that holds the value of that rank; the integers that bucket can hold, narrowed
//! to [min, max], are lo..=hi, and the estimate is x̂ = 2·lo·hi/(lo + hi), the point
//! whose largest relative distance to lo and hi is smallest. Hence, for every q in [0, 1]:
//!
//! - |x̂ − x| ≤ x·(hi − lo)/(hi + lo) < x·α: always within 1% of x. Over all buckets the
//!   largest bound is 0.99999999% (bucket 1050, 1293605833..=1319739284 ms).
//! - x̂ = x whenever lo = hi: for every x ≤ 57 (each integer from 0 to 57 has a bucket of
//!   its own), and whenever x's bucket holds no other integer in [min, max] (for example
//!   when all values are equal).
//!
//! count, sum, min and max are kept exactly beside the buckets.
//!
//! # Encoding
//!
//! [`Sketch::encode`] writes a compact `bytea` value: a version byte (1), then unsigned
//! LEB128 varints: the count of zeros, the number of non-empty buckets, and, unless the
//! sketch is empty, min, max − min and sum, followed by one (index, count) pair per
//! non-empty bucket in ascending order, each index but the first written as the
//! difference from the previous one. The encoding is canonical (shortest varints, no
//! empty buckets): equal sketches encode to equal bytes, and [`Sketch::decode`] accepts
//! only what `encode` can write. A typical rollup cell takes a few hundred bytes.

/// The highest bucket index a latency can reach: the bucket of `i32::MAX`.
pub const MAX_INDEX: usize = 1075;

/// The version byte of [`Sketch::encode`]'s format, which `logctl_sketch_quantile` checks too.
const ENCODING_VERSION: u8 = 1;

/// `UPPER[i]` = ⌊γ^i⌋, the largest integer of bucket i (whose smallest is `UPPER[i − 1] + 1`).
static UPPER: [u32; MAX_INDEX + 1] = upper_bounds();

const _: () = assert!(
    (UPPER[MAX_INDEX - 1] as u64) < i32::MAX as u64 && UPPER[MAX_INDEX] as u64 >= i32::MAX as u64,
    "MAX_INDEX must be the bucket of i32::MAX"
);

/// ⌊(101/99)^i⌋ for every bucket index. γ^i is bracketed in fixed point with 88 fraction
/// bits, rounding the lower end down and the upper end up at every step; the bracket stays
/// far narrower than the closest approach of any γ^i (i ≤ 1075) to an integer (1.2e-11
/// relative), so both ends have the same integer part, which the assertion proves while
/// compiling. 2^31 · 2^88 · 101 < 2^128, so nothing overflows.
const fn upper_bounds() -> [u32; MAX_INDEX + 1] {
    const FRACTION_BITS: u32 = 88;
    let mut bounds = [0; MAX_INDEX + 1];
    let mut low: u128 = 1 << FRACTION_BITS;
    let mut high: u128 = 1 << FRACTION_BITS;
    let mut index = 0;
    while index <= MAX_INDEX {
        let floor = low >> FRACTION_BITS;
        assert!(
            floor == high >> FRACTION_BITS,
            "a bucket bound is ambiguous"
        );
        bounds[index] = floor as u32;
        low = low * 101 / 99;
        high = (high * 101).div_ceil(99);
        index += 1;
    }
    bounds
}

/// The bucket of the smallest integer that shares a value's octave and its 7 bits below
/// the leading one, indexed by `octave * 128 + those bits`. Such a group of integers spans
/// less than a factor 1 + 1/128 < γ, so it meets at most two buckets: a value's bucket is
/// this one or the next (see `bucket_of`). This replaces a logarithm per value by two
/// table reads.
static FIRST_BUCKET: [u16; 32 * 128] = first_buckets();

const fn first_buckets() -> [u16; 32 * 128] {
    let mut table = [MAX_INDEX as u16; 32 * 128];
    let mut bucket = 0;
    let mut key = 0;
    // Octave 31 holds no i32, so its entries keep MAX_INDEX.
    while key < 31 * 128 {
        let octave = key / 128;
        let leading_bits = 128 + (key % 128) as u64;
        // Rounded up: below octave 7 a group can be empty, and its entry is then never read.
        let smallest = ((leading_bits << octave) + 127) >> 7;
        while (UPPER[bucket] as u64) < smallest {
            bucket += 1;
        }
        table[key] = bucket as u16;
        key += 1;
    }
    table
}

/// The bucket index of a value from 1 to `i32::MAX`.
#[inline]
fn bucket_of(value: u32) -> usize {
    let leading_zeros = value.leading_zeros();
    let octave = 31 - leading_zeros;
    let leading_bits = (value << leading_zeros) >> 24;
    let key = (octave * 128 + leading_bits - 128) as usize;
    let first = usize::from(FIRST_BUCKET[key & (32 * 128 - 1)]);
    first + usize::from(value > UPPER[first])
}

/// The integers bucket `index` can hold.
fn bucket_integers(index: usize) -> (u32, u32) {
    let lowest = if index == 0 { 1 } else { UPPER[index - 1] + 1 };
    (lowest, UPPER[index])
}

/// A latency sketch: see the module documentation for the buckets, the accuracy and the
/// encoding.
///
/// The bucket counts are a dense window over the indexes from `offset`, whose first and
/// last counts are never zero, so equal sketches are equal field by field. That makes
/// `add` a table lookup and an increment, at a cost in memory of 8 bytes per bucket
/// between the lowest and the highest value's: 2.5 KB for values from 5 ms to 3 s, 8.6 KB
/// at most.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch {
    count: u64,
    sum: u64,
    /// Both 0 while `count` is 0.
    min: u32,
    max: u32,
    zeros: u64,
    offset: usize,
    counts: Vec<u64>,
}

impl Sketch {
    pub fn new() -> Sketch {
        Sketch::default()
    }

    /// Records one latency. A negative value, which the `latency_ms` column refuses,
    /// counts as 0 rather than failing the load.
    #[inline]
    pub fn add(&mut self, ms: i32) {
        let value = ms.max(0) as u32;
        self.add_totals(1, u64::from(value), u64::from(value == 0), value, value);
        if value > 0 {
            self.add_to_bucket(bucket_of(value), 1);
        }
    }

    /// Adds every value of `other`, as if they had been added to this sketch.
    pub fn merge(&mut self, other: &Sketch) {
        if other.count == 0 {
            return;
        }
        self.add_totals(other.count, other.sum, other.zeros, other.min, other.max);
        if other.counts.is_empty() {
            return;
        }
        self.cover(other.offset, other.offset + other.counts.len() - 1);
        let start = other.offset - self.offset;
        for (mine, theirs) in self.counts[start..].iter_mut().zip(&other.counts) {
            *mine = mine.saturating_add(*theirs);
        }
    }

    /// How many values were added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of the values (saturating at `u64::MAX`, some 292 million years).
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// The smallest value, or `None` for an empty sketch.
    pub fn min(&self) -> Option<i32> {
        (self.count > 0).then_some(self.min as i32)
    }

    /// The largest value, or `None` for an empty sketch.
    pub fn max(&self) -> Option<i32> {
        (self.count > 0).then_some(self.max as i32)
    }

    /// The estimate of `percentile_disc(q)` over the values, within 1% of it (see the
    /// module documentation). `None` for an empty sketch (where `percentile_disc` gives
    /// NULL) and for a `q` outside [0, 1] (which `percentile_disc` refuses).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        // The very expression of PostgreSQL's percentile_disc, in the same floating point.
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        let mut seen = self.zeros;
        if seen >= rank {
            return Some(0.0);
        }
        for (slot, &count) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(count);
            if seen >= rank {
                return Some(self.estimate(self.offset + slot));
            }
        }
        // Only reachable once counts have saturated.
        Some(f64::from(self.max))
    }

    /// How many values are at most `ms`, each bucket counted whole by the value that
    /// represents it (as quantiles are read): exact up to 57 ms, and beyond it a value
    /// within 1% of `ms` may fall on the other side (the histograms' bin edges are that
    /// close).
    pub fn count_at_most(&self, ms: i32) -> u64 {
        if self.count == 0 || ms < 0 {
            return 0;
        }
        let ms = ms as u32;
        if ms >= self.max {
            return self.count;
        }
        let mut seen = self.zeros;
        for (slot, &count) in self.counts.iter().enumerate() {
            if self.estimate(self.offset + slot) > f64::from(ms) {
                break;
            }
            seen = seen.saturating_add(count);
        }
        seen
    }

    /// The value that represents bucket `index`: see the module documentation.
    fn estimate(&self, index: usize) -> f64 {
        let (lowest, highest) = bucket_integers(index);
        let low = u64::from(lowest.max(self.min));
        let high = u64::from(highest.min(self.max));
        // Exact in u64 (2·lo·hi < 2^63), then one rounding each way, as the SQL does.
        (2 * low * high) as f64 / (low + high) as f64
    }

    /// Appends the encoding (see the module documentation) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(ENCODING_VERSION);
        put_varint(out, self.zeros);
        // Counted over the plain slice, which vectorizes: encoding is most of what a
        // compaction does per cell.
        put_varint(
            out,
            self.counts.iter().filter(|&&count| count > 0).count() as u64,
        );
        if self.count == 0 {
            return;
        }
        put_varint(out, u64::from(self.min));
        put_varint(out, u64::from(self.max - self.min));
        put_varint(out, self.sum);
        let mut previous = None;
        for (index, count) in self.buckets() {
            put_varint(out, (index - previous.unwrap_or(0)) as u64);
            put_varint(out, count);
            previous = Some(index);
        }
    }

    /// Reads what [`Sketch::encode`] wrote. Anything else, including truncated or
    /// altered bytes, is an error, never a panic; reading takes memory bounded by the
    /// number of buckets, whatever the input.
    pub fn decode(bytes: &[u8]) -> crate::Result<Sketch> {
        Ok(Sketch::decode_checked(bytes)?)
    }

    /// Adds the sketch that `bytes` encode, as [`Sketch::merge`] would add it once
    /// decoded, without building it: a reader that merges many cells does no more than
    /// read their bytes. On an error this sketch is left partly merged, and must not be
    /// used.
    pub fn merge_encoded(&mut self, bytes: &[u8]) -> crate::Result<()> {
        Ok(self.merge_encoding(bytes)?)
    }

    fn decode_checked(bytes: &[u8]) -> Result<Sketch, DecodeProblem> {
        let mut sketch = Sketch::default();
        sketch.merge_encoding(bytes)?;
        Ok(sketch)
    }

    fn merge_encoding(&mut self, bytes: &[u8]) -> Result<(), DecodeProblem> {
        use DecodeProblem::Corrupt;
        let mut reader = Reader { bytes };
        let version = reader.byte()?;
        if version != ENCODING_VERSION {
            return Err(DecodeProblem::UnknownVersion(version));
        }
        let zeros = reader.varint()?;
        let buckets = reader.varint()?;
        if buckets > (MAX_INDEX + 1) as u64 {
            return Err(Corrupt("more buckets than there are"));
        }
        if zeros == 0 && buckets == 0 {
            return reader.finish();
        }
        let within_i32 = |value: u64| value <= i32::MAX as u64;
        let min = reader.varint()?;
        let spread = reader.varint()?;
        let sum = reader.varint()?;
        if !within_i32(min) || !within_i32(spread) || !within_i32(min + spread) {
            return Err(Corrupt("min or max beyond the range of latency_ms"));
        }
        let (min, max) = (min as u32, (min + spread) as u32);
        let mut count = zeros;
        let (mut lowest, mut highest) = (None, None);
        if buckets > 0 {
            let first = reader.varint()?;
            if first > MAX_INDEX as u64 {
                return Err(Corrupt("a bucket index beyond the last bucket"));
            }
            let first = first as usize;
            // The window this sketch spans, widened once rather than bucket by bucket:
            // its highest bucket is the one of max, so a bucket beyond it is corrupt.
            let top = if max > 0 { bucket_of(max) } else { 0 }.max(first);
            self.cover(first, top);
            let window = &mut self.counts[first - self.offset..=top - self.offset];
            let mut at = 0;
            for bucket in 0..buckets {
                if bucket > 0 {
                    let step = reader.varint()?;
                    if step == 0 {
                        return Err(Corrupt("bucket indexes out of order"));
                    }
                    at = usize::try_from(step).map_or(usize::MAX, |step| at.saturating_add(step));
                }
                let count_here = reader.varint()?;
                if count_here == 0 {
                    return Err(Corrupt("an empty bucket"));
                }
                let slot = window
                    .get_mut(at)
                    .ok_or(Corrupt("max is not in the highest bucket"))?;
                *slot = slot.saturating_add(count_here);
                count = count.saturating_add(count_here);
            }
            (lowest, highest) = (Some(first), Some(first + at));
        }
        reader.finish()?;
        let bucket_of_value = |value: u32| (value > 0).then(|| bucket_of(value));
        if bucket_of_value(min) != if zeros > 0 { None } else { lowest } {
            return Err(Corrupt("min is not in the lowest bucket"));
        }
        if bucket_of_value(max) != highest {
            return Err(Corrupt("max is not in the highest bucket"));
        }
        if u128::from(sum) > u128::from(max) * u128::from(count) {
            return Err(Corrupt("sum larger than count times max"));
        }
        self.add_totals(count, sum, zeros, min, max);
        Ok(())
    }

    /// Adds `count` values (`zeros` of them 0) summing to `sum`, between `min` and `max`,
    /// to the totals; the buckets are the caller's. Saturating, like every count here: a
    /// merged sketch cannot wrap, and saturated sums of non-negative numbers do not
    /// depend on the order of addition.
    #[inline]
    fn add_totals(&mut self, count: u64, sum: u64, zeros: u64, min: u32, max: u32) {
        if self.count == 0 {
            self.min = min;
            self.max = max;
        } else {
            self.min = self.min.min(min);
            self.max = self.max.max(max);
        }
        self.count = self.count.saturating_add(count);
        self.sum = self.sum.saturating_add(sum);
        self.zeros = self.zeros.saturating_add(zeros);
    }

    /// The non-empty buckets: (index, count) in ascending order of index.
    fn buckets(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|&(_, &count)| count > 0)
            .map(|(slot, &count)| (self.offset + slot, count))
    }

    #[inline]
    fn add_to_bucket(&mut self, index: usize, count: u64) {
        match self.counts.get_mut(index.wrapping_sub(self.offset)) {
            Some(slot) => *slot = slot.saturating_add(count),
            None => {
                self.cover(index, index);
                self.counts[index - self.offset] = count;
            }
        }
    }

    /// Widens the window of counts to hold the indexes `low..=high`.
    #[cold]
    fn cover(&mut self, low: usize, high: usize) {
        if self.counts.is_empty() {
            self.offset = low;
            self.counts.resize(high - low + 1, 0);
            return;
        }
        if low < self.offset {
            self.counts
                .splice(0..0, std::iter::repeat_n(0, self.offset - low));
            self.offset = low;
        }
        if high >= self.offset + self.counts.len() {
            self.counts.resize(high - self.offset + 1, 0);
        }
    }
}

impl Extend<i32> for Sketch {
    fn extend<T: IntoIterator<Item = i32>>(&mut self, values: T) {
        for value in values {
            self.add(value);
        }
    }
}

impl FromIterator<i32> for Sketch {
    fn from_iter<T: IntoIterator<Item = i32>>(values: T) -> Sketch {
        let mut sketch = Sketch::new();
        sketch.extend(values);
        sketch
    }
}

/// Why stored bytes are not a sketch this logctl can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecodeProblem {
    UnknownVersion(u8),
    Corrupt(&'static str),
}

impl From<DecodeProblem> for crate::Error {
    fn from(problem: DecodeProblem) -> crate::Error {
        crate::Error::Failed(match problem {
            DecodeProblem::UnknownVersion(version) => format!(
                "a latency sketch is in an unknown format (version {version}; this logctl reads \
                 version {ENCODING_VERSION}); upgrade logctl if a newer one wrote it"
            ),
            DecodeProblem::Corrupt(what) => format!(
                "a latency sketch is corrupt ({what}); recompute the rollups of its time range \
                 from the raw rows with `logctl rollup rebuild`"
            ),
        })
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DecodeProblem> {
        let (&first, rest) = self
            .bytes
            .split_first()
            .ok_or(DecodeProblem::Corrupt("cut short"))?;
        self.bytes = rest;
        Ok(first)
    }

    /// An unsigned LEB128 number in its shortest form.
    #[inline]
    fn varint(&mut self) -> Result<u64, DecodeProblem> {
        // Most numbers of a sketch (index steps, small counts) take one byte.
        match self.bytes.split_first() {
            Some((&byte, rest)) if byte < 0x80 => {
                self.bytes = rest;
                Ok(u64::from(byte))
            }
            _ => self.multi_byte_varint(),
        }
    }

    fn multi_byte_varint(&mut self) -> Result<u64, DecodeProblem> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 {
                    return Err(DecodeProblem::Corrupt("a number not in its shortest form"));
                }
                return Ok(value);
            }
        }
        Err(DecodeProblem::Corrupt("a number beyond 64 bits"))
    }

    fn finish(&self) -> Result<(), DecodeProblem> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeProblem::Corrupt("bytes after the end"))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// What PostgreSQL's `percentile_disc(q)` returns over these values.
    fn percentile_disc(sorted: &[i32], q: f64) -> i32 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    /// Every quantile from 0 to 1 in steps of 0.001 (so 0.5 to 0.999 among them).
    fn quantiles() -> impl Iterator<Item = f64> {
        (0..=1000).map(|step| f64::from(step) / 1000.0)
    }

    /// The largest relative error of the sketch's quantiles against the exact ones.
    fn worst_relative_error(values: &[i32]) -> f64 {
        let sketch: Sketch = values.iter().copied().collect();
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let mut worst: f64 = 0.0;
        for q in quantiles() {
            let exact = f64::from(percentile_disc(&sorted, q));
            let estimate = sketch.quantile(q).unwrap();
            let error = if exact == 0.0 {
                estimate
            } else {
                (estimate - exact).abs() / exact
            };
            worst = worst.max(error);
        }
        worst
    }

    /// The bucket of a value by searching the bounds: what `bucket_of`'s tables shortcut.
    fn searched_bucket(value: u32) -> usize {
        UPPER.partition_point(|&upper| upper < value)
    }

    fn is_latency(value: u32) -> bool {
        (1..=i32::MAX as u32).contains(&value)
    }

    #[test]
    fn counts_at_most_a_value_are_exact_below_57_ms_and_within_1_percent_above() {
        let sketch: Sketch = (0..=2000).collect();
        for ms in [0, 1, 10, 57] {
            assert_eq!(sketch.count_at_most(ms), ms as u64 + 1);
        }
        let counted = sketch.count_at_most(1000);
        assert!((991..=1011).contains(&counted), "{counted}");
        assert_eq!(sketch.count_at_most(5000), 2001);
        assert_eq!(sketch.count_at_most(-1), 0);
    }

    #[test]
    fn the_bucket_tables_agree_with_a_search_of_the_bounds() {
        for value in 1..=1 << 16 {
            assert_eq!(bucket_of(value), searched_bucket(value), "value {value}");
        }
        let around_bounds = UPPER
            .iter()
            .flat_map(|&upper| [upper - 1, upper, upper.saturating_add(1)]);
        // The ends of each group of values that share a table entry.
        let group_ends = (7..31u32).flat_map(|octave| {
            (0..128u32).flat_map(move |bits| {
                let first = (128 + bits) << (octave - 7);
                let last = first + (1 << (octave - 7)) - 1;
                [first, last]
            })
        });
        for value in around_bounds.chain(group_ends).filter(|&v| is_latency(v)) {
            assert_eq!(bucket_of(value), searched_bucket(value), "value {value}");
        }
        assert_eq!(bucket_of(i32::MAX as u32), MAX_INDEX);
    }

    #[test]
    fn buckets_follow_the_logarithmic_mapping() {
        let log_gamma = (101f64 / 99.0).ln();
        let mut value = 1f64;
        while value <= f64::from(i32::MAX) {
            let integer = value as u32;
            let exact_index = f64::from(integer).ln() / log_gamma;
            // Away from the bounds, where floating point cannot decide the side.
            if (exact_index - exact_index.round()).abs() > 1e-6 {
                assert_eq!(
                    bucket_of(integer),
                    exact_index.ceil() as usize,
                    "value {integer}"
                );
            }
            value = value * 1.0007 + 1.0;
        }
    }

    #[test]
    fn the_error_bound_is_under_one_percent_and_small_values_are_exact() {
        let holding_integers: Vec<(u32, u32)> = (0..=MAX_INDEX)
            .map(bucket_integers)
            .filter(|(lowest, highest)| lowest <= highest)
            .collect();
        assert_eq!(holding_integers.len(), 929);
        let bound = |(lowest, highest): (u32, u32)| {
            f64::from(highest - lowest) / (f64::from(highest) + f64::from(lowest))
        };
        let worst = holding_integers
            .iter()
            .copied()
            .map(bound)
            .fold(0.0, f64::max);
        assert!((0.00999999..0.01).contains(&worst), "worst bound {worst}");

        // With 0 and i32::MAX beside it, a value's own bucket is not narrowed by min and max.
        let median_beside_extremes = |value: i32| {
            let sketch: Sketch = [0, value, i32::MAX].into_iter().collect();
            sketch.quantile(0.5).unwrap()
        };
        for value in 1..=57 {
            assert_eq!(median_beside_extremes(value), f64::from(value));
        }
        assert_ne!(median_beside_extremes(58), 58.0);
    }

    #[test]
    fn quantiles_are_within_one_percent_on_adversarial_distributions() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let mut heavy_tail = |count: usize| -> Vec<i32> {
            (0..count)
                .map(|_| {
                    let u: f64 = rng.random::<f64>().max(1e-300);
                    (1.0 / u.powi(3)).min(f64::from(i32::MAX)) as i32
                })
                .collect()
        };
        let bimodal: Vec<i32> = (0..10_000)
            .map(|n| {
                if n % 10 == 0 {
                    3_000 + n % 977
                } else {
                    15 + n % 11
                }
            })
            .collect();
        let mut outlier = vec![120; 9_999];
        outlier.push(i32::MAX);
        let mut half_zeros: Vec<i32> = (0..5_000).collect();
        half_zeros.extend(std::iter::repeat_n(0, 5_000));
        let bucket_ends: Vec<i32> = (0..=MAX_INDEX)
            .map(bucket_integers)
            .flat_map(|(lowest, highest)| [lowest, highest.min(i32::MAX as u32)])
            .filter(|&value| value <= i32::MAX as u32)
            .map(|value| value as i32)
            .collect();
        let distributions: Vec<(&str, Vec<i32>)> = vec![
            ("all equal", vec![250; 10_000]),
            ("bimodal", bimodal),
            ("one huge outlier", outlier),
            ("all zeros", vec![0; 1_000]),
            ("half zeros", half_zeros),
            ("one value", vec![37]),
            ("one large value", vec![1_000_003]),
            ("one zero", vec![0]),
            ("heavy tail up to i32::MAX", heavy_tail(20_000)),
            ("the ends of every bucket", bucket_ends),
            (
                "i32::MAX and its neighbours",
                vec![i32::MAX, i32::MAX - 1, 2_132_831_002],
            ),
        ];
        for (name, values) in distributions {
            let worst = worst_relative_error(&values);
            assert!(worst < 0.01, "{name}: worst relative error {worst}");
        }
        for exact in [vec![250; 10_000], vec![37], vec![0; 3]] {
            assert_eq!(worst_relative_error(&exact), 0.0);
        }
    }

    #[test]
    fn quantile_refuses_what_percentile_disc_refuses() {
        assert_eq!(Sketch::new().quantile(0.5), None);
        let sketch: Sketch = [1, 2, 3].into_iter().collect();
        for q in [-0.01, 1.01, f64::NAN, f64::INFINITY] {
            assert_eq!(sketch.quantile(q), None, "q = {q}");
        }
        assert_eq!(sketch.quantile(0.0), Some(1.0));
        assert_eq!(sketch.quantile(1.0), Some(3.0));
    }

    #[test]
    fn count_sum_min_and_max_are_exact() {
        let mut sketch: Sketch = [5, 0, 1_000_000, i32::MAX].into_iter().collect();
        sketch.add(-3);
        assert_eq!(sketch.count(), 5);
        assert_eq!(sketch.sum(), 5 + 1_000_000 + i32::MAX as u64);
        assert_eq!((sketch.min(), sketch.max()), (Some(0), Some(i32::MAX)));
        let empty = Sketch::new();
        assert_eq!(
            (empty.count(), empty.sum(), empty.min(), empty.max()),
            (0, 0, None, None)
        );
    }

    #[test]
    fn the_encoding_is_the_documented_one() {
        let sketch: Sketch = [0, 1, 2, 2].into_iter().collect();
        let mut bytes = Vec::new();
        sketch.encode(&mut bytes);
        // version, zeros, buckets, min, max - min, sum, (index 0, count 1), (+35, count 2)
        assert_eq!(bytes, [1, 1, 2, 0, 2, 5, 0, 1, 35, 2]);
        bytes.clear();
        Sketch::new().encode(&mut bytes);
        assert_eq!(bytes, [1, 0, 0]);
    }

    #[test]
    fn decoding_refuses_what_encode_cannot_write() {
        use DecodeProblem::{Corrupt, UnknownVersion};
        let cases: [(&[u8], DecodeProblem); 12] = [
            (&[], Corrupt("cut short")),
            (&[2, 0, 0], UnknownVersion(2)),
            (&[1, 0, 0, 0], Corrupt("bytes after the end")),
            (
                &[1, 0x80, 0, 0],
                Corrupt("a number not in its shortest form"),
            ),
            (
                &[
                    1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
                ],
                Corrupt("a number beyond 64 bits"),
            ),
            (
                &[1, 0, 2, 1, 1, 3, 0, 1, 0, 2],
                Corrupt("bucket indexes out of order"),
            ),
            (&[1, 0, 1, 1, 0, 1, 0, 0], Corrupt("an empty bucket")),
            (
                &[1, 0, 1, 1, 0, 1, 0xb4, 0x08, 1],
                Corrupt("a bucket index beyond the last bucket"),
            ),
            (
                &[1, 0, 1, 2, 0, 2, 0, 1],
                Corrupt("min is not in the lowest bucket"),
            ),
            (
                &[1, 1, 1, 0, 1, 1, 35, 1],
                Corrupt("max is not in the highest bucket"),
            ),
            (
                &[1, 0, 1, 1, 0, 2, 0, 1],
                Corrupt("sum larger than count times max"),
            ),
            (&[1, 0, 0x81, 0x10], Corrupt("more buckets than there are")),
        ];
        for (bytes, error) in cases {
            assert_eq!(Sketch::decode_checked(bytes), Err(error), "bytes {bytes:?}");
        }
        let message = crate::Error::from(Corrupt("cut short")).to_string();
        assert!(message.contains("logctl rollup rebuild"), "{message}");
    }

    /// Latencies as logs have them: mostly small, some large, a few zeros and extremes.
    fn latencies() -> impl Strategy<Value = Vec<i32>> {
        let value = prop_oneof![
            4 => 0..100i32,
            4 => 0..100_000i32,
            1 => Just(0),
            1 => 0..=i32::MAX,
        ];
        proptest::collection::vec(value, 0..300)
    }

    fn encoded(sketch: &Sketch) -> Vec<u8> {
        let mut bytes = Vec::new();
        sketch.encode(&mut bytes);
        bytes
    }

    proptest! {
        #[test]
        fn merging_equals_adding_everything_at_once(
            a in latencies(), b in latencies(), c in latencies()
        ) {
            let [sa, sb, sc]: [Sketch; 3] =
                [&a, &b, &c].map(|values| values.iter().copied().collect());
            let at_once: Sketch = a.iter().chain(&b).chain(&c).copied().collect();
            let merged = |parts: [&Sketch; 3]| {
                let mut sketch = parts[0].clone();
                sketch.merge(parts[1]);
                sketch.merge(parts[2]);
                sketch
            };
            let mut right_first = sb.clone();
            right_first.merge(&sc);
            let mut grouped_right = sa.clone();
            grouped_right.merge(&right_first);
            prop_assert_eq!(&merged([&sa, &sb, &sc]), &at_once);
            prop_assert_eq!(&merged([&sc, &sa, &sb]), &at_once);
            prop_assert_eq!(&merged([&sb, &sc, &sa]), &at_once);
            prop_assert_eq!(&grouped_right, &at_once);
            prop_assert_eq!(encoded(&merged([&sc, &sb, &sa])), encoded(&at_once));
            let mut from_bytes = Sketch::new();
            for part in [&sb, &sa, &sc] {
                from_bytes.merge_encoded(&encoded(part)).unwrap();
            }
            prop_assert_eq!(&from_bytes, &at_once);
        }

        #[test]
        fn quantiles_are_within_one_percent(values in latencies(), q in 0.0..=1.0f64) {
            prop_assume!(!values.is_empty());
            let sketch: Sketch = values.iter().copied().collect();
            let mut sorted = values;
            sorted.sort_unstable();
            let exact = f64::from(percentile_disc(&sorted, q));
            let estimate = sketch.quantile(q).unwrap();
            prop_assert!((estimate - exact).abs() <= exact * 0.01, "{} for {}", estimate, exact);
        }

        #[test]
        fn decoding_returns_what_was_encoded(values in latencies()) {
            let sketch: Sketch = values.into_iter().collect();
            prop_assert_eq!(Sketch::decode_checked(&encoded(&sketch)), Ok(sketch));
        }

        #[test]
        fn decoding_any_bytes_returns_an_error_or_what_encodes_to_them(
            bytes in proptest::collection::vec(any::<u8>(), 0..40)
        ) {
            if let Ok(sketch) = Sketch::decode_checked(&bytes) {
                prop_assert_eq!(encoded(&sketch), bytes);
            }
        }

        #[test]
        fn damaged_encodings_are_refused_or_read_exactly(
            values in latencies(), position in any::<prop::sample::Index>(), byte in any::<u8>()
        ) {
            let bytes = encoded(&values.into_iter().collect());
            let cut = position.index(bytes.len());
            prop_assert!(Sketch::decode_checked(&bytes[..cut]).is_err());
            let mut altered = bytes.clone();
            altered[cut] = byte;
            if let Ok(sketch) = Sketch::decode_checked(&altered) {
                prop_assert_eq!(encoded(&sketch), altered);
            }
        }
    }
}
