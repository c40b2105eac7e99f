//! The read-only status page: objects not ready and why, the last rejected edit, scan
//! groups with hosts by status code, and the newest changes between scans.

use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment};

use super::state::View;

static PAGE: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut environment = Environment::new();
    environment.set_auto_escape_callback(|_| AutoEscape::Html);
    environment.add_template("status.html", include_str!("status.html")).expect("the status page template parses");
    environment
});

/// The page for `view`, every value HTML-escaped.
pub fn render(view: &View) -> Result<String, minijinja::Error> {
    PAGE.get_template("status.html")?
        .render(minijinja::context! { view => minijinja::Value::from(minijinja::value::Serde(view)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let view = View {
            lab: "lab".into(),
            rejected_edit: Some("lab.yaml:3:1: <script>".into()),
            reconciled: true,
            active: true,
            ..View::default()
        };
        let html = render(&view).unwrap();
        assert!(html.contains("Last edit rejected"), "{html}");
        assert!(html.contains("lab.yaml:3:1: &lt;script&gt;") && !html.contains("<script>"), "{html}");
    }
}
