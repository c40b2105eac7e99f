//! Many requests at once, bounded, and stoppable: the one way plan, apply and wait run work
//! in parallel.

use futures::{StreamExt, stream};
use tokio_util::sync::CancellationToken;

/// Requests in flight at once.
pub const CONCURRENCY: usize = 16;

/// The work was stopped from outside (a signal, or a newer desired state in `watch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped before it finished")]
pub struct Cancelled;

/// Runs `work` on every item, [`CONCURRENCY`] at a time, and returns the results in the order
/// they finish. When `cancel` fires, the work in flight is dropped and nothing more starts.
pub async fn fan_out<I, F, Fut>(items: I, cancel: &CancellationToken, work: F) -> Result<Vec<Fut::Output>, Cancelled>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future,
{
    let all = stream::iter(items).map(work).buffer_unordered(CONCURRENCY).collect::<Vec<_>>();
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(Cancelled),
        done = all => Ok(done),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn runs_everything_but_never_more_than_the_bound_at_once() {
        let (running, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let mut done = fan_out(0..100, &cancel, |i| {
            let (running, peak) = (&running, &peak);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                i
            }
        })
        .await
        .unwrap();
        done.sort_unstable();
        assert_eq!(done, (0..100).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= CONCURRENCY);
    }

    #[tokio::test]
    async fn a_cancelled_fan_out_stops_and_says_so() {
        let cancel = CancellationToken::new();
        let started = AtomicUsize::new(0);
        let stopper = cancel.clone();
        let work = fan_out(0..1000, &cancel, |_| {
            started.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(3600))
        });
        let (result, ()) = tokio::join!(work, async move { stopper.cancel() });
        assert_eq!(result, Err(Cancelled));
        assert!(started.load(Ordering::SeqCst) <= CONCURRENCY, "nothing starts after the bound is full");
    }
}
