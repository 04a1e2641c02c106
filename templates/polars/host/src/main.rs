//! {{name}}: loads a data set ONCE into a DataFrame, runs the logic library's `analyze` on it,
//! and runs it again whenever `dylib-dev watch` swaps in a new build of the logic: edit the
//! analysis, save, and the new table shows up in the same process, on the same data.
//!
//! ```text
//! {{name}} [FILE.csv] [--rows N] [--seed S] [--save FILE.csv]
//! ```
//!
//! Without a file it generates `--rows` (1,000,000) taxi trips from `--seed` (2024): the same rows
//! on every run. At the prompt: `run`, `schema`, `head [N]`, `help`, `quit`.

mod data;

use dylib_dev_runtime::{Builder, ReloadEvent, SwapPolicy};
use polars::prelude::*;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

dylib_dev_runtime::hot_module! {
    mod logic("{{crate_name}}_logic") {
        unsafe extern "Rust" {
            /// The analysis: a report (tables as text) over the whole data set.
            pub fn analyze(df: &DataFrame) -> String;
        }
    }
}

struct Args {
    file: Option<String>,
    rows: usize,
    seed: u64,
    save: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        file: None,
        rows: 1_000_000,
        seed: 2024,
        save: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--rows" => {
                args.rows = value("--rows")?
                    .parse()
                    .map_err(|e| format!("--rows: {e}"))?
            }
            "--seed" => {
                args.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--save" => args.save = Some(value("--save")?),
            "-h" | "--help" => {
                return Err(
                    "usage: {{name}} [FILE.csv] [--rows N] [--seed S] [--save FILE.csv]".into(),
                );
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            path => args.file = Some(path.to_string()),
        }
    }
    Ok(args)
}

fn main() {
    // Read by polars when it prints a table; set before any thread exists.
    for (key, value) in [("POLARS_FMT_MAX_ROWS", "30"), ("POLARS_FMT_MAX_COLS", "16")] {
        if std::env::var_os(key).is_none() {
            // SAFETY: single-threaded here, nothing reads the environment concurrently.
            unsafe { std::env::set_var(key, value) };
        }
    }
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{{name}}: {e}");
            std::process::exit(2);
        }
    };
    let pid = std::process::id();

    // The expensive part, done once per process: every swap reuses this DataFrame.
    let started = Instant::now();
    let (mut df, source) = match &args.file {
        Some(path) => (data::read_csv(path), format!("from {path}")),
        None => (
            data::generate(args.rows, args.seed),
            format!("generated, seed {}", args.seed),
        ),
    };
    let df = match df.as_mut() {
        Ok(df) => {
            if let Some(path) = &args.save {
                if let Err(e) = data::write_csv(df, path) {
                    eprintln!("{{name}}: could not save {path}: {e}");
                }
            }
            std::mem::take(df)
        }
        Err(e) => {
            eprintln!("{{name}}: could not load the data: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "data loaded: {} rows x {} columns in {:.2} s ({source}; pid {pid})",
        df.height(),
        df.width(),
        started.elapsed().as_secs_f64()
    );

    // Swap only here, between commands (never while an analysis runs).
    let lib = match logic::init(Builder::from_env("{{crate_name}}_logic").policy(SwapPolicy::OnUpdate))
    {
        Ok(lib) => lib,
        Err(e) => {
            eprintln!("{{name}}: could not load the logic library: {e}");
            std::process::exit(1);
        }
    };
    let interactive = std::io::stdin().is_terminal();
    let commands = read_commands();

    run_analysis(&df);
    if interactive {
        println!("commands: run, schema, head [N], help, quit; or edit logic/src/lib.rs and save");
        prompt();
    }
    let mut stdin_open = true;
    loop {
        if let Some(event) = lib.wait_for_reload(Duration::from_millis(50)) {
            if interactive {
                println!();
            }
            match event {
                ReloadEvent::Swapped(s) => {
                    println!(
                        "logic reloaded: version {} (data kept in memory)",
                        s.version
                    );
                    run_analysis(&df);
                }
                ReloadEvent::Failed(f) => println!(
                    "logic reload refused ({}); version {} keeps running",
                    f.reason,
                    lib.version()
                ),
            }
            if interactive {
                prompt();
            }
        }
        while stdin_open {
            match commands.try_recv() {
                Ok(line) => {
                    if !command(&line, &df) {
                        return;
                    }
                    if interactive {
                        prompt();
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    stdin_open = false;
                    // End of input: quit, unless the runner may still send reloads.
                    if !lib.is_reloadable() {
                        return;
                    }
                }
            }
        }
    }
}

/// Lines of stdin, read on their own thread so reloads are handled while the prompt waits.
fn read_commands() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn prompt() {
    print!("{{name}}> ");
    let _ = std::io::stdout().flush();
}

/// Runs one prompt command; `false` to quit.
fn command(line: &str, df: &DataFrame) -> bool {
    let mut words = line.split_whitespace();
    match words.next() {
        None => {}
        Some("r" | "run") => run_analysis(df),
        Some("s" | "schema") => {
            for column in df.columns() {
                println!("  {:<14} {}", column.name(), column.dtype());
            }
            println!("  ({} rows)", df.height());
        }
        Some("h" | "head") => {
            let n = words.next().and_then(|n| n.parse().ok()).unwrap_or(5);
            println!("{}", df.head(Some(n)));
        }
        Some("q" | "quit" | "exit") => return false,
        Some("?" | "help") => println!(
            "run      run the analysis again\n\
             schema   column names and types\n\
             head [N] the first N rows (5)\n\
             quit     leave\n\
             Edit logic/src/lib.rs and save: under `dylib-dev watch` the new analysis runs on the same data."
        ),
        Some(other) => println!("unknown command `{other}` (try `help`)"),
    }
    true
}

/// The frame the logic gets: the same columns (shared, not copied) in a new `DataFrame` whose
/// caches are empty. Under plain `cargo run`, host and logic each link their own polars, and a
/// cache one of them filled (the schema: a hash map keyed with that copy's hash seed) misleads the
/// other; see README, "Without dylib-dev". Under dylib-dev there is one polars and this costs
/// eight `Arc` clones.
fn for_logic(df: &DataFrame) -> DataFrame {
    DataFrame::new(df.height(), df.columns().to_vec()).expect("the columns of a valid frame")
}

/// Calls the logic's `analyze` and prints its report; a panic in it is caught and reported (host
/// and logic share one std under dylib-dev, and the runtime catches it at the call), the data
/// stays.
fn run_analysis(df: &DataFrame) {
    let version = logic::lib().version();
    let started = Instant::now();
    let view = for_logic(df);
    // A panic in the analysis comes back as `Err`: the host keeps its data and waits for the fix.
    match logic::try_call(|s| s.analyze(&view)) {
        Ok(report) => println!("{report}"),
        Err(panic) => println!("{panic}\nfix it and save: the data stays in memory"),
    }
    println!(
        "-- logic version {version}, pid {}, {} ms --",
        std::process::id(),
        started.elapsed().as_millis()
    );
}
