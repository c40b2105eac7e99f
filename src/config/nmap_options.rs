//! The nmap options a scan group's `nmapArgs` may give, read as nmap reads its command line
//! (getopt_long_only: one dash or two, a long option's value after `=`, a short option's value
//! attached to it). Only options that shape how a scan probes pass: one that reads or writes
//! a file (`-oX/path`, `--iL=/etc/shadow`, `--script=/tmp/x.nse`, `--excludefile`,
//! `--datadir`), spoofs or bounces traffic (`-S`, `-D`, `-b`, `--spoof-mac`) or replaces what
//! seclab sets (`-p`, `--exclude`, the output) is refused, however it is spelt.

use super::fields::Problem;

/// Long options that take no value.
const FLAGS: &[&str] = &[
    "open",
    "reason",
    "traceroute",
    "system-dns",
    "version-light",
    "version-all",
    "version-trace",
    "osscan-limit",
    "osscan-guess",
    "randomize-hosts",
    "packet-trace",
    "privileged",
    "unprivileged",
    "send-eth",
    "send-ip",
    "no-stylesheet",
    "defeat-rst-ratelimit",
    "defeat-icmp-ratelimit",
    "allports",
    "badsum",
];

/// Long options that take a value, written in the same item (`--max-retries=2`).
const VALUED: &[&str] = &[
    "top-ports",
    "port-ratio",
    "exclude-ports",
    "version-intensity",
    "script",
    "script-args",
    "script-timeout",
    "max-os-tries",
    "min-hostgroup",
    "max-hostgroup",
    "min-parallelism",
    "max-parallelism",
    "min-rtt-timeout",
    "max-rtt-timeout",
    "initial-rtt-timeout",
    "max-retries",
    "host-timeout",
    "scan-delay",
    "max-scan-delay",
    "min-rate",
    "max-rate",
    "ttl",
    "data-length",
    "mtu",
    "source-port",
    "scanflags",
    "dns-servers",
    "stats-every",
];

/// Options seclab sets itself, or that read or write files, with what to do instead.
const REFUSED: &[(&str, &str)] = &[
    ("p", "put ports in `ports`"),
    ("exclude", "put exclusions in `exclude`"),
    ("excludefile", "put exclusions in `exclude`"),
    ("iL", "put targets in `targets`"),
    ("iR", "put targets in `targets`"),
    ("resume", "each scheduled scan starts afresh"),
];

/// Checks one item of `nmapArgs`.
pub fn check(arg: &str) -> Result<(), Problem> {
    let Some(body) = arg.strip_prefix('-').filter(|b| !b.is_empty() && *b != "-") else {
        return Err(Problem::new(
            format!("`{arg}` in nmapArgs is not an option"),
            "put targets in `targets`; give option values in the same item, e.g. `--max-retries=2`",
        ));
    };
    let (long, body) = match body.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let (name, value) = match body.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (body, None),
    };
    if name.starts_with('o') && !FLAGS.contains(&name) && !name.starts_with("osscan") {
        return Err(refused(arg, "seclab writes the XML output itself"));
    }
    // getopt_long_only reads a single-dash item as a long option when it names one.
    if FLAGS.contains(&name) {
        return match value {
            None => Ok(()),
            Some(_) => Err(Problem::new(format!("`{arg}`: `{name}` takes no value"), "write it alone")),
        };
    }
    if VALUED.contains(&name) {
        return valued(arg, name, value);
    }
    // A short option takes its value attached: `-p22`, `-iL/etc/shadow`.
    if let Some((_, instead)) =
        REFUSED.iter().find(|(option, _)| *option == name || (!long && name.starts_with(option)))
    {
        return Err(refused(arg, instead));
    }
    if !long && value.is_none() && short(name) {
        return Ok(());
    }
    Err(refused(arg, "it is not among the options that shape a scan; see the README, \"The scan database\""))
}

