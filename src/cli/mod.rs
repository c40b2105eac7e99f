//! Command implementations: each loads what it needs, calls the library, and prints
//! text for people or one JSON document for scripts.

pub mod bootstrap;
pub mod certs;
pub mod cluster;
pub mod lab;
pub mod scan;
pub mod watch;

use std::io::{IsTerminal, Write};
use std::path::Path;

use serde_json::json;

use seclab::config::{self, InvalidFile, Lab, LoadError};
use seclab::render::{self, Rendered, Templates};

use crate::Cli;

/// Exit codes, as documented in the README.
pub mod exit {
    pub const ERROR: u8 = 1;
    pub const INVALID_INPUT: u8 = 2;
    pub const DIFFERENT: u8 = 3;
}

/// A failed command: what to print, and the exit code.
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What people read (on stderr).
    pub text: String,
    /// What scripts read (on stdout) with `--output json`.
    pub json: serde_json::Value,
}

impl Failure {
    /// A failure with exit code 1, from a message.
    pub fn error(error: impl std::fmt::Display) -> Self {
        let text = format!("error: {error}");
        Self { code: exit::ERROR, json: json!({ "error": error.to_string() }), text }
    }

    /// A failure with exit code 1, from an error and what caused it: one `caused by:` line
    /// per cause in text, a `causes` list in JSON.
    pub fn of(error: impl std::error::Error + 'static) -> Self {
        let mut lines = seclab::causes::chain(&error);
        let top = lines.remove(0);
        let mut text = format!("error: {top}");
        for cause in &lines {
            text.push_str(&format!("\n  caused by: {cause}"));
        }
        let json = if lines.is_empty() { json!({ "error": top }) } else { json!({ "error": top, "causes": lines }) };
        Self { code: exit::ERROR, text, json }
    }

    /// A desired-state file with problems: exit code 2.
    pub fn invalid(file: &InvalidFile) -> Self {
        let mut json = serde_json::to_value(file).unwrap_or_default();
        json["valid"] = false.into();
        Self { code: exit::INVALID_INPUT, text: file.report(color(std::io::stderr().is_terminal())), json }
    }
}

/// Prints `text` and a newline on stdout.
pub fn print(text: &str) -> Result<(), Failure> {
    write_line(format_args!("{}", text.trim_end()));
    Ok(())
}

/// Writes a line on stdout. When the reader went away (`seclab render | head`), seclab stops
/// quietly with exit code 0, as tools in a pipeline do; other write errors are ignored, as
/// `println!` would panic on them.
pub fn write_line(line: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let written = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
    if written.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
        std::process::exit(0);
    }
}

/// `println!` for commands: a line on stdout, stopping quietly when the reader went away.
macro_rules! say {
    ($($arg:tt)*) => { $crate::cli::write_line(format_args!($($arg)*)) };
}
pub(crate) use say;

/// Colour only on a terminal, and never with `NO_COLOR` set.
pub fn color(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Loads and checks the desired-state file.
pub fn load(cli: &Cli) -> Result<Lab, Failure> {
    config::load(&cli.file).map_err(|error| match error {
        LoadError::Invalid(file) => Failure::invalid(&file),
        LoadError::Read { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => Failure::error(format!(
            "{} does not exist{}; run `seclab init` to write a starter file, or pass --file",
            cli.file.display(),
            if cli.file == Path::new("seclab.yaml") { " (nor does seclab.yml)" } else { "" }
        )),
        unreadable @ (LoadError::TooLarge { .. } | LoadError::NotUtf8 { .. }) => {
            Failure { code: exit::INVALID_INPUT, ..Failure::error(unreadable) }
        }
        other => Failure::of(other),
    })
}

/// The sections of the file whose secrets a command reads here.
#[derive(Debug, Clone, Copy)]
pub enum Secrets {
    /// What applying the lab reads: all but the alerts' and `watch`'s own.
    Apply,
    /// The scan database's and the alerts': `scan ingest`, `run`, `deliver`.
    Scans,
    /// Every one: `watch` applies, ingests and delivers.
    All,
}

/// Loads the lab for a command that reads its `env:` and `file:` secrets (those of `secrets`):
/// every one that cannot be read here fails it before anything is written.
pub fn load_with_secrets(cli: &Cli, secrets: Secrets) -> Result<Lab, Failure> {
    let lab = load(cli)?;
    let unresolved = lab.unresolved_secrets_of(|section| match secrets {
        Secrets::Apply => !matches!(section, "alerts" | "watch"),
        Secrets::Scans => matches!(section, "alerts" | "scanDatabase"),
        Secrets::All => true,
    });
    if unresolved.is_empty() {
        return Ok(lab);
    }
    let text = format!(
        "error: {} secret(s) of {} cannot be read here; nothing was changed:\n{}\nset the variables or create the files, then run again",
        unresolved.len(),
        cli.file.display(),
        unresolved.iter().map(|u| format!("  - {u}")).collect::<Vec<_>>().join("\n")
    );
    Err(Failure {
        code: exit::ERROR,
        text,
        json: json!({ "error": "secrets cannot be read", "unresolved": unresolved }),
    })
}

fn templates(cli: &Cli) -> Templates {
    cli.templates.as_ref().map_or_else(Templates::embedded, Templates::with_overrides)
}

/// Renders the lab.
pub fn render_lab(cli: &Cli, lab: &Lab) -> Result<Rendered, Failure> {
    render::render(lab, &templates(cli)).map_err(Failure::of)
}
