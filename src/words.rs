//! How seclab writes what people read: counts with their nouns.

/// `n` with its noun: `one` when `n` is 1, `many` otherwise (`1 host up`, `2 hosts up`).
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1u32, "host up", "hosts up"), "1 host up");
        assert_eq!(count(0u32, "change", "changes"), "0 changes");
        assert_eq!(count(2u64, "alert queued", "alerts queued"), "2 alerts queued");
    }
}
