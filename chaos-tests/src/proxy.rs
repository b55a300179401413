//! A TCP proxy on loopback that adds latency, for what network namespaces
//! cannot do on this machine: its kernel has no `netem` qdisc, so `tc`
//! cannot delay packets. Each direction of each connection holds every
//! chunk it reads for the current delay before writing it on, in order, so
//! the latency is added without limiting throughput (a chunk read while
//! another waits starts its own wait at once).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A running proxy; stops accepting when dropped (open connections end
/// with their peers).
pub struct DelayProxy {
    pub address: SocketAddr,
    delay_ms: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl DelayProxy {
    /// Listens on a free loopback port and forwards to `target`, with no
    /// delay until [`DelayProxy::set_delay`].
    pub async fn start(target: SocketAddr) -> std::io::Result<DelayProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let delay_ms = Arc::new(AtomicU64::new(0));
        let delay = delay_ms.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let delay = delay.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        splice(client, server, delay);
                    }
                });
            }
        });
        Ok(DelayProxy {
            address,
            delay_ms,
            accept,
        })
    }

    /// The latency each direction adds from now on.
    pub fn set_delay(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(millis, Ordering::Relaxed);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn splice(client: TcpStream, server: TcpStream, delay: Arc<AtomicU64>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    forward(client_read, server_write, delay.clone());
    forward(server_read, client_write, delay);
}

/// One direction: a reader stamping each chunk with when it may go, and a
/// writer sending chunks at their time. A closed side closes the other.
fn forward(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Arc<AtomicU64>) {
    let (chunks, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(read @ 1..) = from.read(&mut buffer).await {
            let at = Instant::now() + Duration::from_millis(delay.load(Ordering::Relaxed));
            if chunks.send((at, buffer[..read].to_vec())).is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    while let Ok(read @ 1..) = stream.read(&mut buffer).await {
                        if stream.write_all(&buffer[..read]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        address
    }

    async fn round_trip(stream: &mut TcpStream, payload: &[u8]) -> Duration {
        let started = std::time::Instant::now();
        stream.write_all(payload).await.unwrap();
        let mut echoed = vec![0u8; payload.len()];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed, payload, "the proxy passes bytes through unchanged");
        started.elapsed()
    }

    // A lower bound only: a delayed chunk can never arrive early, however
    // loaded the machine (no upper bound is asserted).
    #[tokio::test]
    async fn each_direction_adds_the_delay_set_and_none_before() {
        let proxy = DelayProxy::start(echo_server().await).await.unwrap();
        let mut stream = TcpStream::connect(proxy.address).await.unwrap();
        round_trip(&mut stream, b"warm-up").await;
        proxy.set_delay(Duration::from_millis(150));
        let delayed = round_trip(&mut stream, b"delayed").await;
        assert!(
            delayed >= Duration::from_millis(300),
            "two directions of 150 ms each, got {delayed:?}"
        );
        proxy.set_delay(Duration::ZERO);
        round_trip(&mut stream, b"undelayed again").await;
    }

    #[tokio::test]
    async fn a_closed_server_closes_the_client() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let target = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            drop(stream);
        });
        let proxy = DelayProxy::start(target).await.unwrap();
        let mut stream = TcpStream::connect(proxy.address).await.unwrap();
        let mut buffer = [0u8; 8];
        assert_eq!(stream.read(&mut buffer).await.unwrap(), 0);
    }
}
