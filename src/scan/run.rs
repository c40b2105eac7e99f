//! Running nmap on this machine for one scan group, as its CronJob would.

use std::path::{Path, PathBuf};

use tokio::process::Command;

/// Why a scan could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scan directory could not be made.
    #[error("cannot create {}", dir.display())]
    Directory {
        /// The directory.
        dir: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// nmap could not be started.
    #[error("cannot run {}; install nmap (Debian: apt-get install nmap)", nmap.display())]
    Start {
        /// The program.
        nmap: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// nmap ran and failed.
    #[error("nmap failed ({status}): {stderr}")]
    Failed {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it said.
        stderr: String,
    },
    /// The finished scan could not be renamed into place.
    #[error("cannot move the scan into place as {}", path.display())]
    Rename {
        /// Where it was going.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// Runs `nmap -oX` with `arguments` and leaves the finished scan as
/// `<dir>/<start>.xml`: nmap writes a hidden partial file that is renamed only when nmap
/// exits successfully, so no reader ever sees half a scan. With `progress`, nmap reports
/// every 5 seconds (`--stats-every`) and `progress` gets each percentage it gives.
pub async fn run_nmap(
    nmap: &Path,
    arguments: &[String],
    dir: &Path,
    progress: Option<&(dyn Fn(&str) + Sync)>,
) -> Result<PathBuf, RunError> {
    std::fs::create_dir_all(dir).map_err(|source| RunError::Directory { dir: dir.to_owned(), source })?;
    let start = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let partial = dir.join(format!(".{start}.xml.partial"));
    // Never replace an earlier scan started in the same second.
    let finished = (1..)
        .map(|n| if n == 1 { dir.join(format!("{start}.xml")) } else { dir.join(format!("{start}-{n}.xml")) })
        .find(|path| !path.exists())
        .unwrap_or_else(|| dir.join(format!("{start}.xml")));
    // nmap truncates the file it is given and keeps its mode: the scan is its owner's only.
    crate::scan::store::private_file(&partial).map_err(|source| RunError::Directory { dir: dir.to_owned(), source })?;
    let mut command = Command::new(nmap);
    command.arg("-oX").arg(&partial).args(arguments);
    if progress.is_some() && !arguments.iter().any(|a| a.starts_with("--stats-every")) {
        command.arg("--stats-every").arg("5s");
    }
    command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = command.spawn().map_err(|source| RunError::Start { nmap: nmap.to_owned(), source })?;
    let stdout = child.stdout.take().expect("piped");
    let report = async {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let (Some(progress), Some(done)) = (progress, percent_done(&line)) {
                progress(&done);
            }
        }
    };
    let (output, ()) = tokio::join!(child.wait_with_output(), report);
    let output = output.map_err(|source| RunError::Start { nmap: nmap.to_owned(), source })?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(RunError::Failed { status: output.status, stderr });
    }
    std::fs::rename(&partial, &finished).map_err(|source| RunError::Rename { path: finished.clone(), source })?;
    Ok(finished)
}

/// What one of nmap's `--stats-every` lines says of its progress: `SYN Stealth Scan: 45.00%`
/// from `SYN Stealth Scan Timing: About 45.00% done; ETC: 10:37 (0:00:06 remaining)`.
fn percent_done(line: &str) -> Option<String> {
    let (phase, rest) = line.split_once(" Timing: About ")?;
    let (percent, _) = rest.split_once(" done")?;
    Some(format!("{phase}: {percent}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nmaps_stats_lines_give_the_phase_and_percentage() {
        let line = "SYN Stealth Scan Timing: About 45.00% done; ETC: 10:37 (0:00:06 remaining)";
        assert_eq!(percent_done(line).as_deref(), Some("SYN Stealth Scan: 45.00%"));
        assert_eq!(
            percent_done("Stats: 0:00:05 elapsed; 0 hosts completed (1 up), 1 undergoing SYN Stealth Scan"),
            None
        );
    }
}
