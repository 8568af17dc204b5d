//! The api's own accept loop, in front of Rocket.
//!
//! One api process holds 10,000 live streams (SPEC §11). Rocket 0.5 keeps
//! about 38 KiB of buffers and tasks for each connection while it is open
//! (`bench/results/2026-12-05-live-stream-memory.md`), and a live stream stays
//! open for hours sending a few bytes a second. So the api accepts connections
//! itself: a connection whose first request is a complete
//! `GET /api/v1/events/{id}/live` that the route would answer with a stream is
//! streamed here, with a few KiB; every other connection, and every live
//! request the route would refuse, goes to Rocket untouched (the door only
//! peeks at the bytes), so Rocket's routes, guards and errors stay the one
//! definition of the api. The stream's content is the route's own
//! ([`routes::events::live_messages`]). Rocket's fairings do not see the
//! door's streams: what they add to a live response (the request id, the
//! Shield headers, the request's log line and metrics) the door writes
//! itself, and a new fairing meant for live streams must be added here too.

use std::{
    io,
    net::SocketAddr,
    pin::{Pin, pin},
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime},
};

use futures::StreamExt;
use rocket::{Ignite, Rocket, Shutdown, http::private::Listener};
use tokio::{
    io::{AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use uuid::Uuid;

use crate::{
    auth::{Customer, TokenKeys, bearer_token},
    domain::Services,
    http::rate_limit::{ClientIp, RateLimiter},
    live::LiveHub,
    routes::events::{HEARTBEAT, LiveMessage, LiveSubscription, live_messages, subscribe},
    telemetry::{self, RequestId},
};

/// What the door reads of a request before deciding: a live request's head is
/// a few hundred bytes; a longer one (large cookies) goes to Rocket.
const HEAD_PEEK: usize = 4096;
/// A connection that sends nothing for this long is Rocket's to keep or close.
const FIRST_BYTES_WITHIN: Duration = Duration::from_secs(10);
/// A client that takes no bytes for this long is gone.
const WRITE_DEADLINE: Duration = Duration::from_secs(30);
/// Accepted connections waiting for Rocket's accept loop.
const HANDOFF_QUEUE: usize = 1024;
/// The route's template, for the request log and metrics.
const LIVE_ROUTE: &str = "/api/v1/events/<id>/live";

/// Binds `address:port` as configured, starts the door, and returns what
/// Rocket should serve (every connection the door does not keep) and the
/// door's streams, to wait for at shutdown.
pub async fn open(rocket: &Rocket<Ignite>) -> io::Result<(RocketConnections, Streams)> {
    let config = rocket.config();
    let listener = TcpListener::bind(SocketAddr::new(config.address, config.port)).await?;
    let local = listener.local_addr()?;
    let state = |what: &str| io::Error::other(format!("{what} is not managed state"));
    let door = Arc::new(Door {
        hub: rocket
            .state::<Arc<LiveHub>>()
            .ok_or_else(|| state("LiveHub"))?
            .clone(),
        services: rocket
            .state::<Services>()
            .ok_or_else(|| state("Services"))?
            .clone(),
        tokens: rocket
            .state::<TokenKeys>()
            .ok_or_else(|| state("TokenKeys"))?
            .clone(),
        trusts_forwarded_for: rocket
            .state::<RateLimiter>()
            .is_some_and(RateLimiter::trusts_forwarded_for),
        shutdown: rocket.shutdown(),
    });
    let (to_rocket, connections) = mpsc::channel(HANDOFF_QUEUE);
    let (open, all_ended) = mpsc::channel(1);
    tokio::spawn(accept(listener, door, to_rocket, open));
    Ok((
        RocketConnections { connections, local },
        Streams { all_ended },
    ))
}

/// The door's streams: each holds a sender of this channel until it ends (the
/// accept loop too, until shutdown), so it closes when all have.
pub struct Streams {
    all_ended: mpsc::Receiver<()>,
}

impl Streams {
    /// Waits (for at most `within`) until the accept loop has stopped and every
    /// stream has ended, each with its last chunk: at shutdown, before the
    /// process exits under them.
    pub async fn ended(mut self, within: Duration) {
        let _ = tokio::time::timeout(within, self.all_ended.recv()).await;
    }
}

/// The connections handed to Rocket, as its listener.
pub struct RocketConnections {
    connections: mpsc::Receiver<TcpStream>,
    local: SocketAddr,
}

impl Listener for RocketConnections {
    type Connection = TcpStream;

    fn local_addr(&self) -> Option<SocketAddr> {
        Some(self.local)
    }

    fn poll_accept(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        match self.connections.poll_recv(cx) {
            Poll::Ready(Some(connection)) => Poll::Ready(Ok(connection)),
            // The door stops accepting only at shutdown, when Rocket stops
            // asking too.
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

struct Door {
    hub: Arc<LiveHub>,
    services: Services,
    tokens: TokenKeys,
    trusts_forwarded_for: bool,
    shutdown: Shutdown,
}

async fn accept(
    listener: TcpListener,
    door: Arc<Door>,
    to_rocket: mpsc::Sender<TcpStream>,
    open: mpsc::Sender<()>,
) {
    let mut shutdown = door.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let (connection, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                // Out of file descriptors and the like: it passes as streams close.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (door, to_rocket, open) = (door.clone(), to_rocket.clone(), open.downgrade());
        tokio::spawn(async move {
            if let Some(not_live) = door.serve_if_live(connection, peer, open).await {
                let _ = to_rocket.send(not_live).await;
            }
        });
    }
}

/// Errors of one connection (it went away before it was accepted), not of the
/// listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A live request as the door read it.
struct LiveRequest {
    /// The head's length: consumed once the stream is opened.
    head_len: usize,
    event_id: Uuid,
    http_1_0: bool,
    authorization: Option<String>,
    forwarded_for: Option<String>,
    request_id: Option<String>,
}

impl Door {
    /// Streams `connection` if it opens with a live request the route would
    /// answer with a stream; otherwise gives it back untouched.
    async fn serve_if_live(
        &self,
        connection: TcpStream,
        peer: SocketAddr,
        open: mpsc::WeakSender<()>,
    ) -> Option<TcpStream> {
        let request = match tokio::time::timeout(FIRST_BYTES_WITHIN, peek_live(&connection)).await {
            Ok(Some(request)) => request,
            Ok(None) | Err(_) => return Some(connection),
        };
        let Some((subscription, opened)) = self.open(request, peer).await else {
            return Some(connection);
        };
        // Counted among the open streams from here (not while it was only
        // read); none left to count it: the door has closed behind it.
        let open = open.upgrade()?;
        let messages = live_messages(
            subscription,
            self.services.db.clone(),
            self.shutdown.clone(),
        );
        // Boxed: the many connections handed to Rocket need none of its room.
        Box::pin(stream(connection, opened, messages, self.shutdown.clone())).await;
        drop(open);
        None
    }

    /// Opens the stream the route would open for `request` and logs it as
    /// answered (`None`: the route would refuse it). What is read of the
    /// request is let go here, before streaming.
    async fn open(
        &self,
        request: LiveRequest,
        peer: SocketAddr,
    ) -> Option<(LiveSubscription, Opened)> {
        let started = Instant::now();
        let customer = request
            .authorization
            .as_deref()
            .and_then(bearer_token)
            .and_then(|token| self.tokens.verify(token).ok())
            .filter(|claims| claims.role == entity::prelude::Role::Customer)
            .map(|claims| Customer(claims.sub));
        let client = ClientIp::of(
            self.trusts_forwarded_for,
            request.forwarded_for.as_deref(),
            Some(peer.ip()),
        );
        let Ok(subscription) = subscribe(
            &self.hub,
            &self.services,
            customer,
            &client,
            request.event_id,
        )
        .await
        else {
            return None;
        };
        let request_id = RequestId::from_header(request.request_id.as_deref());
        let path = format!("/api/v1/events/{}/live", request.event_id);
        telemetry::record(
            "GET",
            LIVE_ROUTE,
            &path,
            200,
            &request_id,
            started.elapsed(),
        );
        let opened = Opened {
            head_len: request.head_len,
            chunked: !request.http_1_0,
            response_head: response_head(&request, &request_id),
        };
        Some((subscription, opened))
    }
}

/// What [`stream`] needs of the request (the rest is let go before it starts).
struct Opened {
    head_len: usize,
    chunked: bool,
    response_head: String,
}

fn response_head(request: &LiveRequest, request_id: &RequestId) -> String {
    // HTTP/1.0 has no chunked encoding: the body ends when the connection does.
    let (version, framing) = if request.http_1_0 {
        ("1.0", "connection: close")
    } else {
        ("1.1", "transfer-encoding: chunked")
    };
    format!(
        "HTTP/{version} 200 OK\r\n\
         content-type: text/event-stream\r\n\
         cache-control: no-cache\r\n\
         expires: 0\r\n\
         x-content-type-options: nosniff\r\n\
         x-frame-options: SAMEORIGIN\r\n\
         permissions-policy: interest-cohort=()\r\n\
         {}: {}\r\n\
         date: {}\r\n\
         {framing}\r\n\r\n",
        // Lower case, as Rocket's hyper writes every header name.
        telemetry::REQUEST_ID_HEADER.to_ascii_lowercase(),
        request_id.0,
        httpdate::fmt_http_date(SystemTime::now()),
    )
}

/// Reads (without consuming) the connection's first request, if it is a
/// complete live request with nothing unusual about it.
async fn peek_live(connection: &TcpStream) -> Option<LiveRequest> {
    connection.readable().await.ok()?;
    let mut head = vec![0; HEAD_PEEK];
    let peeked = connection.peek(&mut head).await.ok()?;
    parse_live(head.get(..peeked)?)
}

fn parse_live(bytes: &[u8]) -> Option<LiveRequest> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head_len) = request.parse(bytes).ok()? else {
        return None;
    };
    if request.method? != "GET" {
        return None;
    }
    let path = request.path?.split('?').next()?;
    let event_id = path
        .strip_prefix("/api/v1/events/")?
        .strip_suffix("/live")?
        .parse()
        .ok()?;
    let mut live = LiveRequest {
        head_len,
        event_id,
        http_1_0: request.version? == 0,
        authorization: None,
        forwarded_for: None,
        request_id: None,
    };
    for header in request.headers.iter() {
        let value = || std::str::from_utf8(header.value).ok().map(str::to_owned);
        match header.name.to_ascii_lowercase().as_str() {
            // A body, or a switch of protocol: Rocket's to handle.
            "content-length" | "transfer-encoding" | "upgrade" | "expect" => return None,
            "authorization" => live.authorization = Some(value()?),
            "x-forwarded-for" => live.forwarded_for = Some(value()?),
            name if name.eq_ignore_ascii_case(telemetry::REQUEST_ID_HEADER) => {
                live.request_id = Some(value()?)
            }
            _ => {}
        }
    }
    Some(live)
}

/// Sends the response head and then every message, with a heartbeat comment
/// when idle, until the messages end, the client leaves or stops reading.
async fn stream(
    mut connection: TcpStream,
    opened: Opened,
    messages: impl futures::Stream<Item = LiveMessage>,
    mut shutdown: Shutdown,
) {
    let Opened {
        head_len,
        chunked,
        response_head,
    } = opened;
    let mut head = vec![0; head_len];
    if connection.read_exact(&mut head).await.is_err() {
        return;
    }
    drop(head);
    // Messages are small and few: each goes out at once.
    let _ = connection.set_nodelay(true);
    let (mut reader, mut writer) = connection.split();
    if send(&mut writer, response_head.as_bytes(), false)
        .await
        .is_err()
    {
        return;
    }
    drop(response_head);
    let mut messages = pin!(messages);
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    // The client sends nothing more; a read returns only when it leaves.
    let mut ignored = [0u8; 64];
    loop {
        let sent = tokio::select! {
            message = messages.next() => match message {
                Some(message) => {
                    let frame = format!("event:{}\ndata:{}\n\n", message.name, message.data);
                    send(&mut writer, frame.as_bytes(), chunked).await
                }
                None => break,
            },
            _ = heartbeat.tick() => send(&mut writer, b":\n", chunked).await,
            read = reader.read(&mut ignored) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => Ok(()),
            },
            _ = &mut shutdown => break,
        };
        if sent.is_err() {
            return;
        }
    }
    if chunked {
        let _ = send(&mut writer, b"0\r\n\r\n", false).await;
    }
}

/// Writes `bytes` (as one chunk when `chunked`) within [`WRITE_DEADLINE`].
async fn send(
    writer: &mut (impl AsyncWrite + Unpin),
    bytes: &[u8],
    chunked: bool,
) -> io::Result<()> {
    let write = async {
        if chunked {
            let framed = [
                format!("{:x}\r\n", bytes.len()).as_bytes(),
                bytes,
                b"\r\n".as_slice(),
            ]
            .concat();
            writer.write_all(&framed).await
        } else {
            writer.write_all(bytes).await
        }
    };
    tokio::time::timeout(WRITE_DEADLINE, write)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01a2470e-e4d1-760b-af9e-9bf7418a9fa9";

    fn live(head: &str) -> Option<LiveRequest> {
        parse_live(head.as_bytes())
    }

    #[test]
    fn a_complete_live_request_is_the_doors() {
        let head = format!(
            "GET /api/v1/events/{ID}/live?x=1 HTTP/1.1\r\nHost: a\r\n\
             Authorization: Bearer t0k\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8\r\n\
             x-request-id: r-1\r\n\r\n"
        );
        let request = live(&head).expect("the door's");
        assert_eq!(request.head_len, head.len());
        assert_eq!(request.event_id.to_string(), ID);
        assert!(!request.http_1_0);
        assert_eq!(request.authorization.as_deref(), Some("Bearer t0k"));
        assert_eq!(request.forwarded_for.as_deref(), Some("1.2.3.4, 5.6.7.8"));
        assert_eq!(request.request_id.as_deref(), Some("r-1"));
        let old = live(&format!("GET /api/v1/events/{ID}/live HTTP/1.0\r\n\r\n")).unwrap();
        assert!(old.http_1_0);
    }

    #[test]
    fn the_response_head_echoes_the_request_id_as_rocket_does() {
        let head = format!("GET /api/v1/events/{ID}/live HTTP/1.1\r\nX-REQUEST-ID: r-1\r\n\r\n");
        let request = live(&head).expect("the door's");
        let id = RequestId::from_header(request.request_id.as_deref());
        let response = response_head(&request, &id);
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("\r\nx-request-id: r-1\r\n"), "{response}");
        assert!(
            response.ends_with("transfer-encoding: chunked\r\n\r\n"),
            "{response}"
        );
    }

    #[test]
    fn anything_else_is_rockets() {
        let rockets = [
            // Incomplete: the rest of the head has not arrived yet.
            format!("GET /api/v1/events/{ID}/live HTTP/1.1\r\nHost: a\r\n"),
            format!("HEAD /api/v1/events/{ID}/live HTTP/1.1\r\n\r\n"),
            format!("POST /api/v1/events/{ID}/live HTTP/1.1\r\n\r\n"),
            "GET /api/v1/events/not-an-id/live HTTP/1.1\r\n\r\n".to_owned(),
            format!("GET /api/v1/events/{ID} HTTP/1.1\r\n\r\n"),
            format!("GET /api/v1/events/{ID}/live/ HTTP/1.1\r\n\r\n"),
            format!("GET /events/{ID}/live HTTP/1.1\r\n\r\n"),
            format!("GET /api/v1/events/{ID}/live HTTP/1.1\r\nContent-Length: 2\r\n\r\n{{}}"),
            format!("GET /api/v1/events/{ID}/live HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            format!(
                "GET /api/v1/events/{ID}/live HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
            ),
            format!("GET /api/v1/events/{ID}/live HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"),
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_owned(),
            "\u{0}\u{1}garbage\r\n\r\n".to_owned(),
        ];
        for head in rockets {
            assert!(live(&head).is_none(), "{head:?}");
        }
        // A header that is not UTF-8 where the door needs it: Rocket decides.
        let mut bytes =
            format!("GET /api/v1/events/{ID}/live HTTP/1.1\r\nAuthorization: ").into_bytes();
        bytes.extend_from_slice(b"\xff\xfe\r\n\r\n");
        assert!(parse_live(&bytes).is_none());
    }
}
