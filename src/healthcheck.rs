//! `idverify healthcheck`: GET /healthz on the configured listen address, for a container's
//! HEALTHCHECK (the image needs no curl). Plain HTTP/1.1 over a std socket, one bounded attempt.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long the whole check may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The address to probe for a server listening on `listen`: a wildcard address (0.0.0.0, [::])
/// is reached on the loopback of the same family.
pub fn probe_address(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port()),
        _ => listen,
    }
}

/// Ok when `GET /healthz` on `addr` answers 200 within `timeout`; otherwise the reason, in one line.
pub fn check(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_write_timeout(Some(left()))?;
    // One write: a request sent in pieces can meet a server that answered the first one and closed.
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).with_context(|| format!("cannot send the request to {addr}"))?;
    // The status line is all we need: read until its end (or the connection closes).
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        stream.set_read_timeout(Some(left()))?;
        let n = stream.read(&mut buf).with_context(|| format!("no answer from {addr} within {timeout:?}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let status_line = head.lines().next().unwrap_or("").trim();
    match status_line.split_whitespace().nth(1) {
        Some("200") if status_line.starts_with("HTTP/1.") => Ok(()),
        _ if status_line.is_empty() => bail!("{addr} closed the connection without answering"),
        _ => bail!("GET /healthz on {addr} answered `{status_line}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server answering `answer` to the first connection.
    fn serve_once(answer: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // The whole request, as a server reads it, before answering and closing.
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(answer.as_bytes());
        });
        addr
    }

    #[test]
    fn wildcard_addresses_are_probed_on_loopback() {
        assert_eq!(probe_address("0.0.0.0:8080".parse().unwrap()), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(probe_address("[::]:8080".parse().unwrap()), "[::1]:8080".parse().unwrap());
        assert_eq!(probe_address("10.1.2.3:80".parse().unwrap()), "10.1.2.3:80".parse().unwrap());
    }

    #[test]
    fn only_a_200_passes() {
        let ok = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        check(ok, TIMEOUT).unwrap();
        let unavailable = serve_once("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
        let err = check(unavailable, TIMEOUT).unwrap_err().to_string();
        assert!(err.contains("503"), "{err}");
    }

    #[test]
    fn a_silent_server_fails_within_the_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let started = Instant::now();
        let err = check(addr, Duration::from_millis(300)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(format!("{err:#}").contains("no answer"), "{err:#}");
        drop(listener);
    }
}
