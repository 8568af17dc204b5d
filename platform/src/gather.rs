//! Gathering concurrent calls into rounds (group commit): the calls for one
//! key that arrive while a round of that key runs wait for it to end, then
//! go together in the next, which one of them runs for all. A lone call runs
//! at once; under load rounds grow instead of queues. No task of its own:
//! a round runs in the future of a call that is waiting anyway.

use std::{
    collections::HashMap,
    future::Future,
    hash::Hash,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::oneshot;

pub struct Gather<K, I, O> {
    /// A line per key with calls in flight: bounded by them.
    lines: Mutex<HashMap<K, Arc<Line<I, O>>>>,
    max: usize,
}

struct Line<I, O> {
    /// At most one per call in flight.
    waiting: Mutex<Vec<(I, oneshot::Sender<O>)>>,
    /// Held by the call running this key's round.
    turn: tokio::sync::Mutex<()>,
}

impl<K: Eq + Hash + Clone, I, O> Gather<K, I, O> {
    /// At most `max` inputs go in one round.
    pub fn new(max: usize) -> Self {
        Self {
            lines: Mutex::default(),
            max: max.max(1),
        }
    }

    /// The output for `input` from a round of `key`. `round` answers its
    /// inputs in order, one output each; the round that takes this input
    /// may be another call's (calls of one key pass equivalent rounds).
    /// `None` if that round gave no output for it (it failed part-way, or
    /// the call running it was dropped).
    pub async fn call<F, Fut>(&self, key: K, input: I, round: F) -> Option<O>
    where
        F: Fn(Vec<I>) -> Fut,
        Fut: Future<Output = Vec<O>>,
    {
        let line = self.line(&key);
        let (reply, mut answer) = oneshot::channel();
        lock(&line.waiting).push((input, reply));
        // A call answered by another's round leaves at once; one still
        // waiting takes the turn when it comes and runs a round for whatever
        // waits, itself included unless `max` leaves it for the next.
        let output = loop {
            tokio::select! {
                biased;
                output = &mut answer => break output.ok(),
                _turn = line.turn.lock() => {
                    let batch: Vec<_> = {
                        let mut waiting = lock(&line.waiting);
                        let take = waiting.len().min(self.max);
                        waiting.drain(..take).collect()
                    };
                    if !batch.is_empty() {
                        let (inputs, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                        for (reply, output) in replies.into_iter().zip(round(inputs).await) {
                            let _ = reply.send(output);
                        }
                    }
                }
            }
        };
        self.done_with(&key, line);
        output
    }

    fn line(&self, key: &K) -> Arc<Line<I, O>> {
        lock(&self.lines)
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Line {
                    waiting: Mutex::default(),
                    turn: tokio::sync::Mutex::default(),
                })
            })
            .clone()
    }

    /// Forgets the key's line once no call holds it (a call that got it
    /// just before makes a new one: it only gathers less).
    fn done_with(&self, key: &K, line: Arc<Line<I, O>>) {
        let mut lines = lock(&self.lines);
        // Ours and the map's.
        if Arc::strong_count(&line) == 2 {
            lines.remove(key);
        }
    }

    #[cfg(test)]
    fn keys_in_flight(&self) -> usize {
        lock(&self.lines).len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicUsize, Ordering},
        time::Duration,
    };

    use super::*;

    /// Makes `count` calls at once, call `i` with key `key_of(i)`, through
    /// rounds that double their inputs after a pause (and check that each
    /// round holds one key's inputs); checks each answer is its own; returns
    /// the rounds' sizes.
    async fn calls_at_once(
        gather: Gather<u8, u32, u32>,
        count: u32,
        key_of: fn(u32) -> u8,
    ) -> Vec<usize> {
        let gather = Arc::new(gather);
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let calls: Vec<_> = (0..count)
            .map(|i| {
                let (gather, sizes) = (gather.clone(), sizes.clone());
                tokio::spawn(async move {
                    let key = key_of(i);
                    let answer = gather
                        .call(key, i, |inputs| {
                            assert!(inputs.iter().all(|&input| key_of(input) == key));
                            lock(&sizes).push(inputs.len());
                            async move {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                inputs.into_iter().map(|i| i * 2).collect()
                            }
                        })
                        .await;
                    (i, answer)
                })
            })
            .collect();
        for call in calls {
            let (i, answer) = call.await.unwrap();
            assert_eq!(answer, Some(i * 2));
        }
        assert_eq!(gather.keys_in_flight(), 0, "a line outlived its calls");
        let sizes = lock(&sizes).clone();
        assert_eq!(sizes.iter().sum::<usize>(), count as usize);
        sizes
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn calls_arriving_during_a_round_go_together_in_the_next_each_with_its_own_answer() {
        let rounds = calls_at_once(Gather::new(1_000), 200, |_| 0).await.len();
        assert!(rounds < 20, "200 calls took {rounds} rounds");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn keys_run_their_rounds_apart_and_no_round_exceeds_max() {
        let sizes = calls_at_once(Gather::new(7), 100, |i| (i % 2) as u8).await;
        assert!(
            sizes.iter().all(|&size| (1..=7).contains(&size)),
            "{sizes:?}"
        );
    }

    /// Calls B, C and D wait during round 1 and go in round 2; E arrives
    /// during round 2. C and D, answered by B's round, return as it ends,
    /// without waiting for round 3 (E's), which the test holds open.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_call_answered_by_another_round_returns_without_waiting_for_the_next() {
        let gather = Arc::new(Gather::<u8, u32, u32>::new(100));
        let started = Arc::new(AtomicUsize::new(0));
        let ends = Arc::new(tokio::sync::Semaphore::new(0));
        let call = |i: u32| {
            let (gather, started, ends) = (gather.clone(), started.clone(), ends.clone());
            tokio::spawn(async move {
                gather
                    .call(0, i, |inputs| {
                        let (started, ends) = (started.clone(), ends.clone());
                        async move {
                            started.fetch_add(1, Ordering::SeqCst);
                            ends.acquire().await.unwrap().forget();
                            inputs
                        }
                    })
                    .await
            })
        };
        let rounds_started = |n: usize| {
            let started = started.clone();
            async move {
                while started.load(Ordering::SeqCst) < n {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        let a = call(1);
        rounds_started(1).await;
        let waiting: Vec<_> = (2..=4).map(call).collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        ends.add_permits(1);
        assert_eq!(a.await.unwrap(), Some(1));
        rounds_started(2).await;
        let e = call(5);
        tokio::time::sleep(Duration::from_millis(50)).await;
        ends.add_permits(1);
        for (i, call) in (2..=4).zip(waiting) {
            let answer = tokio::time::timeout(Duration::from_secs(5), call)
                .await
                .expect("an answered call waited for the next round");
            assert_eq!(answer.unwrap(), Some(i));
        }
        rounds_started(3).await;
        ends.add_permits(1);
        assert_eq!(e.await.unwrap(), Some(5));
    }

    #[tokio::test]
    async fn a_lone_call_runs_at_once_and_a_round_that_answers_short_answers_none() {
        let gather = Gather::<u8, u32, u32>::new(10);
        let answer = gather.call(1, 5, |inputs| async move { inputs }).await;
        assert_eq!(answer, Some(5));
        let answer = gather.call(1, 5, |_| async { Vec::new() }).await;
        assert_eq!(answer, None);
        assert_eq!(gather.keys_in_flight(), 0);
    }
}
