//! `healthcheck` subcommands: container images have no shell or curl, so the
//! binaries probe their own `/health` endpoint. And what `/health` knows beyond
//! "the process is up": whether its email gets through.

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream},
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// `true` when `GET path` on `addr` answers 200 within two seconds. A wildcard
/// listen address is probed on loopback.
pub fn probe(mut addr: SocketAddr, path: &str) -> bool {
    if addr.ip().is_unspecified() {
        addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let timeout = Duration::from_secs(2);
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let read = stream.read(&mut head).unwrap_or(0);
    head[..read].starts_with(b"HTTP/1.1 200") || head[..read].starts_with(b"HTTP/1.0 200")
}

/// Whether a worker's email sends are getting through: a mail server that
/// accepts connections and then never answers makes every send run into its
/// deadline, which `/health` reports instead of saying all is well.
#[derive(Debug, Default)]
pub struct MailHealth {
    timeouts_in_a_row: AtomicU64,
}

/// Sends timed out one after another, with none getting through, before a
/// worker calls its email stuck.
pub const STUCK_AFTER: u64 = 3;

impl MailHealth {
    pub fn sent(&self) {
        self.timeouts_in_a_row.store(0, Ordering::Relaxed);
    }

    pub fn timed_out(&self) {
        self.timeouts_in_a_row.fetch_add(1, Ordering::Relaxed);
    }

    /// `Some(n)`: the last `n` sends all ran into their deadline.
    pub fn stuck(&self) -> Option<u64> {
        let n = self.timeouts_in_a_row.load(Ordering::Relaxed);
        (n >= STUCK_AFTER).then_some(n)
    }

    /// The `/health` answer: `(healthy, JSON body)`.
    pub fn report(&self) -> (bool, String) {
        match self.stuck() {
            None => (true, "{\"status\":\"ok\"}".to_owned()),
            Some(n) => (
                false,
                format!(
                    "{{\"status\":\"degraded\",\"mail\":\"the last {n} email sends timed out: the mail server accepts connections but does not answer\"}}"
                ),
            ),
        }
    }
}
