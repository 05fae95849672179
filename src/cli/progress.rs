//! Progress of long CLI jobs (imports, database copies) on stderr: a bar redrawn in place with the time left
//! on a terminal, or a plain line every tenth of the way (and at the end) when output goes to a file or CI log.

use std::io::Write;
use std::time::{Duration, Instant};

pub struct ProgressLine {
    label: String,
    total: u64,
    terminal: bool,
    started: Instant,
    last_drawn: Option<Instant>,
    last_tenth: u64,
}

impl ProgressLine {
    pub fn new(label: impl Into<String>, total: u64) -> Self {
        use std::io::IsTerminal;
        Self {
            label: label.into(),
            total,
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last_drawn: None,
            last_tenth: 0,
        }
    }

    pub fn update(&mut self, done: u64) {
        if self.terminal {
            // Redrawing more than ten times a second only costs time.
            if self.last_drawn.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) && done < self.total {
                return;
            }
            self.last_drawn = Some(Instant::now());
            const WIDTH: u64 = 30;
            let filled = (done * WIDTH).checked_div(self.total).unwrap_or(WIDTH).min(WIDTH);
            let bar: String = (0..WIDTH).map(|i| if i < filled { '#' } else { '.' }).collect();
            let mut err = std::io::stderr();
            let _ = write!(err, "\r  {:<16} [{bar}] {done}/{} {}   ", self.label, self.total, self.time_left(done));
            let _ = err.flush();
        } else {
            let tenth = (done * 10).checked_div(self.total).unwrap_or(10);
            if tenth > self.last_tenth && done < self.total {
                self.last_tenth = tenth;
                eprintln!("  {}: {done}/{} {}", self.label, self.total, self.time_left(done));
            }
        }
    }

    pub fn finish(self) {
        let elapsed = self.started.elapsed();
        if self.terminal {
            eprintln!();
        }
        eprintln!("  {}: {} done in {:.1} s", self.label, self.total, elapsed.as_secs_f64());
    }

    /// "about 1m 20s left", from the rate so far.
    fn time_left(&self, done: u64) -> String {
        if done == 0 || done >= self.total {
            return String::new();
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = elapsed / done as f64 * (self.total - done) as f64;
        let secs = left.ceil() as u64;
        if secs >= 60 {
            format!("(about {}m {:02}s left)", secs / 60, secs % 60)
        } else {
            format!("(about {secs}s left)")
        }
    }
}
