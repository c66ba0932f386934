//! `logctl gen`: synthetic NDJSON logs, to stdout or a (compressed) file.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use crate::cli::after_help;
use crate::ingest::encode::timestamp;
use crate::synth::{self, GenOptions};
use crate::{Error, Outcome};

const EXAMPLES: &str = "  logctl gen --lines 1000000 --seed 7 --output big.ndjson.zst
  logctl gen --lines 100 | logctl load -";

#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, &[Outcome::Success, Outcome::Failure, Outcome::Usage]))]
pub struct Args {
    /// Number of lines
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub lines: u64,

    /// Seed: the same seed and options give the same output, byte for byte
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Number of distinct services
    #[arg(long, default_value_t = 20)]
    pub services: usize,

    /// Time of the first line (RFC 3339); lines follow at about --rate per second
    #[arg(long, value_name = "TIME", default_value = "2026-11-24T00:00:00Z")]
    pub start: String,

    /// Lines per second of log time, on average: the same number of lines at a tenth
    /// of the rate covers ten times the time
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,

    /// Write here instead of stdout (a .gz or .zst name compresses)
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let start = timestamp::parse_text(&args.start, timestamp::Zone::Utc)
        .map_err(|e| Error::usage(format!("--start: {e}")))?;
    let options = GenOptions {
        lines: args.lines,
        seed: args.seed,
        services: args.services,
        start_unix_micros: timestamp::to_datetime(start).timestamp_micros(),
        lines_per_second: args.rate,
    };
    let Some(path) = &args.output else {
        let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
        synth::write(&options, &mut out)?;
        return Ok(Outcome::Success);
    };
    let file = File::create(path)
        .map_err(|e| Error::usage(format!("--output: cannot create {}: {e}", path.display())))?;
    let file = BufWriter::with_capacity(1 << 20, file);
    let name = path.to_string_lossy();
    if name.ends_with(".gz") {
        let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        synth::write(&options, &mut encoder)?;
        encoder.finish()?.flush()?;
    } else if name.ends_with(".zst") {
        let mut encoder = zstd::stream::write::Encoder::new(file, 3)?;
        synth::write(&options, &mut encoder)?;
        encoder.finish()?.flush()?;
    } else {
        let mut file = file;
        synth::write(&options, &mut file)?;
    }
    Ok(Outcome::Success)
}
