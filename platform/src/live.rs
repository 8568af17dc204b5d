//! "This event's availability changed": announced by whichever process made the
//! change (an api request, a worker expiring a hold) and heard by every api
//! process, which tells its live subscribers. Redis pub/sub in production; a
//! broadcast channel inside the one process in embedded mode. A message names
//! the event (and the seats that changed); listeners read the numbers
//! themselves, so a lost message costs freshness, never correctness.

use std::time::Duration;

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::settings::QueueBackend;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changed {
    pub event_id: Uuid,
    /// On a seated event, the seats whose status changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seat_ids: Vec<Uuid>,
}

/// Messages a slow in-process listener may fall behind by before it skips
/// ahead (it then refreshes everything it follows).
const LOCAL_BACKLOG: usize = 4_096;

/// Where changes are announced. Cheap to clone.
#[derive(Clone)]
pub enum ChangeFeed {
    Redis {
        client: redis::Client,
        publisher: redis::aio::ConnectionManager,
        channel: String,
    },
    Local(broadcast::Sender<Changed>),
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeFeed::Redis { channel, .. } => write!(f, "ChangeFeed::Redis({channel})"),
            ChangeFeed::Local(_) => f.write_str("ChangeFeed::Local"),
        }
    }
}

/// What a listener hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    Changed(Changed),
    /// Messages may have been missed (a reconnect, or falling behind): treat
    /// everything as changed.
    Gap,
}

impl ChangeFeed {
    /// The feed for this deployment: on Redis, channel `{namespace}:availability`
    /// (publishing over `publisher`, the queue's connection); in embedded mode,
    /// a channel in this process, which the embedded worker shares.
    pub fn open(
        backend: &QueueBackend,
        namespace: &str,
        publisher: Option<redis::aio::ConnectionManager>,
    ) -> Result<Self, redis::RedisError> {
        match (backend, publisher) {
            (QueueBackend::Redis { url }, Some(publisher)) => Ok(ChangeFeed::Redis {
                client: redis::Client::open(url.as_str())?,
                publisher,
                channel: format!("{namespace}:availability"),
            }),
            _ => Ok(ChangeFeed::Local(broadcast::channel(LOCAL_BACKLOG).0)),
        }
    }

    /// Announces a change, best effort: a listener that misses it shows the
    /// change with the next one (or a reconnect).
    pub async fn publish(&self, change: Changed) {
        match self {
            ChangeFeed::Local(sender) => {
                // No receivers is not an error: nobody is listening.
                let _ = sender.send(change);
            }
            ChangeFeed::Redis {
                publisher, channel, ..
            } => {
                let Ok(message) = serde_json::to_string(&change) else {
                    return;
                };
                let mut publisher = publisher.clone();
                let sent = tokio::time::timeout(
                    Duration::from_secs(2),
                    redis::cmd("PUBLISH")
                        .arg(channel)
                        .arg(message)
                        .query_async::<i64>(&mut publisher),
                )
                .await;
                if !matches!(sent, Ok(Ok(_))) {
                    tracing::debug!(event_id = %change.event_id, "could not announce an availability change");
                }
            }
        }
    }

    /// Everything announced from now on, for as long as the stream is polled.
    /// On Redis it reconnects by itself, saying [`Heard::Gap`] after each
    /// reconnect.
    pub fn listen(&self) -> impl Stream<Item = Heard> + Send + 'static {
        match self.clone() {
            ChangeFeed::Local(sender) => {
                let receiver = sender.subscribe();
                futures::stream::unfold(receiver, |mut receiver| async move {
                    let heard = match receiver.recv().await {
                        Ok(change) => Heard::Changed(change),
                        Err(broadcast::error::RecvError::Lagged(_)) => Heard::Gap,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    };
                    Some((heard, receiver))
                })
                .boxed()
            }
            ChangeFeed::Redis {
                client, channel, ..
            } => redis_listener(client, channel).boxed(),
        }
    }
}

/// A Redis subscription that survives Redis restarts: connected, or waiting to
/// reconnect (and then reporting a gap).
enum Subscription {
    Disconnected { delay: Duration, first: bool },
    Connected(redis::aio::PubSubStream),
}

fn redis_listener(client: redis::Client, channel: String) -> impl Stream<Item = Heard> + Send {
    let start = Subscription::Disconnected {
        delay: Duration::from_millis(100),
        first: true,
    };
    futures::stream::unfold(start, move |mut state| {
        let (client, channel) = (client.clone(), channel.clone());
        async move {
            loop {
                state = match state {
                    Subscription::Connected(mut messages) => match messages.next().await {
                        Some(message) => {
                            let change = message
                                .get_payload::<String>()
                                .ok()
                                .and_then(|text| serde_json::from_str::<Changed>(&text).ok());
                            match change {
                                Some(change) => {
                                    return Some((
                                        Heard::Changed(change),
                                        Subscription::Connected(messages),
                                    ));
                                }
                                None => Subscription::Connected(messages),
                            }
                        }
                        None => {
                            tracing::warn!("availability feed lost Redis; reconnecting");
                            Subscription::Disconnected {
                                delay: Duration::from_millis(100),
                                first: false,
                            }
                        }
                    },
                    Subscription::Disconnected { delay, first } => {
                        match subscribe(&client, &channel).await {
                            // Changes made while disconnected went unheard.
                            Ok(messages) if !first => {
                                return Some((Heard::Gap, Subscription::Connected(messages)));
                            }
                            Ok(messages) => Subscription::Connected(messages),
                            Err(error) => {
                                tracing::debug!(%error, retry_in = ?delay, "availability feed cannot subscribe yet");
                                tokio::time::sleep(delay).await;
                                Subscription::Disconnected {
                                    delay: (delay * 2).min(Duration::from_secs(5)),
                                    first,
                                }
                            }
                        }
                    }
                };
            }
        }
    })
}

async fn subscribe(
    client: &redis::Client,
    channel: &str,
) -> redis::RedisResult<redis::aio::PubSubStream> {
    let connect = tokio::time::timeout(Duration::from_secs(3), client.get_async_pubsub());
    let mut pubsub = connect
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timed out")))??;
    pubsub.subscribe(channel).await?;
    Ok(pubsub.into_on_message())
}
