//! A real SMTP server in the test process: speaks enough of RFC 5321 for lettre,
//! keeps every accepted message, and can be told to refuse mail.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    /// The headers and the plain-text part, decoded, so tests can match on
    /// what a reader sees.
    pub text: String,
    /// The message as it was sent (for tests that parse its MIME parts).
    pub raw: String,
}

impl Mail {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(self.raw.as_bytes())
            .expect("a MIME message")
    }

    pub fn subject(&self) -> &str {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Mail>>>,
    refuse: Arc<AtomicBool>,
    reject: Arc<AtomicBool>,
    delay: Arc<Mutex<Duration>>,
    /// Messages whose DATA has begun (accepted or not yet).
    started: Arc<std::sync::atomic::AtomicUsize>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind smtp sink");
        let sink = Self {
            addr: listener.local_addr().expect("smtp sink address"),
            received: Arc::default(),
            refuse: Arc::default(),
            reject: Arc::default(),
            delay: Arc::default(),
            started: Arc::default(),
        };
        let accepting = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(accepting.clone().session(stream));
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// While set, every message is refused with a transient error (try later).
    pub fn refuse_mail(&self, refuse: bool) {
        self.refuse.store(refuse, Ordering::SeqCst);
    }

    /// While set, every message is rejected with a permanent error (never retry).
    pub fn reject_mail(&self, reject: bool) {
        self.reject.store(reject, Ordering::SeqCst);
    }

    /// How long to think before accepting each message.
    pub fn slow_down(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    /// Waits (bounded) until a client has begun sending a message.
    pub async fn wait_for_a_send_to_begin(&self) {
        for _ in 0..600 {
            if self.started.load(Ordering::SeqCst) > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no email was begun within 30 s");
    }

    pub fn messages(&self) -> Vec<Mail> {
        self.received.lock().unwrap().clone()
    }

    pub fn to(&self, address: &str) -> Vec<Mail> {
        self.messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
            .collect()
    }

    /// Waits (bounded) until at least `count` messages arrived, and returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<Mail> {
        for _ in 0..600 {
            if self.received.lock().unwrap().len() >= count {
                return self.messages();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "expected {count} emails within 30 s, got {}",
            self.messages().len()
        );
    }

    async fn session(self, stream: TcpStream) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        let mut recipients = Vec::new();
        let _ = write.write_all(b"220 sink ESMTP\r\n").await;
        let mut line = String::new();
        loop {
            line.clear();
            match lines.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let command = line.trim_end().to_ascii_uppercase();
            let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
                b"250-sink\r\n250 8BITMIME\r\n"
            } else if command.starts_with("MAIL FROM") {
                recipients.clear();
                if self.reject.load(Ordering::SeqCst) {
                    b"550 5.7.1 mail rejected by test\r\n"
                } else if self.refuse.load(Ordering::SeqCst) {
                    b"451 4.3.0 mail refused by test, try later\r\n"
                } else {
                    b"250 OK\r\n"
                }
            } else if command.starts_with("RCPT TO") {
                let address = line.trim_end()[8..]
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned();
                recipients.push(address);
                b"250 OK\r\n"
            } else if command == "DATA" {
                self.started.fetch_add(1, Ordering::SeqCst);
                let _ = write.write_all(b"354 go ahead\r\n").await;
                let mut data = String::new();
                loop {
                    line.clear();
                    match lines.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let delay = *self.delay.lock().unwrap();
                tokio::time::sleep(delay).await;
                let headers = data.split("\r\n\r\n").next().unwrap_or_default();
                let body = mail_parser::MessageParser::default()
                    .parse(data.as_bytes())
                    .and_then(|message| message.body_text(0).map(|text| text.into_owned()))
                    .unwrap_or_default();
                self.received.lock().unwrap().push(Mail {
                    to: std::mem::take(&mut recipients),
                    text: format!("{headers}\r\n\r\n{body}"),
                    raw: data,
                });
                b"250 OK queued\r\n"
            } else if command == "QUIT" {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            } else {
                // RSET, NOOP and anything else lettre may send.
                b"250 OK\r\n"
            };
            if write.write_all(reply).await.is_err() {
                return;
            }
        }
    }
}
