//! The `seclab` command line: parses arguments and calls into the library.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use serde_json::json;

use seclab::config::{self, InvalidFile, Lab, LoadError};
use seclab::render::{self, Rendered, Templates};
use seclab::scan::diff::{self, Matching, NoisePolicy};
use seclab::scan::{parse, report};

/// One desired-state file to a running home-lab security stack on Kubernetes.
#[derive(Parser)]
#[command(name = "seclab", version, about, propagate_version = true)]
struct Cli {
    /// The desired-state file.
    #[arg(long, short, global = true, env = "SECLAB_FILE", default_value = "seclab.yaml")]
    file: PathBuf,
    /// Output format: `text` for people, `json` (one document per command) for scripts.
    #[arg(long, short, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// A directory of templates that override or extend the built-in ones (same layout).
    #[arg(long, global = true, env = "SECLAB_TEMPLATES")]
    templates: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Write a commented starter file that validates.
    Init {
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Check the file: every problem, with file:line:column and the fix.
    Validate,
    /// Print the Kubernetes objects and node-side files the lab consists of; needs no cluster.
    Render {
        /// Write one file per object (and the node files) under this directory instead.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the JSON Schema of the desired-state file (for yaml-language-server).
    Schema,
    /// Work with nmap scans by hand.
    Scan {
        #[command(subcommand)]
        command: ScanCommand,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum ScanCommand {
    /// Compare two nmap XML files (no database): exit 0 when they agree, 3 when they differ.
    Diff {
        /// The earlier scan.
        before: PathBuf,
        /// The later scan.
        after: PathBuf,
        /// Pair hosts by `address` (seclab) or by address and host name (`ndiff`).
        #[arg(long = "match", value_enum, default_value_t = MatchBy::Address)]
        matching: MatchBy,
        /// Leave out ports whose service is `tcpwrapped`.
        #[arg(long)]
        ignore_tcpwrapped: bool,
        /// Leave out service changes where one side is only nmap's port-table guess.
        #[arg(long)]
        ignore_service_timeouts: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum MatchBy {
    Address,
    Ndiff,
}

/// Exit codes, as documented in the README.
mod exit {
    pub const ERROR: u8 = 1;
    pub const INVALID_INPUT: u8 = 2;
    pub const DIFFERENT: u8 = 3;
}

/// A failed command: what to print, and the exit code.
struct Failure {
    code: u8,
    text: String,
    json: serde_json::Value,
}

impl Failure {
    fn error(error: impl std::fmt::Display) -> Self {
        let text = format!("error: {error}");
        Self { code: exit::ERROR, json: json!({ "error": error.to_string() }), text }
    }

    fn invalid(file: &InvalidFile) -> Self {
        let mut json = serde_json::to_value(file).unwrap_or_default();
        json["valid"] = false.into();
        Self { code: exit::INVALID_INPUT, text: file.report(color(std::io::stderr().is_terminal())), json }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.code == exit::DIFFERENT => ExitCode::from(failure.code),
        Err(failure) => {
            match cli.output {
                Output::Text => eprintln!("{}", failure.text.trim_end()),
                Output::Json => println!("{}", failure.json),
            }
            ExitCode::from(failure.code)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Init { force } => init(cli, *force),
        Command::Validate => validate(cli),
        Command::Render { out } => render_lab(cli, out.as_deref()),
        Command::Scan {
            command: ScanCommand::Diff { before, after, matching, ignore_tcpwrapped, ignore_service_timeouts },
        } => {
            let noise = NoisePolicy {
                ignore_tcpwrapped: *ignore_tcpwrapped,
                ignore_service_timeouts: *ignore_service_timeouts,
            };
            let matching = match matching {
                MatchBy::Address => Matching::Address,
                MatchBy::Ndiff => Matching::Ndiff,
            };
            scan_diff(cli, before, after, matching, noise)
        }
        Command::Schema => print(&serde_json::to_string_pretty(&config::json_schema()).map_err(Failure::error)?),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "seclab", &mut std::io::stdout());
            Ok(())
        }
    }
}

fn print(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", text.trim_end()).map_err(Failure::error)
}

/// Colour only on a terminal, and never with `NO_COLOR` set.
fn color(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn load(cli: &Cli) -> Result<Lab, Failure> {
    config::load(&cli.file).map_err(|error| match error {
        LoadError::Invalid(file) => Failure::invalid(&file),
        LoadError::Read { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => Failure::error(format!(
            "{} does not exist; run `seclab init` to write a starter file, or pass --file",
            cli.file.display()
        )),
        other => Failure::error(other),
    })
}

fn templates(cli: &Cli) -> Templates {
    cli.templates.as_ref().map_or_else(Templates::embedded, Templates::with_overrides)
}

fn render(cli: &Cli, lab: &Lab) -> Result<Rendered, Failure> {
    render::render(lab, &templates(cli)).map_err(Failure::error)
}

fn init(cli: &Cli, force: bool) -> Result<(), Failure> {
    let path = &cli.file;
    if path.exists() && !force {
        return Err(Failure::error(format!("{} already exists; pass --force to replace it", path.display())));
    }
    std::fs::write(path, config::STARTER)
        .map_err(|e| Failure::error(format!("cannot write {}: {e}", path.display())))?;
    match cli.output {
        Output::Json => print(&json!({ "file": path.display().to_string(), "written": true }).to_string()),
        Output::Text => {
            print(&format!("wrote {}: edit it, then run `seclab validate` and `seclab render`", path.display()))
        }
    }
}

fn validate(cli: &Cli) -> Result<(), Failure> {
    let lab = load(cli)?;
    let rendered = render(cli, &lab)?;
    let spec = lab.spec();
    let groups: usize = spec.tenants.iter().map(|t| t.scans.len()).sum();
    match cli.output {
        Output::Json => print(
            &json!({
                "file": cli.file.display().to_string(),
                "valid": true,
                "lab": lab.name(),
                "objects": rendered.objects.len(),
                "tenants": spec.tenants.len(),
                "scanGroups": groups,
                "errors": [],
            })
            .to_string(),
        ),
        Output::Text => print(&format!(
            "{} is valid: lab `{}` renders {} objects ({} tenants, {} scan groups)",
            cli.file.display(),
            lab.name(),
            rendered.objects.len(),
            spec.tenants.len(),
            groups
        )),
    }
}

fn render_lab(cli: &Cli, out: Option<&Path>) -> Result<(), Failure> {
    let lab = load(cli)?;
    let rendered = render(cli, &lab)?;
    if let Some(dir) = out {
        let written = rendered.write_to_dir(dir).map_err(Failure::error)?;
        return match cli.output {
            Output::Json => print(&json!({ "directory": dir.display().to_string(), "files": written }).to_string()),
            Output::Text => print(&format!(
                "wrote {} objects and {} node files under {}",
                rendered.objects.len(),
                rendered.node_files.len(),
                dir.display()
            )),
        };
    }
    match cli.output {
        Output::Json => {
            let objects: Vec<&serde_json::Value> = rendered.objects.iter().map(|o| &o.manifest).collect();
            let document = json!({ "objects": objects, "nodeFiles": rendered.node_files, "secrets": rendered.secrets });
            print(&serde_json::to_string_pretty(&document).map_err(Failure::error)?)
        }
        Output::Text => print(&render_text(&rendered)),
    }
}

/// The YAML stream, then the node files and the Secrets apply creates, as YAML comments.
fn render_text(rendered: &Rendered) -> String {
    let mut out = rendered.to_yaml_stream();
    for file in &rendered.node_files {
        out.push_str(&format!("\n# Node file {}: {}\n", file.install_path, file.purpose));
        for line in file.content.trim_end().lines() {
            out.push_str(&format!("#   {line}\n"));
        }
    }
    if !rendered.secrets.is_empty() {
        out.push_str("\n# Secrets that `seclab apply` creates (values are never rendered):\n");
        for secret in &rendered.secrets {
            let origin = match &secret.origin {
                render::SecretOrigin::Generated => "generated".to_owned(),
                render::SecretOrigin::Env(var) => format!("from env:{var}"),
                render::SecretOrigin::File(path) => format!("from file:{path}"),
                render::SecretOrigin::Certificate => "issued by seclab's CA".to_owned(),
            };
            out.push_str(&format!("#   {}/{} key {}: {origin}\n", secret.namespace, secret.name, secret.key));
        }
    }
    out
}

fn scan_diff(cli: &Cli, before: &Path, after: &Path, matching: Matching, noise: NoisePolicy) -> Result<(), Failure> {
    let read = |path: &Path| {
        parse::read_scan_file(path).map_err(|error| {
            let text = format!("error: {}: {error}; it was not compared", path.display());
            Failure {
                code: exit::INVALID_INPUT,
                json: json!({ "error": text, "file": path.display().to_string() }),
                text,
            }
        })
    };
    let (a, b) = (read(before)?, read(after)?);
    let diffs = diff::compare(&a.hosts, &b.hosts, matching, noise);
    match cli.output {
        Output::Json => print(
            &json!({
                "matching": matching,
                "before": { "file": before.display().to_string(), "start": a.info.start, "hosts": a.hosts.len() },
                "after": { "file": after.display().to_string(), "start": b.info.start, "hosts": b.hosts.len() },
                "hosts": diffs,
            })
            .to_string(),
        )?,
        Output::Text => print(&report::diff_text(&diffs))?,
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(Failure { code: exit::DIFFERENT, text: String::new(), json: serde_json::Value::Null })
    }
}
