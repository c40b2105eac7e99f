//! The `seclab` command line: parses arguments and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use seclab::config;
use seclab::render::rbac::Subject;

mod cli;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs before the first allocation, while mimalloc can still be told to commit its arena
/// as it is used rather than at once (an eagerly committed arena is backed by huge pages:
/// a one-shot `apply` of a 1,000-tenant lab peaked at 145 MiB with it, 130 MiB without).
#[ctor::ctor]
unsafe fn configure_allocator() {
    seclab::watch::memory::commit_as_used();
}

use cli::{Failure, exit, print};

/// One desired-state file to a running home-lab security stack on Kubernetes.
/// The desired-state file read when no --file names one.
const DEFAULT_FILE: &str = "seclab.yaml";
/// The same file spelt `.yml`, read when only it exists.
const SHORT_FILE: &str = "seclab.yml";

#[derive(Parser)]
#[command(name = "seclab", version, about, propagate_version = true)]
struct Cli {
    /// The desired-state file.
    #[arg(long, short, global = true, env = "SECLAB_FILE", default_value = DEFAULT_FILE)]
    file: PathBuf,
    /// Output format: `text` for people, `json` (one document per command) for scripts.
    #[arg(long, short, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// A directory of templates that override or extend the built-in ones (same layout).
    #[arg(long, global = true, env = "SECLAB_TEMPLATES")]
    templates: Option<PathBuf>,
    /// The kubeconfig to use; `KUBECONFIG` or `~/.kube/config` when unset.
    #[arg(long, global = true, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; `cluster.context` from the file, else the current context.
    #[arg(long, global = true)]
    context: Option<String>,
    /// More log output (-v: info, -vv: debug); `SECLAB_LOG` takes a full filter.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
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
        /// Write the Cortex home lab instead (registry, shared volume, ECK with its operator,
        /// Cortex with its job runner), ready for `seclab bootstrap`.
        #[arg(long)]
        homelab: bool,
    },
    /// Check the file: every problem, with file:line:column and the fix.
    Validate,
    /// Print the Kubernetes objects and node-side files the lab consists of; needs no cluster.
    Render {
        /// Write one file per object (and the node files) under this directory instead.
        #[arg(long)]
        out: Option<PathBuf>,
        /// With --out: replace the directory even when it holds files render did not write.
        #[arg(long, requires = "out")]
        force: bool,
        /// Print instead the least-privilege permissions seclab needs to apply this lab, for
        /// a cluster admin to apply: Namespaces, a ClusterRole, a Role per namespace, bindings.
        #[arg(long, conflicts_with = "out")]
        rbac_for_seclab: bool,
        /// With --rbac-for-seclab: bind the permissions to this user (default: seclab).
        #[arg(long, requires = "rbac_for_seclab", value_name = "NAME", conflicts_with = "for_serviceaccount")]
        for_user: Option<String>,
        /// With --rbac-for-seclab: bind them to this ServiceAccount instead (`seclab watch` in
        /// a pod).
        #[arg(long, requires = "rbac_for_seclab", value_name = "NAMESPACE:NAME", value_parser = service_account)]
        for_serviceaccount: Option<(String, String)>,
    },
    /// Show what apply would do: create, update (with a field-level diff), replace, prune.
    Plan {
        #[command(flatten)]
        change: ChangeArgs,
        /// Exit with 3 when changes are pending (0 when there are none).
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Reconcile the cluster (server-side apply, prune) and the scan database with the file.
    Apply {
        #[command(flatten)]
        apply: ApplyArgs,
        /// Wait until every object is ready (rolled out, bound, complete, healthy).
        #[arg(long)]
        wait: bool,
        /// How long --wait waits before failing with what is stuck.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// The lab's objects and their readiness, per component.
    Status,
    /// Delete every object the lab's inventory holds, after confirmation.
    Destroy {
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
        /// Also delete Namespaces, PersistentVolumes, claims and CRDs (the data they hold is lost).
        #[arg(long)]
        allow_destructive: bool,
    },
    /// Keep the lab true: apply every save, heal drift, ingest new scans, serve health,
    /// metrics and a status page. Stops cleanly on SIGINT or SIGTERM.
    Watch {
        /// Serve the endpoints on this address instead of `watch.listen` (port 0: any free one).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Prepare a fresh node and run the lab: node files (k3s, docker), the operators the file
    /// names, then the lab, waited for. Shows every change first; a second run changes nothing.
    Bootstrap(BootstrapArgs),
    /// The certificates seclab issues: their state, and issuing them again.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
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
enum CertsCommand {
    /// Each certificate: subject, DNS names, issuer, validity, fingerprint, and whether it is
    /// due (ok, renew-soon, expired, mismatch, missing). Never a key.
    Status,
    /// Issue certificates again now (every leaf, or those named), then apply the lab as
    /// `apply` does; pods that mount them roll.
    Rotate {
        /// Certificate Secrets to issue again (as `certs status` names them, without namespace).
        names: Vec<String>,
        /// Issue the CA again too, and so every certificate it signs.
        #[arg(long)]
        ca: bool,
        #[command(flatten)]
        apply: ApplyArgs,
    },
}

#[derive(Subcommand)]
enum ScanCommand {
    /// Reconcile the file's tenants and scan groups into the scan database.
    Sync,
    /// Ingest finished scans (files, or directories of `<tenant>/<group>/*.xml`; by
    /// default the scan directory), compare each with the group's last scan, and alert.
    Ingest {
        /// Scan files or directories.
        paths: Vec<PathBuf>,
        /// The group (`tenant/group`) of the files given, when their directories do not say.
        #[arg(long)]
        group: Option<String>,
        #[command(flatten)]
        delivery: DeliveryArgs,
    },
    /// Run nmap on this machine for a group (`tenant/group`), then ingest the scan.
    Run {
        /// The group, `tenant/group`.
        group: String,
        /// The nmap program.
        #[arg(long, default_value = "nmap")]
        nmap: PathBuf,
        #[command(flatten)]
        delivery: DeliveryArgs,
    },
    /// Deliver the alerts still waiting in the outbox.
    Deliver {
        /// Keep retrying failed deliveries for this long.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Per group: the last scan, hosts by status code, alerts waiting.
    Status,
    /// A group's scans, newest first, or with --host one host's changes.
    History {
        /// The group, `tenant/group`.
        group: String,
        /// Show this host's changes instead.
        #[arg(long)]
        host: Option<String>,
        /// How many entries.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Compare two nmap XML files (no database): exit 0 when they agree, 3 when they differ.
    Diff {
        /// The earlier and the later scan: two nmap XML files; with --group, two scan ids from
        /// `scan history` (one id: that scan and the one before; none: the last two).
        #[arg(num_args = 0..=2)]
        scans: Vec<String>,
        /// Compare scans stored for this group (`tenant/group`) instead of files.
        #[arg(long)]
        group: Option<String>,
        /// Pair hosts by `address` (seclab) or by address and host name (`ndiff`).
        #[arg(long = "match", value_enum, default_value_t = MatchBy::Address)]
        matching: MatchBy,
        /// Leave out ports whose service is `tcpwrapped`.
        #[arg(long)]
        ignore_tcpwrapped: bool,
        /// Leave out service changes where one side is only nmap's port-table guess.
        #[arg(long)]
        ignore_service_timeouts: bool,
        /// With --group: show the changes the file's `alerts` leaves out as noise (by default
        /// stored scans compare as `scan ingest` compared them, noise left out).
        #[arg(long, requires = "group")]
        show_noise: bool,
    },
}

/// How ingesting commands deliver the alerts they raise.
/// What plan and apply may do.
#[derive(clap::Args)]
struct ApplyArgs {
    #[command(flatten)]
    change: ChangeArgs,
    /// Do not ask before pruning or replacing objects.
    #[arg(long, short)]
    yes: bool,
}

/// What `plan` and `apply` may change: the flags they share.
#[derive(clap::Args)]
struct ChangeArgs {
    /// Leave objects removed from the file in the cluster.
    #[arg(long)]
    no_prune: bool,
    /// Take over fields that another field manager owns.
    #[arg(long)]
    force_conflicts: bool,
    /// Allow deleting Namespaces, PersistentVolumes, claims, CRDs, or over half of the lab at once.
    #[arg(long)]
    allow_destructive: bool,
    /// Take over existing objects of the same name that seclab does not own.
    #[arg(long)]
    adopt: bool,
    /// Delete and recreate objects whose change touches an immutable field.
    #[arg(long)]
    recreate: bool,
}

#[derive(clap::Args)]
struct BootstrapArgs {
    /// Show what bootstrap would write and apply; change nothing anywhere.
    #[arg(long)]
    dry_run: bool,
    /// Write the node files under this directory instead of `/` (tests, image builds).
    #[arg(long)]
    root: Option<PathBuf>,
    /// How long to wait for the operators, then for the lab, to be ready.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
    /// Do not install the systemd service that runs `seclab watch`.
    #[arg(long)]
    no_service: bool,
    #[command(flatten)]
    apply: ApplyArgs,
}

#[derive(clap::Args)]
struct DeliveryArgs {
    /// Queue alerts without sending them (`seclab scan deliver` sends them later).
    #[arg(long)]
    no_deliver: bool,
    /// Keep retrying failed deliveries for this long before leaving them queued.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    alert_timeout: std::time::Duration,
}

#[derive(Clone, Copy, ValueEnum)]
enum MatchBy {
    Address,
    Ndiff,
}

/// `NAMESPACE:NAME`, as `kubectl create rolebinding --serviceaccount` takes it.
fn service_account(value: &str) -> Result<(String, String), String> {
    match value.split_once(':') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
            Ok((namespace.to_owned(), name.to_owned()))
        }
        _ => Err(format!("expected NAMESPACE:NAME (like seclab:seclab), got {value:?}")),
    }
}

/// The global flags each command does not read. They stay accepted there (a script may put
/// `--kubeconfig` before any command), but its `--help` does not list them.
const IGNORED_FLAGS: &[(&str, &[&str])] = &[
    ("init", &["templates", "kubeconfig", "context"]),
    ("validate", &["kubeconfig", "context"]),
    ("render", &["kubeconfig", "context"]),
    ("scan", &["templates", "kubeconfig", "context"]),
    ("schema", &["file", "output", "templates", "kubeconfig", "context"]),
    ("completions", &["file", "output", "templates", "kubeconfig", "context"]),
];

/// The command line: clap's, with each command's help listing only the global flags it reads.
fn command() -> clap::Command {
    let mut command = Cli::command();
    for (name, flags) in IGNORED_FLAGS {
        // A subcommand that has an argument of a global's name keeps its own (clap does not
        // propagate over it): a hidden copy, still global, so its value reaches `Cli`.
        let hidden: Vec<clap::Arg> = command
            .get_arguments()
            .filter(|arg| flags.contains(&arg.get_id().as_str()))
            .map(|arg| arg.clone().hide(true))
            .collect();
        command = command.mut_subcommand(name, |sub| sub.args(hidden));
    }
    command
}

fn main() -> ExitCode {
    let parsed = command().try_get_matches().and_then(|matches| Cli::from_arg_matches(&matches));
    let mut cli = match parsed {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    // The default file may be spelt `seclab.yml`, as YAML files often are.
    if cli.file == std::path::Path::new(DEFAULT_FILE) && !cli.file.exists() && std::path::Path::new(SHORT_FILE).exists()
    {
        cli.file = SHORT_FILE.into();
    }
    // kube's own client stack (seclab's is used unless the kubeconfig names a proxy) logs
    // each failed request at ERROR; seclab reports the error itself, with its causes, so
    // that line is shown only with -v. seclab's stack logs requests at DEBUG (-vv).
    let level = match cli.verbose {
        0 => "warn,kube_client::client::builder=off,seclab::alert=info,seclab::watch=info",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SECLAB_LOG").unwrap_or_else(|_| level.into());
    let ansi = cli::color(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .init();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.code == exit::DIFFERENT => ExitCode::from(failure.code),
        Err(failure) => {
            match cli.output {
                Output::Text => eprintln!("{}", failure.text.trim_end()),
                Output::Json if failure.json.is_null() => {}
                Output::Json => cli::write_line(format_args!("{}", failure.json)),
            }
            ExitCode::from(failure.code)
        }
    }
}

/// A command line clap cannot parse: its message on stderr, and with `--output json` also one
/// JSON document on stdout, so that scripts get one; help and version print as usual.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        error.exit();
    }
    let args: Vec<String> = std::env::args().collect();
    let json = args.windows(2).any(|w| matches!(w[0].as_str(), "--output" | "-o") && w[1] == "json")
        || args.iter().any(|a| a == "--output=json" || a == "-ojson");
    if json {
        let kind = error.kind().as_str().map_or_else(|| error.to_string(), str::to_owned);
        let detail = error.to_string();
        let message = detail.lines().next().unwrap_or_default().trim_start_matches("error: ");
        // clap's own usage line for the command, as its text shows it.
        let help = match detail.lines().find_map(|l| l.strip_prefix("Usage: ")) {
            Some(usage) => format!("Usage: {usage}; add --help to see every option."),
            None => "Add --help to see every option.".to_owned(),
        };
        let failure = cli::Failure::usage(message, &help).with(serde_json::json!({ "kind": kind }));
        cli::write_line(format_args!("{}", failure.json));
    }
    let _ = error.print();
    ExitCode::from(exit::INVALID_INPUT)
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Init { force, homelab } => cli::lab::init(cli, *force, *homelab),
        Command::Validate => cli::lab::validate(cli),
        Command::Render { out, force, rbac_for_seclab, for_user, for_serviceaccount } => {
            let rbac_for = rbac_for_seclab.then(|| match (for_user, for_serviceaccount) {
                (_, Some((namespace, name))) => Subject::ServiceAccount(namespace.clone(), name.clone()),
                (user, None) => Subject::User(user.clone().unwrap_or_else(|| "seclab".into())),
            });
            cli::lab::render(cli, out.as_deref(), *force, rbac_for.as_ref())
        }
        Command::Plan { change, detailed_exitcode } => cli::cluster::plan(cli, change, *detailed_exitcode),
        Command::Apply { apply, wait, timeout } => cli::cluster::apply(cli, apply, *wait, *timeout),
        Command::Status => cli::cluster::status(cli),
        Command::Destroy { yes, allow_destructive } => cli::cluster::destroy(cli, *yes, *allow_destructive),
        Command::Watch { listen } => cli::watch::watch(cli, *listen),
        Command::Bootstrap(args) => cli::bootstrap::bootstrap(cli, args),
        Command::Scan { command } => cli::scan::run(cli, command),
        Command::Certs { command: CertsCommand::Status } => cli::certs::status(cli),
        Command::Certs { command: CertsCommand::Rotate { names, ca, apply } } => {
            cli::certs::rotate(cli, names, *ca, apply)
        }
        Command::Schema => print(&serde_json::to_string_pretty(&config::json_schema()).map_err(Failure::error)?),
        Command::Completions { shell } => {
            // Written whole first: clap_complete panics when stdout is closed under it.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut command(), "seclab", &mut script);
            print(&String::from_utf8_lossy(&script))
        }
    }
}
