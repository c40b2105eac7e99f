//! The scan-database side of a lab: where it is, and the file's tenants and groups
//! reconciled into it.

use std::path::{Path, PathBuf};

use crate::causes::one_line;
use crate::config::Lab;
use crate::scan::store::{Store, StoreError, redact_url, secured_url};

/// The directory a lab's relative paths are relative to: the desired-state file's.
pub fn base_dir(lab: &Lab) -> PathBuf {
    lab.path()
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Opens the lab's scan database: PostgreSQL when `scanDatabase.url` is set, else SQLite.
pub async fn open(lab: &Lab) -> Result<Store, StoreError> {
    let spec = &lab.spec().scan_database;
    let base = base_dir(lab);
    match &spec.url {
        Some(url) => {
            let url = url
                .resolve(&base)
                .map_err(|e| StoreError::Open { target: "scanDatabase.url".into(), message: one_line(&e) })?;
            let ca = spec.tls_ca.as_ref().map(|ca| base.join(ca));
            let url = secured_url(&url, spec.tls, ca.as_deref())
                .map_err(|message| StoreError::Open { target: redact_url(&url), message })?;
            Store::open_postgres(&url).await
        }
        None => Store::open_sqlite(&base.join(&spec.path)).await,
    }
}

/// Where this machine finds scan files: `scanDatabase.scanDirectory`, else the hostPath of
/// the scan volume plus `/scans`, else `scans/` beside the file.
pub fn scan_directory(lab: &Lab) -> PathBuf {
    let spec = lab.spec();
    let base = base_dir(lab);
    let dir = match &spec.scan_database.scan_directory {
        Some(dir) => base.join(dir),
        None => spec
            .storage
            .volumes
            .iter()
            .find(|v| v.name == spec.scan_database.scan_volume)
            .and_then(|v| v.host_path.as_ref())
            .map_or_else(|| base.join("scans"), |host_path| Path::new(host_path).join("scans")),
    };
    // `./scans`, not `././scans`, in what seclab prints and stores.
    dir.components().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, SourceFile};

    #[test]
    fn the_scan_directory_is_printed_without_repeated_dots() {
        let text = "apiVersion: seclab.dev/v1alpha1\nkind: Lab\nmetadata:\n  name: lab\nscanDatabase:\n  scanDirectory: ./scans\n";
        let lab = config::parse(SourceFile::new("lab.yaml", text)).unwrap();
        assert_eq!(scan_directory(&lab), Path::new("./scans"));
        let nested = config::parse(SourceFile::new("labs/one/lab.yaml", text)).unwrap();
        assert_eq!(scan_directory(&nested), Path::new("labs/one/scans"));
    }
}
