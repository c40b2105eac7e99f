//! A real browser: Debian's Chromium, headless, reading a page as a person would see it.

use std::path::Path;
use std::process::Command;

use super::nmap::program;

fn chromium(args: &[&str], url: &str) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(program("chromium"))
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}

/// The page at `url` after the browser loaded and laid it out: its DOM as HTML.
pub fn dom(url: &str) -> String {
    String::from_utf8(chromium(&["--dump-dom"], url).stdout).expect("the DOM is UTF-8")
}

/// A screenshot of the page at `url`, written to `path` (PNG).
pub fn screenshot(url: &str, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    chromium(&[&format!("--screenshot={}", path.display()), "--window-size=1200,1000"], url);
    assert!(path.is_file(), "no screenshot at {}", path.display());
}
