//! Where rejected lines go: a readable line each on stderr, or NDJSON records in a
//! file (`--rejects PATH`) that can be fixed and loaded again.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

use crate::ingest::batch::Reject;

pub enum RejectSink {
    Stderr,
    File(Mutex<BufWriter<File>>),
}

#[derive(Serialize)]
struct Record<'a> {
    file: &'a str,
    line: u64,
    offset: u64,
    reason: &'a str,
    text: std::borrow::Cow<'a, str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    text_is_lossy: bool,
}

impl RejectSink {
    /// Appends to the file, so runs from cron add to one reject log.
    pub fn file(path: &Path) -> io::Result<RejectSink> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(RejectSink::File(Mutex::new(BufWriter::new(file))))
    }

    pub fn write(&self, rejects: &[Reject]) -> io::Result<()> {
        match self {
            RejectSink::Stderr => {
                let mut stderr = io::stderr().lock();
                for reject in rejects {
                    writeln!(
                        stderr,
                        "logctl: rejected {}:{} (byte {}): {}",
                        reject.source, reject.line, reject.offset, reject.reason
                    )?;
                }
                Ok(())
            }
            RejectSink::File(file) => {
                let mut file = file.lock().expect("not poisoned");
                for reject in rejects {
                    let text = String::from_utf8_lossy(&reject.text);
                    let record = Record {
                        file: &reject.source,
                        line: reject.line,
                        offset: reject.offset,
                        reason: &reject.reason,
                        text_is_lossy: matches!(text, std::borrow::Cow::Owned(_)),
                        text,
                    };
                    serde_json::to_writer(&mut *file, &record)?;
                    file.write_all(b"\n")?;
                }
                file.flush()
            }
        }
    }
}
