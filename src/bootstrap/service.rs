//! The systemd service that keeps a bootstrapped lab true: `seclab watch` on the node,
//! restarted always, its memory limited in proportion to the lab, the file system read-only
//! to it but for the scan directory and the scan database.

use std::path::{Path, PathBuf};

/// Where the unit is installed on the node.
pub const UNIT_PATH: &str = "/etc/systemd/system/seclab-watch.service";
/// The unit's name, for `systemctl`.
pub const UNIT: &str = "seclab-watch.service";
/// Where the service reads the variables of the file's `env:` secrets, when it exists.
pub const ENVIRONMENT_FILE: &str = "/etc/seclab/watch.env";

/// What the unit runs, and for which lab.
#[derive(Debug, Clone)]
pub struct Service {
    /// The lab's name.
    pub lab: String,
    /// seclab's own binary, absolute.
    pub binary: PathBuf,
    /// The desired-state file, absolute.
    pub file: PathBuf,
    /// The kubeconfig, absolute (kube's defaults when `None`).
    pub kubeconfig: Option<PathBuf>,
    /// The templates directory, absolute, when the lab uses one.
    pub templates: Option<PathBuf>,
    /// The directories `watch` writes: the scan directory, the SQLite database's.
    pub writable: Vec<PathBuf>,
    /// How many objects the lab has (the memory limit grows with them).
    pub objects: usize,
}

impl Service {
    /// The memory limit, in MiB: `watch` holds about 37 KiB per object (181-185 MiB for a
    /// 5,006-object lab, BENCHMARKS.md) over a base; the limit leaves it about twice that.
    pub fn memory_max_mib(&self) -> usize {
        128 + (self.objects * 64).div_ceil(1024)
    }

    /// The unit file.
    pub fn unit(&self) -> String {
        let quote = |path: &Path| quoted(&path.display().to_string());
        let mut command = vec![quote(&self.binary), "--file".into(), quote(&self.file)];
        if let Some(kubeconfig) = &self.kubeconfig {
            command.extend(["--kubeconfig".into(), quote(kubeconfig)]);
        }
        if let Some(templates) = &self.templates {
            command.extend(["--templates".into(), quote(templates)]);
        }
        command.push("watch".into());
        // `-`: a directory that does not exist yet does not stop the service (watch makes
        // the scan directory itself).
        let writable: Vec<String> = self.writable.iter().map(|dir| format!("-{}", quote(dir))).collect();
        format!(
            "# Written by `seclab bootstrap`: keeps lab {lab} as {file} says.\n\
             # `seclab bootstrap` writes it again when the lab changes; edit the lab, not this file.\n\
             [Unit]\n\
             Description=seclab watch: keep lab {lab} as its file says\n\
             Wants=network-online.target\n\
             After=network-online.target k3s.service\n\
             \n\
             [Service]\n\
             Type=exec\n\
             ExecStart={command}\n\
             EnvironmentFile=-{ENVIRONMENT_FILE}\n\
             Environment=NO_COLOR=1\n\
             Restart=always\n\
             RestartSec=5s\n\
             MemoryMax={memory}M\n\
             NoNewPrivileges=yes\n\
             ProtectSystem=strict\n\
             ProtectHome=read-only\n\
             PrivateTmp=yes\n\
             PrivateDevices=yes\n\
             ProtectKernelTunables=yes\n\
             ProtectKernelModules=yes\n\
             ProtectKernelLogs=yes\n\
             ProtectControlGroups=yes\n\
             ProtectClock=yes\n\
             ProtectHostname=yes\n\
             RestrictSUIDSGID=yes\n\
             RestrictRealtime=yes\n\
             RestrictNamespaces=yes\n\
             LockPersonality=yes\n\
             SystemCallArchitectures=native\n\
             UMask=0077\n\
             ReadWritePaths={writable}\n\
             \n\
             [Install]\n\
             WantedBy=multi-user.target\n",
            lab = self.lab,
            file = self.file.display(),
            command = command.join(" "),
            memory = self.memory_max_mib(),
            writable = writable.join(" "),
        )
    }
}

/// A word of a unit's command line: as it is when it needs no quoting, else in double quotes
/// with `\` and `"` escaped, `%` doubled (systemd's specifiers) and `$` doubled (its variables).
fn quoted(word: &str) -> String {
    let plain = word.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+:=,@".contains(&b));
    let escaped = word.replace('%', "%%").replace('$', "$$");
    if plain {
        return escaped;
    }
    format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(objects: usize) -> Service {
        Service {
            lab: "homelab".into(),
            binary: "/usr/local/bin/seclab".into(),
            file: "/srv/labs/my lab.yaml".into(),
            kubeconfig: Some("/etc/rancher/k3s/k3s.yaml".into()),
            templates: None,
            writable: vec!["/srv/labs/scans".into(), "/srv/labs".into()],
            objects,
        }
    }

    #[test]
    fn the_unit_runs_watch_on_the_file_with_a_limit_in_proportion_to_the_lab() {
        let unit = service(5_006).unit();
        assert!(unit.contains(
            "ExecStart=/usr/local/bin/seclab --file \"/srv/labs/my lab.yaml\" --kubeconfig /etc/rancher/k3s/k3s.yaml watch\n"
        ));
        assert!(unit.contains("MemoryMax=441M\n") && unit.contains("Restart=always\n"), "{unit}");
        assert!(unit.contains("ReadWritePaths=-/srv/labs/scans -/srv/labs\n"), "{unit}");
        assert_eq!(service(0).memory_max_mib(), 128);
        assert_eq!(quoted("100%$x"), "\"100%%$$x\"");
    }
}