fn refused(arg: &str, instead: &str) -> Problem {
    Problem::new(format!("nmap option `{arg}` is not passed on by seclab"), instead)
}

fn valued(arg: &str, name: &str, value: Option<&str>) -> Result<(), Problem> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Err(Problem::new(format!("`{arg}` has no value"), format!("give it in the same item: `--{name}=...`")));
    };
    // Script names, categories and expressions (`default and safe`), never a file.
    let file_like = |v: &str| v.contains(['/', '\\']) || v.contains(".nse") || v.contains("..");
    if name == "script" && file_like(value) {
        return Err(Problem::new(
            format!("`{arg}` names a file: scans run the scripts nmap ships, by name or category"),
            "give script names or categories, e.g. `--script=default,safe`",
        ));
    }
    Ok(())
}

/// Whether `name` (after one dash) is a short option that shapes a scan: a scan type
/// (`-sS`, `-sV`), host discovery (`-Pn`, `-PS22,80`), timing (`-T4`), verbosity, or one of
/// `-n -R -F -r -O -A -6`.
fn short(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else { return false };
    let rest = chars.as_str();
    match first {
        's' => rest.len() == 1 && "STAWMUNFXYZOnVCL".contains(rest),
        'P' => {
            matches!(rest, "n" | "E" | "P" | "M")
                || rest
                    .strip_prefix(['S', 'A', 'U', 'Y', 'O'])
                    .is_some_and(|ports| ports.bytes().all(|b| b.is_ascii_digit() || b == b',' || b == b'-'))
        }
        'T' => {
            matches!(rest, "0" | "1" | "2" | "3" | "4" | "5")
                || matches!(rest, "paranoid" | "sneaky" | "polite" | "normal" | "aggressive" | "insane")
        }
        'v' | 'd' => rest.chars().all(|c| c == first) || (rest.len() == 1 && rest.as_bytes()[0].is_ascii_digit()),
        'n' | 'R' | 'F' | 'r' | 'O' | 'A' | '6' => rest.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_that_shape_a_scan_pass() {
        for arg in [
            "-sV",
            "-sS",
            "-sT",
            "-sU",
            "-sC",
            "-sn",
            "-Pn",
            "-PS22,80",
            "-PE",
            "-T4",
            "-Tpolite",
            "-n",
            "-R",
            "-F",
            "-O",
            "-A",
            "-6",
            "-v",
            "-vv",
            "-d2",
            "--open",
            "-open",
            "--reason",
            "--top-ports=100",
            "--max-retries=2",
            "--host-timeout=10m",
            "--script=default,safe",
            "--script=banner and not intrusive",
            "--script-args=http.useragent=x",
            "--version-intensity=5",
            "--osscan-guess",
            "--stats-every=5s",
        ] {
            assert_eq!(check(arg).map_err(|p| p.message), Ok(()), "{arg}");
        }
    }

    #[test]
    fn files_spoofing_and_what_seclab_sets_are_refused_however_spelt() {
        for arg in [
            "-oX",
            "-oX/path",
            "--oX=/path",
            "-oA",
            "-oN",
            "-o",
            "--append-output",
            "-iL",
            "-iL/etc/shadow",
            "--iL=/etc/shadow",
            "-iR",
            "--script=/tmp/x.nse",
            "--script=x.nse",
            "--script=../x",
            "--excludefile=/x",
            "--exclude=10.0.0.1",
            "-p22",
            "-p",
            "--resume=x",
            "--datadir=/tmp",
            "--servicedb=/x",
            "-S10.0.0.1",
            "-D10.0.0.1",
            "-b",
            "--spoof-mac=0",
            "-e",
            "-sI",
            "-T9",
            "--no-such-option",
            "-x",
            "out.xml",
            "-",
            "--",
            "--top-ports",
            "--open=1",
            "--script-args-file=/etc/shadow",
            "--stylesheet=/x",
        ] {
            assert!(check(arg).is_err(), "{arg} passed");
        }
    }
}
