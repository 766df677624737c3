//! Sending a batch in one request and, when the destination answers 413 (payload too
//! large), in halves: [`send_splitting_on_413`] / [`send_ranges_splitting_on_413`].

use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;

use vowguard_core::{Error, ErrorKind, EventOutcome};

/// Sends `batch` with `send` as one request; on a 413 answer splits it in halves and sends
/// them one after the other, recursively, down to single events.
///
/// The same as [`send_ranges_splitting_on_413`] with one initial request for the whole
/// batch (an empty batch sends nothing and returns no outcomes).
pub async fn send_splitting_on_413<'b, T, F, Fut>(
    batch: &'b [T],
    limit: &str,
    send: F,
) -> Vec<EventOutcome>
where
    F: FnMut(&'b [T]) -> Fut,
    Fut: Future<Output = Result<Vec<EventOutcome>, Error>>,
{
    send_ranges_splitting_on_413(batch, std::iter::once(0..batch.len()), limit, send).await
}

/// Sends the `requests` ranges of `batch` in order, one `send` call each, splitting a
/// range in halves whenever the destination answers 413, and returns exactly one
/// [`EventOutcome`] per event of `batch`, in batch order.
///
/// `send` makes ONE attempt for a sub-batch (a sub-slice of `batch`) and returns:
/// * `Ok(outcomes)`: the per-event outcomes of that sub-batch, in its order (a request that
///   simply succeeded returns [`EventOutcome::Delivered`] for each event);
/// * `Err(e)` with `e.status() == Some(413)`: the body is too large. A sub-batch of more
///   than one event is split in halves (first half first), which are sent in turn and
///   split again on 413. A single event still answered 413 is
///   [`Rejected`](EventOutcome::Rejected) with the message
///   `event is larger than {limit}: {e.message()}` and status 413, and the remaining
///   ranges are still sent;
/// * any other `Err(e)`: a request-level failure that applies to every event of the
///   sub-batch ([`EventOutcome::from_error`]). When it is retryable (rate limit, outage,
///   timeout) or [`ErrorKind::Unauthorized`], it holds for the rest of the batch too: the
///   ranges and halves not yet sent get the same outcome without being sent. Other
///   permanent errors (a rejected request) affect only that sub-batch.
///
/// Empty ranges are skipped. If `send` returns fewer outcomes than events, the events
/// without one get a retryable "event was not sent" error (extra outcomes are ignored).
/// `limit` completes the sentence "event is larger than ...", e.g. `"the Datadog intake
/// accepts"`. The function never retries or sleeps: the pipeline retries `Retry` outcomes.
///
/// # Panics
/// If a range in `requests` does not lie within `batch`.
pub async fn send_ranges_splitting_on_413<'b, T, F, Fut>(
    batch: &'b [T],
    requests: impl IntoIterator<Item = Range<usize>>,
    limit: &str,
    mut send: F,
) -> Vec<EventOutcome>
where
    F: FnMut(&'b [T]) -> Fut,
    Fut: Future<Output = Result<Vec<EventOutcome>, Error>>,
{
    let mut outcomes: Vec<Option<EventOutcome>> = (0..batch.len()).map(|_| None).collect();
    let mut pending: VecDeque<Range<usize>> = requests.into_iter().collect();
    while let Some(range) = pending.pop_front() {
        if range.is_empty() {
            continue;
        }
        let (start, end) = (range.start, range.end);
        match send(&batch[start..end]).await {
            Ok(results) => {
                for (slot, outcome) in outcomes[start..end].iter_mut().zip(results) {
                    *slot = Some(outcome);
                }
            }
            Err(e) if e.status() == Some(413) && end - start > 1 => {
                let mid = start + (end - start) / 2;
                tracing::debug!(
                    target: "vowguard::http",
                    events = end - start,
                    "request body too large (413); splitting in halves"
                );
                pending.push_front(mid..end);
                pending.push_front(start..mid);
            }
            Err(e) => {
                let e = if e.status() == Some(413) {
                    Error::rejected(format!("event is larger than {limit}: {}", e.message()))
                        .with_status(413)
                } else {
                    e
                };
                // Rate limits, outages and refused credentials hold for the rest too:
                // do not keep sending the remaining ranges.
                let stop = e.is_retryable() || e.kind() == ErrorKind::Unauthorized;
                let mut ranges = Vec::with_capacity(1 + pending.len());
                ranges.push(start..end);
                if stop {
                    ranges.extend(pending.drain(..));
                }
                for range in ranges {
                    for slot in &mut outcomes[range] {
                        *slot = Some(EventOutcome::from_error(e.clone()));
                    }
                }
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| EventOutcome::Retry(Error::internal("event was not sent"))))
        .collect()
}

/// The same outcome with `f` applied to its error, if it has one (e.g. to tag errors with
/// the component id).
pub fn map_outcome_error(outcome: EventOutcome, f: impl FnOnce(Error) -> Error) -> EventOutcome {
    match outcome {
        EventOutcome::Delivered => EventOutcome::Delivered,
        EventOutcome::Retry(e) => EventOutcome::Retry(f(e)),
        EventOutcome::Rejected(e) => EventOutcome::Rejected(f(e)),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::future::{Ready, ready};
    use std::time::Duration;

    use super::*;

    const LIMIT: &str = "the test destination accepts";

    /// A fake destination: records each sub-batch it is sent and answers with `answer`.
    struct Fake<A> {
        calls: RefCell<Vec<Vec<&'static str>>>,
        answer: A,
    }

    impl<A> Fake<A>
    where
        A: Fn(&[&'static str]) -> Result<Vec<EventOutcome>, Error>,
    {
        fn new(answer: A) -> Self {
            Self {
                calls: RefCell::new(Vec::new()),
                answer,
            }
        }

        fn send(&self, chunk: &[&'static str]) -> Ready<Result<Vec<EventOutcome>, Error>> {
            self.calls.borrow_mut().push(chunk.to_vec());
            ready((self.answer)(chunk))
        }

        fn calls(&self) -> Vec<Vec<&'static str>> {
            self.calls.borrow().clone()
        }
    }

    fn delivered(chunk: &[&str]) -> Vec<EventOutcome> {
        chunk.iter().map(|_| EventOutcome::Delivered).collect()
    }

    fn too_large() -> Error {
        Error::rejected("payload too large (status 413)").with_status(413)
    }

    /// A destination that answers 413 to any request of more than `max` events.
    fn at_most(max: usize) -> impl Fn(&[&'static str]) -> Result<Vec<EventOutcome>, Error> {
        move |chunk| {
            if chunk.len() > max {
                Err(too_large())
            } else {
                Ok(delivered(chunk))
            }
        }
    }

    fn summary(outcomes: &[EventOutcome]) -> Vec<&'static str> {
        outcomes
            .iter()
            .map(|o| match o {
                EventOutcome::Delivered => "delivered",
                EventOutcome::Retry(_) => "retry",
                EventOutcome::Rejected(_) => "rejected",
            })
            .collect()
    }

    const FOUR: [&str; 4] = ["a", "b", "c", "d"];

    #[tokio::test]
    async fn no_split_needed_is_one_request() {
        let fake = Fake::new(at_most(4));
        let outcomes = send_splitting_on_413(&FOUR, LIMIT, |c| fake.send(c)).await;
        assert_eq!(summary(&outcomes), ["delivered"; 4]);
        assert_eq!(fake.calls(), [FOUR.to_vec()]);
    }

    #[tokio::test]
    async fn per_event_outcomes_are_kept_in_order() {
        let fake = Fake::new(|chunk: &[&'static str]| {
            Ok(chunk
                .iter()
                .map(|e| match *e {
                    "b" => EventOutcome::Rejected(Error::rejected("mapping")),
                    "c" => EventOutcome::Retry(Error::unavailable("shard")),
                    _ => EventOutcome::Delivered,
                })
                .collect())
        });
        let outcomes = send_splitting_on_413(&FOUR, LIMIT, |c| fake.send(c)).await;
        assert_eq!(
            summary(&outcomes),
            ["delivered", "rejected", "retry", "delivered"]
        );
    }

    #[tokio::test]
    async fn split_once_sends_both_halves_in_order() {
        let fake = Fake::new(at_most(2));
        let outcomes = send_splitting_on_413(&FOUR, LIMIT, |c| fake.send(c)).await;
        assert_eq!(summary(&outcomes), ["delivered"; 4]);
        assert_eq!(
            fake.calls(),
            [FOUR.to_vec(), vec!["a", "b"], vec!["c", "d"]]
        );
    }

    #[tokio::test]
    async fn odd_sizes_split_recursively() {
        let batch = ["a", "b", "c", "d", "e"];
        let fake = Fake::new(at_most(1));
        let outcomes = send_splitting_on_413(&batch, LIMIT, |c| fake.send(c)).await;
        assert_eq!(summary(&outcomes), ["delivered"; 5]);
        assert_eq!(
            fake.calls(),
            [
                batch.to_vec(),
                vec!["a", "b"],
                vec!["a"],
                vec!["b"],
                vec!["c", "d", "e"],
                vec!["c"],
                vec!["d", "e"],
                vec!["d"],
                vec!["e"],
            ]
        );
    }

    #[tokio::test]
    async fn single_event_still_too_large_is_rejected_and_the_rest_is_sent() {
        // Any request that contains "c" is too large.
        let fake = Fake::new(|chunk: &[&'static str]| {
            if chunk.contains(&"c") {
                Err(too_large())
            } else {
                Ok(delivered(chunk))
            }
        });
        let outcomes = send_splitting_on_413(&FOUR, LIMIT, |c| fake.send(c)).await;
        assert_eq!(
            summary(&outcomes),
            ["delivered", "delivered", "rejected", "delivered"]
        );
        let EventOutcome::Rejected(e) = &outcomes[2] else {
            unreachable!()
        };
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert_eq!(e.status(), Some(413));
        assert_eq!(
            e.message(),
            format!("event is larger than {LIMIT}: payload too large (status 413)")
        );
        assert_eq!(
            fake.calls(),
            [
                FOUR.to_vec(),
                vec!["a", "b"],
                vec!["c", "d"],
                vec!["c"],
                vec!["d"]
            ]
        );
    }

    #[tokio::test]
    async fn retryable_answer_on_first_half_holds_for_the_unsent_half() {
        let fake = Fake::new(|chunk: &[&'static str]| match chunk.len() {
            4 => Err(too_large()),
            _ => Err(Error::new(ErrorKind::RateLimited, "slow down")
                .with_status(429)
                .with_retry_after(Duration::from_secs(7))),
        });
        let outcomes = send_splitting_on_413(&FOUR, LIMIT, |c| fake.send(c)).await;
        assert_eq!(summary(&outcomes), ["retry"; 4]);
        for outcome in &outcomes {
            let EventOutcome::Retry(e) = outcome else {
                unreachable!()
            };
            assert_eq!(e.status(), Some(429));
            assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        }
        assert_eq!(fake.calls(), [FOUR.to_vec(), vec!["a", "b"]]);
    }

    #[tokio::test]
    async fn unauthorized_on_first_half_holds_for_the_unsent_half() {
        let fake = Fake::new(|chunk: &[&'static str]| match chunk.len() {
            4 => Err(too_large()),
            _ => Err(Error::new(ErrorKind::Unauthorized, "bad key").with_status(403)),
        });
        let outcomes = send_splitting_on_413(&FOUR, LIMIT, |c| fake.send(c)).await;
        assert_eq!(summary(&outcomes), ["rejected"; 4]);
        assert!(outcomes.iter().all(|o| matches!(
            o,
            EventOutcome::Rejected(e) if e.kind() == ErrorKind::Unauthorized
        )));
        assert_eq!(fake.calls(), [FOUR.to_vec(), vec!["a", "b"]]);
    }

    #[tokio::test]
    async fn permanent_rejection_of_one_half_does_not_stop_the_other() {
        let fake = Fake::new(|chunk: &[&'static str]| match chunk {
            [_, _, _, _] => Err(too_large()),
            ["a", "b"] => Err(Error::rejected("bad request").with_status(400)),
            _ => Ok(delivered(chunk)),
        });
        let outcomes = send_splitting_on_413(&FOUR, LIMIT, |c| fake.send(c)).await;
        assert_eq!(
            summary(&outcomes),
            ["rejected", "rejected", "delivered", "delivered"]
        );
        assert_eq!(
            fake.calls(),
            [FOUR.to_vec(), vec!["a", "b"], vec!["c", "d"]]
        );
    }

    #[tokio::test]
    async fn ranges_are_sent_in_turn_and_a_retryable_answer_stops_the_later_ones() {
        let batch = ["a", "b", "c", "d", "e"];
        let ok = Fake::new(at_most(5));
        let outcomes =
            send_ranges_splitting_on_413(&batch, vec![0..2, 2..2, 2..5], LIMIT, |c| ok.send(c))
                .await;
        assert_eq!(summary(&outcomes), ["delivered"; 5]);
        assert_eq!(ok.calls(), [vec!["a", "b"], vec!["c", "d", "e"]]);

        let down = Fake::new(|_: &[&'static str]| Err(Error::unavailable("503")));
        let outcomes =
            send_ranges_splitting_on_413(&batch, vec![0..2, 2..5], LIMIT, |c| down.send(c)).await;
        assert_eq!(summary(&outcomes), ["retry"; 5]);
        assert_eq!(down.calls(), [vec!["a", "b"]]);
    }

    #[tokio::test]
    async fn empty_batch_sends_nothing() {
        let fake = Fake::new(at_most(1));
        let outcomes = send_splitting_on_413(&[] as &[&str], LIMIT, |c| fake.send(c)).await;
        assert!(outcomes.is_empty());
        assert!(fake.calls().is_empty());
    }

    #[tokio::test]
    async fn missing_outcomes_are_retryable() {
        let fake = Fake::new(|_: &[&'static str]| Ok(vec![EventOutcome::Delivered]));
        let outcomes = send_splitting_on_413(&["a", "b"], LIMIT, |c| fake.send(c)).await;
        assert_eq!(summary(&outcomes), ["delivered", "retry"]);
    }

    #[test]
    fn map_outcome_error_maps_only_errors() {
        let tag = |e: Error| e.with_component("sink");
        assert!(map_outcome_error(EventOutcome::Delivered, tag).is_delivered());
        let EventOutcome::Retry(e) =
            map_outcome_error(EventOutcome::Retry(Error::unavailable("x")), tag)
        else {
            unreachable!()
        };
        assert_eq!(e.component(), Some("sink"));
        let EventOutcome::Rejected(e) =
            map_outcome_error(EventOutcome::Rejected(Error::rejected("x")), tag)
        else {
            unreachable!()
        };
        assert_eq!(e.component(), Some("sink"));
    }
}
