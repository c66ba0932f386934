//! The progress bar on a terminal: bytes read, lines/s and ETA.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::plan::LoadPlan;
use super::read::Input;

/// The progress bar on a terminal: bytes read, lines/s and ETA.
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn start(plan: &LoadPlan, disk_bytes: Arc<AtomicU64>, lines: Arc<AtomicU64>) -> Progress {
        if !plan.progress {
            return Progress {
                bar: None,
                ticker: None,
            };
        }
        let total: u64 = plan.inputs.iter().filter_map(Input::size_on_disk).sum();
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} [{wide_bar}] {bytes_per_sec} {msg} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        let ticking = bar.clone();
        let started = Instant::now();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                ticking.set_position(disk_bytes.load(Ordering::Relaxed));
                let lines = lines.load(Ordering::Relaxed);
                let rate = lines as f64 / started.elapsed().as_secs_f64().max(1e-3);
                ticking.set_message(format!("{lines} lines, {rate:.0} lines/s"));
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
