//! `seclab certs status|rotate`: the certificates seclab issues.

use std::time::Duration;

use serde_json::json;

use seclab::reconcile::certificates;

use super::cluster::{apply_rendered, connect, runtime};
use super::{Failure, Secrets, load, load_with_secrets, print, render_lab};
use crate::{ApplyArgs, Cli, Output};

/// `seclab certs status`: each certificate, its dates and whether it is due; never a key.
pub fn status(cli: &Cli) -> Result<(), Failure> {
    let lab = load(cli)?;
    let rendered = render_lab(cli, &lab)?;
    runtime()?.block_on(async {
        let cluster = connect(cli, &lab).await?;
        let found = certificates::status(&cluster, &rendered.secrets).await.map_err(Failure::of)?;
        if cli.output == Output::Json {
            return print(&json!({ "lab": lab.name(), "certificates": found }).to_string());
        }
        if found.is_empty() {
            return print(&format!("Lab {} has no certificates that seclab issues.", lab.name()));
        }
        let mut out = String::new();
        for cert in &found {
            out.push_str(&format!("{} ({}): {}", cert.secret, cert.purpose, cert.state));
            if let Some(days) = cert.days_left {
                out.push_str(&format!(", {days} days left"));
            }
            if let Some(reason) = &cert.reason {
                out.push_str(&format!(" ({reason})"));
            }
            out.push('\n');
            if let Some(found) = &cert.found {
                let date = |seconds: i64| {
                    jiff::Timestamp::from_second(seconds)
                        .map_or_else(|_| seconds.to_string(), |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
                };
                out.push_str(&format!("  subject      {}\n  issuer       {}\n", found.subject, found.issuer));
                if !found.permitted_dns_names.is_empty() {
                    out.push_str(&format!("  signs for    {}\n", found.permitted_dns_names.join(", ")));
                }
                if !found.dns_names.is_empty() {
                    out.push_str(&format!("  DNS names    {}\n", found.dns_names.join(", ")));
                }
                out.push_str(&format!(
                    "  valid        {} to {}\n  SHA-256      {}\n",
                    date(found.not_before),
                    date(found.not_after),
                    found.fingerprint
                ));
            }
        }
        let due = found.iter().filter(|c| c.is_due()).count();
        out.push_str(&match due {
            0 => format!("All {} certificates are valid and not due.", found.len()),
            n => format!("{n} of {} certificates are due: `seclab apply` issues them again.", found.len()),
        });
        print(&out)
    })
}

/// `seclab certs rotate`: issue certificates again now, then apply the lab as `apply` does.
pub fn rotate(cli: &Cli, names: &[String], authorities: bool, args: &ApplyArgs) -> Result<(), Failure> {
    let lab = load_with_secrets(cli, Secrets::Apply)?;
    let mut rendered = render_lab(cli, &lab)?;
    let marked = certificates::rotate(&mut rendered.secrets, names, authorities).map_err(Failure::error)?;
    if cli.output == Output::Text {
        let certificates = seclab::words::count(marked as u64, "certificate", "certificates");
        eprintln!("Issuing {certificates} again; pods that mount them roll.");
    }
    apply_rendered(cli, &lab, rendered, args, false, Duration::ZERO)
}
