//! What `fit` shows while it trains: an indicatif progress bar on a terminal, one plain line
//! per epoch otherwise (logs, CI), or nothing. It does not decide anything about training.

use crate::fit::{Epoch, Verbosity};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    epochs: usize,
}

impl Progress {
    pub(crate) fn new(verbosity: Verbosity, epochs: usize, steps: usize) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let (bar, lines) = match verbosity {
            Verbosity::Quiet => (false, false),
            Verbosity::Lines => (false, true),
            Verbosity::Progress => (true, true),
            Verbosity::Auto => (terminal, true),
        };
        let bar = bar.then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr());
            // The template is a literal known to parse; a failure would only lose the styling.
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} batches  {msg}  ({elapsed}, eta {eta})",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Progress { bar, lines, epochs }
    }

    pub(crate) fn start_epoch(&mut self, epoch: usize) {
        if let Some(bar) = &self.bar {
            bar.reset();
            bar.set_prefix(format!("epoch {epoch}/{}", self.epochs));
        }
    }

    pub(crate) fn step(&mut self, loss: f64, accuracy: Option<f64>) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            // Formatting costs more than the bar's own rate limit allows to show; do it only
            // every few batches.
            if bar.position() % 8 == 1 {
                bar.set_message(figures(loss, accuracy));
            }
        }
    }

    pub(crate) fn end_epoch(&mut self, e: &Epoch) {
        if !self.lines {
            return;
        }
        let mut line = format!(
            "epoch {}/{}  {}",
            e.epoch,
            self.epochs,
            figures(e.loss, e.accuracy)
        );
        if let Some((loss, accuracy)) = e.validation {
            line.push_str(&format!(
                "  val_{}",
                figures(loss, accuracy).replace("  acc", "  val_acc")
            ));
        }
        line.push_str(&format!(
            "  {:.0} samples/s  lr {:.2e}",
            e.samples_per_second, e.learning_rate
        ));
        self.note(&line);
    }

    /// Prints a line above the bar (or alone without one).
    pub(crate) fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None if self.lines => eprintln!("{line}"),
            None => {}
        }
    }

    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn figures(loss: f64, accuracy: Option<f64>) -> String {
    match accuracy {
        Some(a) => format!("loss {loss:.4}  acc {:.2}%", 100.0 * a),
        None => format!("loss {loss:.4}"),
    }
}
