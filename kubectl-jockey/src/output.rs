//! How commands talk to the user: `-o json|yaml|wide` for listings and objects, and progress on
//! stderr — a spinner with the current phase when stderr is a terminal, plain lines
//! otherwise (so CI logs and pipes stay readable). Results go to stdout, progress to stderr.

use anyhow::{Context, Result};
use serde::Serialize;
use std::io::IsTerminal;
use std::time::Duration;

/// `-o` of listings and object-printing commands.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// A human-readable table (the default).
    #[default]
    Table,
    /// The table with extra columns.
    Wide,
    Json,
    Yaml,
}

/// Flags shared by every listing command: `-A` and `-o`. Flatten it into a command's args.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ListingArgs {
    /// List across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// Prints a serialisable value as JSON or YAML on stdout.
pub fn print_structured<T: Serialize>(value: &T, format: OutputFormat) -> Result<()> {
    let text = match format {
        OutputFormat::Yaml => serde_yaml::to_string(value).context("rendering YAML")?,
        _ => {
            let mut s = serde_json::to_string_pretty(value).context("rendering JSON")?;
            s.push('\n');
            s
        }
    };
    print!("{text}");
    Ok(())
}

/// Renders rows as a left-aligned table with kubectl's two-space column gap.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// Whether progress should animate: only when a human watches stderr.
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A long-running step's progress: a spinner on a terminal, plain lines otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    prefix: String,
    last_plain: Option<String>,
}

impl Progress {
    pub fn new(prefix: &str) -> Self {
        let bar = stderr_is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{spinner} {prefix}: {msg} ({elapsed})")
            {
                bar.set_style(style);
            }
            bar.set_message("starting");
            bar.set_prefix(prefix.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            prefix: prefix.to_string(),
            last_plain: None,
        }
    }

    /// Reports a new phase. Plain mode prints only changes, so polling loops don't spam.
    pub fn phase(&mut self, message: &str) {
        match &self.bar {
            Some(bar) => {
                if bar.message() != message {
                    bar.set_message(message.to_string());
                }
            }
            None => {
                if self.last_plain.as_deref() != Some(message) {
                    eprintln!("{}: {message}", self.prefix);
                    self.last_plain = Some(message.to_string());
                }
            }
        }
    }

    /// A printer for lines that must not tear the spinner (e.g. a followed log), usable from
    /// another task.
    pub fn line_printer(&self) -> LinePrinter {
        LinePrinter(self.bar.clone())
    }

    /// Ends the spinner and leaves `message` as the step's final line.
    pub fn finish(self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!("{}: {message}", self.prefix);
    }
}

/// Prints lines on stderr above a running spinner (or plainly when there is none).
#[derive(Clone)]
pub struct LinePrinter(Option<indicatif::ProgressBar>);

impl LinePrinter {
    pub fn println(&self, line: &str) {
        match &self.0 {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_like_kubectl() {
        let t = table(
            &["PROJECT", "READY"],
            &[
                vec!["a-long-name".into(), "1/1".into()],
                vec!["b".into(), "0/1".into()],
            ],
        );
        assert_eq!(
            t,
            "PROJECT       READY\na-long-name   1/1\nb             0/1\n"
        );
    }
}
