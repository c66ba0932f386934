//! `logctl gen`: synthetic NDJSON logs, to stdout or a (compressed) file.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use crate::cli::GenArgs;
use crate::ingest::encode::timestamp;
use crate::synth::{self, GenOptions};
use crate::{Error, Outcome};

pub fn run(args: GenArgs) -> anyhow::Result<Outcome> {
    let start = timestamp::parse_text(&args.start, timestamp::Zone::Utc)
        .map_err(|e| Error::usage(format!("--start: {e}")))?;
    let options = GenOptions {
        lines: args.lines,
        seed: args.seed,
        services: args.services,
        start_unix_micros: timestamp::to_datetime(start).timestamp_micros(),
    };
    let Some(path) = &args.output else {
        let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
        synth::write(&options, &mut out)?;
        return Ok(Outcome::Success);
    };
    let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
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
