//! An error and the errors that caused it, as people read them: the outermost message
//! first, then each cause that adds something (libraries often repeat their cause's text in
//! their own message; such a cause is left out).

use std::error::Error;

/// The messages of `error` and of each of its sources, outermost first, without a cause
/// whose text the message before it already holds.
pub fn chain(error: &(dyn Error + 'static)) -> Vec<String> {
    let mut lines: Vec<String> = vec![error.to_string()];
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !lines.last().is_some_and(|last| last.contains(&text)) {
            lines.push(text);
        }
        next = cause.source();
    }
    lines
}

/// The whole chain on one line, joined with `: ` (for logs and status pages).
pub fn one_line(error: &(dyn Error + 'static)) -> String {
    chain(error).join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot reach the API server")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("connect: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn each_cause_is_listed_once() {
        let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(chain(&Outer(refused())), ["cannot reach the API server", "connection refused"]);
        assert_eq!(chain(&Repeats(refused())), ["connect: connection refused"]);
        assert_eq!(one_line(&Outer(refused())), "cannot reach the API server: connection refused");
    }
}
