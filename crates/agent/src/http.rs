//! The `/metrics` endpoint on `--listen`.
//!
//! A small HTTP/1 server (hyper) on its own thread with a single-threaded tokio runtime: the
//! agent's rounds never wait for a scrape, and a scrape renders the state of the last round.
//! Loopback by default; connections are bounded in number and in how long their request may
//! take, so a peer that opens sockets and never speaks cannot pile up.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};

use crate::metrics::Metrics;

/// The OpenMetrics text content type Prometheus negotiates.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Connections served at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 16;

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The running endpoint; stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves `metrics` on `/metrics` from a background thread.
    pub fn start(addr: SocketAddr, metrics: Metrics) -> std::io::Result<MetricsServer> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let active = Arc::new(AtomicUsize::new(0));
                    loop {
                        let accepted = tokio::select! {
                            _ = &mut stop => return,
                            accepted = listener.accept() => accepted,
                        };
                        let Ok((stream, _)) = accepted else {
                            // EMFILE and friends: back off rather than spin.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        };
                        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                            drop(stream);
                            continue;
                        }
                        active.fetch_add(1, Ordering::Relaxed);
                        let metrics = metrics.clone();
                        let active = active.clone();
                        tokio::task::spawn(async move {
                            let service = hyper::service::service_fn(move |request| {
                                let metrics = metrics.clone();
                                async move { Ok::<_, Infallible>(respond(&request, &metrics)) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .timer(hyper_util::rt::TokioTimer::new())
                                .header_read_timeout(HEADER_TIMEOUT)
                                .keep_alive(false)
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                            active.fetch_sub(1, Ordering::Relaxed);
                        });
                    }
                });
            })?;
        Ok(MetricsServer {
            local_addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The address it listens on (the port, when `:0` was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn respond<B>(request: &Request<B>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, text: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *response.status_mut() = status;
        response
    };
    match (request.method(), request.uri().path()) {
        (&hyper::Method::GET, "/metrics") => {
            let mut response = Response::new(Full::new(Bytes::from(metrics.render())));
            if let Ok(value) = hyper::header::HeaderValue::from_str(CONTENT_TYPE) {
                response
                    .headers_mut()
                    .insert(hyper::header::CONTENT_TYPE, value);
            }
            response
        }
        (&hyper::Method::GET, "/") => plain(StatusCode::OK, "nodedoc watch: metrics on /metrics\n"),
        (&hyper::Method::GET, _) => plain(StatusCode::NOT_FOUND, "not found\n"),
        _ => plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn serves_the_exposition_and_stops_when_dropped() {
        let metrics = Metrics::new(vec!["fd-leak".into()]);
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), metrics).unwrap();
        let addr = server.local_addr();
        let text = get(addr, "/metrics");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains("application/openmetrics-text"), "{text}");
        assert!(
            text.contains(r#"nodedoc_findings_open{detector="fd-leak",severity="critical"} 0"#),
            "{text}"
        );
        assert!(get(addr, "/nope").starts_with("HTTP/1.1 404"));
        drop(server);
        assert!(std::net::TcpStream::connect(addr).is_err());
    }
}
