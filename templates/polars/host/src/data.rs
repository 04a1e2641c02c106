//! The data set: taxi trips generated from a seed (the same rows on every run), or a CSV file.
use polars::prelude::*;

/// Zones: share of pickups (Zipf-like), typical trip length in km, how generously riders tip.
const ZONES: [(&str, f64, f64, f64); 16] = [
    ("Midtown", 16.0, 3.2, 1.0),
    ("Downtown", 13.0, 3.0, 1.05),
    ("Financial District", 10.0, 3.5, 1.4),
    ("Airport", 8.0, 18.0, 1.15),
    ("Old Town", 7.0, 2.6, 0.9),
    ("University", 6.5, 2.9, 0.6),
    ("Riverside", 6.0, 4.1, 1.0),
    ("Chinatown", 5.5, 2.4, 0.85),
    ("Harbor", 5.0, 5.2, 1.1),
    ("Stadium", 4.5, 4.8, 0.8),
    ("Museum Mile", 4.0, 3.1, 1.2),
    ("Westside", 3.5, 6.0, 1.0),
    ("Eastside", 3.0, 5.5, 0.95),
    ("Northgate", 2.5, 7.5, 0.9),
    ("Lakeshore", 2.0, 6.8, 1.25),
    ("Southport", 1.5, 9.0, 0.75),
];

/// Pickups per hour of day (relative): quiet nights, morning and evening peaks.
const HOURLY: [f64; 24] = [
    3.0, 2.0, 1.4, 1.0, 0.9, 1.2, 2.5, 4.5, 6.0, 5.2, 4.6, 4.8, //
    5.3, 5.2, 5.1, 5.4, 5.9, 6.6, 6.9, 6.4, 5.6, 5.0, 4.6, 3.9,
];

/// Average speed in km/h by hour of day (rush hours are slow).
const SPEED: [f64; 24] = [
    32.0, 34.0, 35.0, 36.0, 36.0, 33.0, 27.0, 19.0, 16.0, 19.0, 22.0, 21.0, //
    20.0, 21.0, 21.0, 19.0, 17.0, 15.0, 16.0, 19.0, 23.0, 26.0, 28.0, 30.0,
];

const PAYMENTS: [(&str, f64); 3] = [("card", 68.0), ("cash", 22.0), ("app", 10.0)];
const PASSENGERS: [(i32, f64); 6] = [(1, 70.0), (2, 16.0), (3, 6.0), (4, 4.0), (5, 2.5), (6, 1.5)];

/// 2024-01-01T00:00:00Z in milliseconds since the epoch; 2024 has 366 days.
const YEAR_START_MS: i64 = 1_704_067_200_000;
const DAYS: u64 = 366;

/// SplitMix64: small, fast, and the same sequence everywhere for a seed.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(f64::MIN_POSITIVE);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Index into `weights` with probability proportional to its weight (`cumulative` sums).
    fn pick(&mut self, cumulative: &[f64]) -> usize {
        let x = self.unit() * cumulative[cumulative.len() - 1];
        cumulative.partition_point(|&c| c <= x)
    }
}

fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    weights
        .scan(0.0, |sum, w| {
            *sum += w;
            Some(*sum)
        })
        .collect()
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `rows` taxi trips of 2024, the same for the same `seed`.
///
/// Columns: `pickup_at` (datetime, ms), `zone`, `payment`, `passengers`, `distance_km`,
/// `duration_min`, `fare`, `tip`.
pub fn generate(rows: usize, seed: u64) -> PolarsResult<DataFrame> {
    let mut rng = Rng(seed);
    let zone_cdf = cumulative(ZONES.iter().map(|z| z.1));
    let hour_cdf = cumulative(HOURLY.iter().copied());
    let pay_cdf = cumulative(PAYMENTS.iter().map(|p| p.1));
    let pax_cdf = cumulative(PASSENGERS.iter().map(|p| p.1));

    let mut pickup_at = Vec::with_capacity(rows);
    let mut zone = Vec::with_capacity(rows);
    let mut payment = Vec::with_capacity(rows);
    let mut passengers = Vec::with_capacity(rows);
    let mut distance = Vec::with_capacity(rows);
    let mut duration = Vec::with_capacity(rows);
    let mut fare = Vec::with_capacity(rows);
    let mut tip = Vec::with_capacity(rows);
    for _ in 0..rows {
        let day = rng.below(DAYS) as i64;
        let hour = rng.pick(&hour_cdf);
        let second_of_hour = rng.below(3600) as i64;
        pickup_at.push(YEAR_START_MS + ((day * 24 + hour as i64) * 3600 + second_of_hour) * 1000);

        let (name, _, typical_km, generosity) = ZONES[rng.pick(&zone_cdf)];
        zone.push(name);
        let (pay, _) = PAYMENTS[rng.pick(&pay_cdf)];
        payment.push(pay);
        passengers.push(PASSENGERS[rng.pick(&pax_cdf)].0);

        // Log-normal around the zone's typical length.
        let km = (typical_km * (0.55 * rng.normal()).exp()).clamp(0.3, 80.0);
        let speed = SPEED[hour] * (1.0 + 0.15 * rng.normal()).clamp(0.5, 1.6);
        let minutes = (km / speed * 60.0 + 2.0 + 3.0 * rng.unit()).max(1.0);
        let night = !(6..22).contains(&hour);
        let base = 3.0 + 1.75 * km + 0.35 * minutes;
        let total = if night { base * 1.25 } else { base };
        let tip_share = match pay {
            "cash" => 0.0,
            _ if rng.unit() < 0.15 => 0.0,
            _ => (0.05 + 0.20 * rng.unit()) * generosity,
        };
        distance.push((km * 100.0).round() / 100.0);
        duration.push((minutes * 10.0).round() / 10.0);
        fare.push(cents(total));
        tip.push(cents(total * tip_share));
    }

    let columns = vec![
        Int64Chunked::from_vec("pickup_at".into(), pickup_at)
            .into_datetime(TimeUnit::Milliseconds, None)
            .into_series()
            .into_column(),
        Column::new("zone".into(), zone),
        Column::new("payment".into(), payment),
        Column::new("passengers".into(), passengers),
        Column::new("distance_km".into(), distance),
        Column::new("duration_min".into(), duration),
        Column::new("fare".into(), fare),
        Column::new("tip".into(), tip),
    ];
    DataFrame::new(rows, columns)
}

/// Reads a CSV file (with a header row; date/time columns are parsed when they look like one).
pub fn read_csv(path: &str) -> PolarsResult<DataFrame> {
    LazyCsvReader::new(PlRefPath::from(path))
        .with_has_header(true)
        .with_try_parse_dates(true)
        .finish()?
        .collect()
}

/// Writes `df` as CSV (`--save`), so a later run can load the same rows from the file.
pub fn write_csv(df: &mut DataFrame, path: &str) -> PolarsResult<()> {
    let file =
        std::fs::File::create(path).map_err(|e| polars_err!(ComputeError: "create {path}: {e}"))?;
    CsvWriter::new(file).include_header(true).finish(df)
}
