//! The progress bar on a terminal (stderr): rows done of the estimated
//! total, rows per second and time left. Hidden when stderr is not a
//! terminal or `--quiet` is given; the summary on stdout stays clean.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar, or nothing.
#[derive(Debug)]
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar for about `total` rows, `done` of them done already (a resume).
    pub fn new(show: bool, total: u64, done: u64) -> Self {
        if !show {
            return Progress(None);
        }
        let bar =
            ProgressBar::with_draw_target(Some(total.max(done)), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{bar:40} {human_pos}/{human_len} rows · {per_sec} · {eta} left",
        ) {
            bar.set_style(style);
        }
        bar.set_position(done);
        bar.reset_eta();
        Progress(Some(bar))
    }

    /// `rows` done.
    pub fn set(&self, rows: u64) {
        if let Some(bar) = &self.0 {
            if bar.length().is_some_and(|len| rows > len) {
                bar.set_length(rows);
            }
            bar.set_position(rows);
        }
    }

    /// Done: the bar is cleared.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
