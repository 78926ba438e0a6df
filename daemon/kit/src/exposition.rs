//! The Prometheus text endpoint (`GET /metrics`) every daemon serves: one short request per
//! connection (its head read within 5 s, at most 2 KiB), meant for a scraper on a private
//! address.
//!
//! Every daemon's endpoint also answers `GET /healthz` (200 while the process serves HTTP) and
//! `GET /readyz` (200, or 503 with the reason, from the daemon's own readiness check), and
//! its `/metrics` carries the standard `process_*` metrics ([`process`]).
//!
//! Invariant: never blocks the caller's runtime on a slow client (each connection is its own
//! task with a read deadline) or on a readiness check (run on the blocking pool).

pub mod certificate;
pub mod process;

use std::collections::HashSet;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `GET /metrics` until shutdown. One short request per connection; anything else is
/// answered 404 (the endpoint is meant for a scraper on a private address).
pub async fn serve<F>(listener: TcpListener, render: Arc<F>, shutdown: CancellationToken)
where
    F: Fn() -> String + Send + Sync + 'static,
{
    serve_with(listener, render, Arc::new(|_: &str| None), shutdown).await;
}

/// [`serve`], and `GET` of any other path `other` answers with a plain-text body (`None`:
/// 404), such as the collector's latest checkpoint at `/checkpoint`.
pub async fn serve_with<F, G>(
    listener: TcpListener,
    render: Arc<F>,
    other: Arc<G>,
    shutdown: CancellationToken,
) where
    F: Fn() -> String + Send + Sync + 'static,
    G: Fn(&str) -> Option<String> + Send + Sync + 'static,
{
    serve_probes(listener, render, other, Arc::new(|| Ok(())), shutdown).await;
}

/// [`serve_with`], and `GET /readyz` answers 200 `ready` when `ready` returns `Ok`, 503 with
/// the reason otherwise. `ready` may block briefly (a store query): it runs on the blocking
/// pool, once per request.
pub async fn serve_probes<F, G, R>(
    listener: TcpListener,
    render: Arc<F>,
    other: Arc<G>,
    ready: Arc<R>,
    shutdown: CancellationToken,
) where
    F: Fn() -> String + Send + Sync + 'static,
    G: Fn(&str) -> Option<String> + Send + Sync + 'static,
    R: Fn() -> Result<(), String> + Send + Sync + 'static,
{
    loop {
        let (mut stream, _) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    tracing::warn!(%error, "metrics listener failed to accept");
                    continue;
                }
            },
        };
        let render = Arc::clone(&render);
        let other = Arc::clone(&other);
        let ready = Arc::clone(&ready);
        tokio::spawn(async move {
            // The request line and headers, however the client split them, up to 2 KiB and
            // 5 s in all.
            let mut request = [0u8; 2048];
            let mut length = 0;
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while length < request.len()
                    && !request[..length].windows(4).any(|w| w == b"\r\n\r\n")
                {
                    match stream.read(&mut request[length..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => length += n,
                    }
                }
            })
            .await;
            if read.is_err() || length == 0 {
                return;
            }
            let head = String::from_utf8_lossy(&request[..length]);
            let path = head
                .strip_prefix("GET ")
                .and_then(|rest| rest.split(' ').next())
                .map(|target| target.split('?').next().unwrap_or(target));
            let response = if path == Some("/healthz") {
                plain("200 OK", "ok\n")
            } else if path == Some("/readyz") {
                match tokio::task::spawn_blocking(move || ready()).await {
                    Ok(Ok(())) => plain("200 OK", "ready\n"),
                    Ok(Err(reason)) => {
                        plain("503 Service Unavailable", &format!("not ready: {reason}\n"))
                    }
                    Err(_) => plain(
                        "503 Service Unavailable",
                        "not ready: the readiness check failed\n",
                    ),
                }
            } else if head.starts_with("GET /metrics ") || head.starts_with("GET /metrics?") {
                let mut text = render();
                text.push_str(&process::render());
                let body = prometheus_text(&text);
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else if let Some(body) = head
                .strip_prefix("GET ")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|path| other(path))
            {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned()
            };
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// A plain-text response with `status`.
fn plain(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Rewrites OpenMetrics text (what prometheus-client encodes) as the Prometheus text format
/// 0.0.4 that scrapers and `promtool check metrics` read: a counter family is named with its
/// `_total` suffix in `# HELP` and `# TYPE`, and the `# EOF` marker is dropped.
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 64);
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_request_split_over_several_writes_is_answered() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let shutdown = CancellationToken::new();
            tokio::spawn(serve_with(
                listener,
                Arc::new(|| "up 1\n".to_owned()),
                Arc::new(|path: &str| (path == "/checkpoint").then(|| "note\n".to_owned())),
                shutdown.clone(),
            ));
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            for part in ["GET /check", "point HTTP/1.1\r\n", "Host: x\r\n", "\r\n"] {
                stream.write_all(part.as_bytes()).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
            assert!(response.ends_with("\r\n\r\nnote\n"), "{response}");
            shutdown.cancel();
        });
    }

    async fn get(port: u16, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[test]
    fn healthz_answers_while_serving_and_readyz_follows_the_readiness_check() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let shutdown = CancellationToken::new();
            let up = Arc::new(AtomicBool::new(false));
            let probe = Arc::clone(&up);
            tokio::spawn(serve_probes(
                listener,
                Arc::new(|| "# TYPE up gauge\nup 1\n# EOF\n".to_owned()),
                Arc::new(|_: &str| None),
                Arc::new(move || {
                    if probe.load(Ordering::SeqCst) {
                        Ok(())
                    } else {
                        Err("the store is unreachable".to_owned())
                    }
                }),
                shutdown.clone(),
            ));
            let healthz = get(port, "/healthz").await;
            assert!(healthz.starts_with("HTTP/1.1 200") && healthz.ends_with("ok\n"));
            let readyz = get(port, "/readyz").await;
            assert!(readyz.starts_with("HTTP/1.1 503"), "{readyz}");
            assert!(readyz.ends_with("not ready: the store is unreachable\n"));
            up.store(true, Ordering::SeqCst);
            let readyz = get(port, "/readyz?verbose").await;
            assert!(readyz.starts_with("HTTP/1.1 200") && readyz.ends_with("ready\n"));
            let metrics = get(port, "/metrics").await;
            assert!(metrics.contains("\nup 1\n") && metrics.contains("process_open_fds "));
            assert!(!metrics.contains("# EOF"));
            assert!(get(port, "/nothing").await.starts_with("HTTP/1.1 404"));
            shutdown.cancel();
        });
    }

    #[test]
    fn counters_are_named_with_their_total_suffix() {
        let openmetrics = "# HELP app_requests Requests served.\n# TYPE app_requests counter\n\
                           app_requests_total{code=\"200\"} 3\n# HELP app_up Up.\n# TYPE app_up gauge\n\
                           app_up 1\n# EOF\n";
        assert_eq!(
            prometheus_text(openmetrics),
            "# HELP app_requests_total Requests served.\n# TYPE app_requests_total counter\n\
             app_requests_total{code=\"200\"} 3\n# HELP app_up Up.\n# TYPE app_up gauge\napp_up 1\n"
        );
    }
}
