//! A tiny analysis over a generated DataFrame; the bench edits the marker line below.
use polars::prelude::*;

fn main() -> PolarsResult<()> {
    let n = 10_000usize;
    let df = df!(
        "city" => (0..n).map(|i| ["Lyon", "Oslo", "Lima", "Pune"][i % 4]).collect::<Vec<_>>(),
        "temp" => (0..n).map(|i| (i % 37) as f64 * 0.5).collect::<Vec<_>>(),
    )?;
    let out = df
        .lazy()
        .group_by([col("city")])
        .agg([col("temp").mean().alias("mean_temp"), len().alias("rows")])
        .sort(["city"], Default::default())
        .collect()?;
    println!("{out}");
    println!("edit marker 0"); // bench: this line is rewritten on every edit
    Ok(())
}
