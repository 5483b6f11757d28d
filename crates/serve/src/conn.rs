//! Connections: accepted up to a limit, each served over HTTP/1.1 with a header timeout, so
//! that idle or slow clients cannot hold the server's sockets, threads or memory.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;

use crate::limits::Limits;

/// The most bytes of a request's head (request line and headers) a connection buffers:
/// beyond it hyper answers 431 itself. The router's own limits, in OpenAI's error shape,
/// are below it (see `api::HEAD_LIMIT`).
const HEAD_BUFFER: usize = 256 << 10;

/// Accepts connections on `listener` for ever, serving `router` on each.
pub(crate) async fn accept(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: &Limits,
) {
    let open = Arc::new(Semaphore::new(limits.connection_limit()));
    let header_timeout = limits.header_timeout;
    loop {
        // The semaphore is never closed.
        let Ok(permit) = open.clone().acquire_owned().await else { return };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was accepted: the
                // listener is still good; wait a moment rather than spin.
                eprintln!("serve: accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(HEAD_BUFFER);
            // A client that goes away ends its connection, and the request it was waiting
            // for with it (its handler is dropped, which stops its model work).
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
            drop(permit);
        });
    }
}
