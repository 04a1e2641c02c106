//! The analysis, swapped into the running REPL on every save: edit a query below (a grouping
//! column, an aggregation, a filter, the title) and the host prints the new report on the data it
//! already holds.
//!
//! What crosses the boundary is a borrowed `DataFrame` in and an owned `String` out: a polars
//! value built here may hold vtables of this library, which is unloaded at the next swap.

use polars::prelude::*;

/// The report the host prints: tables as text.
#[unsafe(no_mangle)]
pub fn analyze(df: &DataFrame) -> String {
    match report(df) {
        Ok(text) => text,
        Err(e) => format!("analysis failed: {e}"),
    }
}

fn report(df: &DataFrame) -> PolarsResult<String> {
    let trips = df.clone().lazy();

    let by_zone = trips
        .clone()
        .group_by([col("zone")])
        .agg([
            len().alias("trips"),
            round(col("distance_km").mean(), 2).alias("avg_km"),
            round(col("fare").mean(), 2).alias("avg_fare"),
            round(col("tip").sum() / col("fare").sum() * lit(100.0), 1).alias("tip_%"),
            col("fare").sum().cast(DataType::Int64).alias("revenue"),
        ])
        .sort(
            ["revenue"],
            SortMultipleOptions::default().with_order_descending(true),
        )
        .limit(8)
        .collect()?;

    let by_hour = trips
        .group_by([col("pickup_at").dt().hour().alias("hour")])
        .agg([
            len().alias("trips"),
            round(
                (col("distance_km") / (col("duration_min") / lit(60.0))).mean(),
                1,
            )
            .alias("avg_kmh"),
        ])
        .sort(
            ["trips"],
            SortMultipleOptions::default().with_order_descending(true),
        )
        .limit(3)
        .collect()?;

    Ok(format!(
        "== revenue by pickup zone ==\n{by_zone}\n== busiest hours ==\n{by_hour}"
    ))
}

/// `e` (positive) rounded to `digits` decimals, half up. Polars' own `round` needs its
/// `round_series` feature, which the deps dylib does not have.
fn round(e: Expr, digits: i32) -> Expr {
    let scale = 10f64.powi(digits);
    (e * lit(scale) + lit(0.5))
        .cast(DataType::Int64)
        .cast(DataType::Float64)
        / lit(scale)
}
