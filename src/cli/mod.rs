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
use seclab::words::count;

use crate::Cli;

/// Exit codes, as documented in the README.
pub mod exit {
    pub const ERROR: u8 = 1;
    pub const INVALID_INPUT: u8 = 2;
    pub const DIFFERENT: u8 = 3;
}

/// A failed command: what to print, and the exit code.
///
/// Its JSON document has one shape for every failure: `error`, one line saying what failed,
/// and `errors`, each problem with its `message` and, where known, `file`, `line`, `column`,
/// `path`, `help` and `causes`; usage errors add `"usage": true`; a command adds its own
/// fields beside them ([`Failure::with`]).
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What people read (on stderr).
    pub text: String,
    /// What scripts read (on stdout) with `--output json`; null when the command printed its
    /// document already (a plan with problems, a diff with differences).
    pub json: serde_json::Value,
}

impl Failure {
    /// A failure with exit code 1, from a message.
    pub fn error(error: impl std::fmt::Display) -> Self {
        let message = error.to_string();
        let first = message.lines().next().unwrap_or_default().trim_end_matches(':');
        let json = json!({ "error": first, "errors": [{ "message": message }] });
        Self { code: exit::ERROR, text: format!("error: {message}"), json }
    }

    /// A failure with exit code 1, from an error and what caused it: one `caused by:` line
    /// per cause in text, a `causes` list in JSON.
    pub fn of(error: impl std::error::Error + 'static) -> Self {
        let mut lines = seclab::causes::chain(&error);
        let top = lines.remove(0);
        let mut failure = Self::error(&top);
        for cause in &lines {
            failure.text.push_str(&format!("\n  caused by: {cause}"));
        }
        if !lines.is_empty() {
            failure.json["errors"][0]["causes"] = json!(lines);
        }
        failure
    }

    /// A command line that asks for something impossible: exit code 2, `"usage": true`.
    pub fn usage(message: impl std::fmt::Display, help: &str) -> Self {
        let failure = Self { code: exit::INVALID_INPUT, ..Self::error(message) };
        failure.with_help(help).with(json!({ "usage": true }))
    }

    /// Input that cannot be used (a file, a scan): exit code 2.
    pub fn invalid_input(error: impl std::fmt::Display) -> Self {
        Self { code: exit::INVALID_INPUT, ..Self::error(error) }
    }

    /// A desired-state file with problems: exit code 2, every problem in `errors`.
    pub fn invalid(file: &InvalidFile) -> Self {
        let mut json = serde_json::to_value(file).unwrap_or_default();
        json["valid"] = false.into();
        json["error"] = file.summary().into();
        Self { code: exit::INVALID_INPUT, text: file.report(color(std::io::stderr().is_terminal())), json }
    }

    /// The failure with what to do next: a line of its own in text, `help` in JSON.
    pub fn with_help(mut self, help: &str) -> Self {
        self.text.push_str(&format!("\n{help}"));
        self.json["errors"][0]["help"] = help.into();
        self
    }

    /// The failure's JSON document with the command's own fields (an object) beside `error`
    /// and `errors`.
    pub fn with(mut self, fields: serde_json::Value) -> Self {
        if let (Some(document), serde_json::Value::Object(fields)) = (self.json.as_object_mut(), fields) {
            document.extend(fields);
        }
        self
    }

    /// The failure's JSON document with `errors` replaced: one entry per problem.
    pub fn with_errors(mut self, errors: Vec<serde_json::Value>) -> Self {
        self.json["errors"] = errors.into();
        self
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
            "{} does not exist{}",
            cli.file.display(),
            if cli.file == Path::new("seclab.yaml") { " (nor does seclab.yml)" } else { "" }
        ))
        .with_help("Run `seclab init` to write a starter file, or pass --file."),
        unreadable @ (LoadError::TooLarge { .. } | LoadError::NotUtf8 { .. }) => {
            // The same document as a file with problems: one entry in `errors`.
            let mut failure = Failure::invalid_input(&unreadable);
            failure.json["errors"][0]["file"] = cli.file.display().to_string().into();
            if let Some(at) = unreadable.location() {
                failure.json["errors"][0]["line"] = at.line.into();
                failure.json["errors"][0]["column"] = at.column.into();
            }
            failure = failure.with(json!({ "file": cli.file.display().to_string(), "valid": false }));
            match unreadable.help() {
                Some(help) => failure.with_help(help),
                None => failure,
            }
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
    let message = format!(
        "{} of {} cannot be read here; nothing was changed",
        count(unresolved.len() as u64, "secret", "secrets"),
        cli.file.display()
    );
    let help = "Set the variables or create the files, then run again.";
    let errors = unresolved.iter().map(|u| json!({ "message": u, "help": help })).collect();
    let listed: String = unresolved.iter().map(|u| format!("\n  - {u}")).collect();
    let mut failure = Failure::error(format!("{message}:{listed}")).with_errors(errors);
    failure.text.push_str(&format!("\n{help}"));
    Err(failure)
}

fn templates(cli: &Cli) -> Templates {
    cli.templates.as_ref().map_or_else(Templates::embedded, Templates::with_overrides)
}

/// Renders the lab.
pub fn render_lab(cli: &Cli, lab: &Lab) -> Result<Rendered, Failure> {
    render::render(lab, &templates(cli)).map_err(Failure::of)
}
