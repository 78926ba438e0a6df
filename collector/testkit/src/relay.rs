//! A user-space delay line for TCP (kernel netem needs privileges tests do not have): every
//! byte is delivered a fixed time after it arrived, in order, in both directions, so a round
//! trip through the relay takes at least twice that time. It stands in for distance: a
//! landmark behind a relay of `one_way_for_km(d)` sees a host at least `d` km away in fibre.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The one-way delay of `km` of optical fibre (`proto_location::FIBRE_KM_PER_MS`).
pub fn one_way_for_km(km: f64) -> Duration {
    Duration::from_secs_f64((km / proto_location::FIBRE_KM_PER_MS).max(0.0) / 1000.0)
}

/// A relay on 127.0.0.1 to one target, adding `one_way` to every chunk in each direction.
/// Dropping it stops accepting and ends every relayed connection.
#[derive(Debug)]
pub struct DelayRelay {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl DelayRelay {
    /// Listens on 127.0.0.1 (a free port) and relays each connection to `target`.
    pub async fn start(target: SocketAddr, one_way: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = token.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { continue };
                let token = token.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::select! {
                        () = token.cancelled() => {}
                        _ = async {
                            tokio::join!(
                                delay_line(client_read, server_write, one_way),
                                delay_line(server_read, client_write, one_way),
                            )
                        } => {}
                    }
                });
            }
        });
        Ok(Self { addr, stop })
    }

    /// Where to connect to reach the target through the delay.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DelayRelay {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One direction: a reader stamps each chunk with its arrival, a writer delivers it at
/// arrival + `one_way`. The end of input is passed on (after the last chunk) as a shutdown.
async fn delay_line(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, one_way: Duration) {
    let (chunks, mut pending) = mpsc::channel::<(Instant, Vec<u8>)>(1024);
    let reader = async move {
        let mut buffer = vec![0; 16 * 1024];
        loop {
            match from.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => {
                    let chunk = buffer[..read].to_vec();
                    if chunks.send((Instant::now(), chunk)).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((arrived, chunk)) = pending.recv().await {
            tokio::time::sleep_until(arrived + one_way).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_echo_through_a_relay_takes_twice_its_delay() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        let relay = DelayRelay::start(target, Duration::from_millis(20))
            .await
            .unwrap();
        let mut stream = TcpStream::connect(relay.addr()).await.unwrap();
        stream.set_nodelay(true).unwrap();
        for round in 0..3u8 {
            let started = std::time::Instant::now();
            stream.write_all(&[round; 32]).await.unwrap();
            let mut back = [0; 32];
            stream.read_exact(&mut back).await.unwrap();
            let rtt = started.elapsed();
            assert_eq!(back, [round; 32]);
            assert!(rtt >= Duration::from_millis(40), "round trip {rtt:?}");
            assert!(rtt < Duration::from_secs(2), "round trip {rtt:?}");
        }
        // End of input travels through, after the data.
        stream.shutdown().await.unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[test]
    fn one_way_delay_is_at_fibre_speed() {
        let one = one_way_for_km(204.0).as_nanos() as i128;
        assert!((one - 1_000_000).abs() <= 1, "{one} ns");
        assert_eq!(one_way_for_km(0.0), Duration::ZERO);
        let thousand = one_way_for_km(1000.0).as_secs_f64() * 1000.0;
        assert!((thousand - 1000.0 / 204.0).abs() < 1e-5, "{thousand} ms");
    }
}
