//! Gathering concurrent calls into one round: whatever arrives while a round
//! runs waits for the next, which takes all of it at once. A lone call runs
//! at once; under load, rounds grow instead of queues.

use std::future::Future;

use sea_orm::DbErr;
use tokio::sync::{mpsc, oneshot};

type Waiting<I, O> = (I, oneshot::Sender<O>);

pub struct Gather<I, O> {
    line: mpsc::UnboundedSender<Waiting<I, O>>,
}

impl<I: Send + 'static, O: Send + 'static> Gather<I, O> {
    /// `round` answers its inputs in order, one output each; at most `max`
    /// inputs go in one round. Runs until the `Gather` is dropped.
    pub fn new<F, Fut>(max: usize, round: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<O>> + Send,
    {
        let (line, mut waiting) = mpsc::unbounded_channel::<Waiting<I, O>>();
        tokio::spawn(async move {
            while let Some(first) = waiting.recv().await {
                let mut batch = vec![first];
                while batch.len() < max {
                    match waiting.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let (inputs, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                for (reply, output) in replies.into_iter().zip(round(inputs).await) {
                    let _ = reply.send(output);
                }
            }
        });
        Self { line }
    }

    /// The input's output from its round; `None` if the round never answered
    /// (it panicked).
    pub async fn call(&self, input: I) -> Option<O> {
        let (reply, answer) = oneshot::channel();
        self.line.send((input, reply)).ok()?;
        answer.await.ok()
    }
}

/// One statement's error, for each of the calls its round answered.
pub fn each_failed<T>(error: &DbErr, count: usize) -> Vec<Result<T, DbErr>> {
    let message = error.to_string();
    (0..count)
        .map(|_| Err(DbErr::Custom(message.clone())))
        .collect()
}

/// The error of a call whose round never answered.
pub fn lost() -> DbErr {
    DbErr::Custom("the statement gathering this call ended without an answer".into())
}
