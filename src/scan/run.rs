//! Running nmap on this machine for one scan group, as its CronJob would.

use std::path::{Path, PathBuf};

use tokio::process::Command;

/// Runs `nmap -oX` with `arguments` and leaves the finished scan as
/// `<dir>/<start>.xml`: nmap writes a hidden partial file that is renamed only when nmap
/// exits successfully, so no reader ever sees half a scan.
pub async fn run_nmap(nmap: &Path, arguments: &[String], dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let start = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let partial = dir.join(format!(".{start}.xml.partial"));
    // Never replace an earlier scan started in the same second.
    let finished = (1..)
        .map(|n| if n == 1 { dir.join(format!("{start}.xml")) } else { dir.join(format!("{start}-{n}.xml")) })
        .find(|path| !path.exists())
        .unwrap_or_else(|| dir.join(format!("{start}.xml")));
    let output = Command::new(nmap)
        .arg("-oX")
        .arg(&partial)
        .args(arguments)
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}; install nmap (Debian: apt-get install nmap)", nmap.display()))?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("nmap failed ({}): {}", output.status, stderr.trim()));
    }
    std::fs::rename(&partial, &finished).map_err(|e| format!("cannot move the scan into place: {e}"))?;
    Ok(finished)
}
