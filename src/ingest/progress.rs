//! The progress bar on a terminal, and the phases of a load after its rows are copied.
//! While reading, the bar shows bytes, their rate and lines, with a bar and an ETA only
//! when the total is known (not for stdin, a pipe, or a file that grew past the size it
//! had); fitted to the terminal's width. After the copy it names the phase the load is in
//! (building indexes, attaching partitions, compacting the ledger and the rollups), which
//! is timed for the summary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::plan::LoadPlan;
use super::report::PhaseTime;
use crate::terminal;

/// Below this many columns the bar itself is left out: the figures need the room.
const ROOM_FOR_A_BAR: usize = 100;

pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn start(
        plan: &LoadPlan,
        disk_bytes: Arc<AtomicU64>,
        lines: Arc<AtomicU64>,
        phases: &Phases,
    ) -> Progress {
        if !plan.progress {
            return Progress {
                bar: None,
                ticker: None,
            };
        }
        // What is not a regular file has no size to go by.
        let total = plan
            .inputs
            .iter()
            .map(|input| {
                input
                    .can_be_read_again()
                    .then(|| input.size_on_disk())
                    .flatten()
            })
            .sum::<Option<u64>>();
        let display = terminal::stderr();
        let wide = display.width.unwrap_or(80) >= ROOM_FOR_A_BAR;
        let unicode = display.unicode;
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        bar.set_style(reading_style(total.is_some(), wide, unicode));
        *phases.0.lock().expect("not poisoned") = PhaseLog {
            bar: Some(bar.clone()),
            unicode,
            ..PhaseLog::default()
        };
        let ticking = bar.clone();
        let phases = phases.clone();
        let started = Instant::now();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Some(phase) = phases.current() {
                    ticking.set_message(phase);
                    continue;
                }
                let position = disk_bytes.load(Ordering::Relaxed);
                // A file that grew past its size at the start: the total was wrong.
                if ticking.length().is_some_and(|total| position > total) {
                    ticking.unset_length();
                    ticking.set_style(reading_style(false, wide, unicode));
                }
                ticking.set_position(position);
                let lines = lines.load(Ordering::Relaxed);
                let rate = lines as f64 / started.elapsed().as_secs_f64().max(1e-3);
                ticking.set_message(if wide {
                    format!("{lines} lines, {rate:.0} lines/s")
                } else {
                    format!("{lines} lines")
                });
            }
        });
        Progress {
            bar: Some(bar),
            ticker: Some(ticker),
        }
    }

    pub fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

fn reading_style(known_total: bool, wide: bool, unicode: bool) -> ProgressStyle {
    let template = match (known_total, wide) {
        (true, true) => {
            "{spinner} {bytes}/{total_bytes} [{wide_bar:.cyan/blue}] {bytes_per_sec} {msg} ETA {eta}"
        }
        (true, false) => "{spinner} {percent:>3}% of {total_bytes}, {bytes_per_sec}, {msg}",
        (false, _) => "{spinner} {bytes} read, {bytes_per_sec}, {msg}",
    };
    style(template, unicode).progress_chars("=> ")
}

/// A style with a spinner the terminal can show: braille on UTF-8, ASCII otherwise.
fn style(template: &str, unicode: bool) -> ProgressStyle {
    let style = ProgressStyle::with_template(template).expect("a valid template");
    if unicode {
        style
    } else {
        style.tick_chars("|/-\\ ")
    }
}

/// The phases after the copy: the one running (for the bar) and those done, timed.
#[derive(Clone, Default)]
pub(crate) struct Phases(Arc<Mutex<PhaseLog>>);

#[derive(Default)]
struct PhaseLog {
    bar: Option<ProgressBar>,
    unicode: bool,
    current: Option<(&'static str, Instant)>,
    done: Vec<PhaseTime>,
}

impl Phases {
    /// Runs `work` as the phase `name`: shown on the bar while it runs, timed after.
    pub async fn run<T>(&self, name: &'static str, work: impl Future<Output = T>) -> T {
        self.begin(name);
        let started = Instant::now();
        let output = work.await;
        let mut log = self.0.lock().expect("not poisoned");
        log.current = None;
        log.done.push(PhaseTime {
            name,
            seconds: started.elapsed().as_secs_f64(),
        });
        output
    }

    fn begin(&self, name: &'static str) {
        let mut log = self.0.lock().expect("not poisoned");
        log.current = Some((name, Instant::now()));
        if let Some(bar) = &log.bar {
            bar.set_style(style("{spinner} {msg}", log.unicode));
            bar.set_message(format!("{name}…"));
            bar.force_draw();
        }
    }

    /// The phase running, with how long it has run, for the bar.
    fn current(&self) -> Option<String> {
        let log = self.0.lock().expect("not poisoned");
        log.current
            .map(|(name, started)| format!("{name}… {} s", started.elapsed().as_secs()))
    }

    /// The phases that ran, in order.
    pub fn done(&self) -> Vec<PhaseTime> {
        self.0.lock().expect("not poisoned").done.clone()
    }
}
