//! The HTTP server under [`super::Endpoint`]: hyper on a small tokio runtime, because it
//! defends itself where tiny_http could not. A connection is a task, not a thread, so 200
//! slow clients cost memory, not workers; each must send its request head within
//! [`HEAD_TIMEOUT`] and its body within [`BODY_TIMEOUT`], bodies are capped, connections
//! are bounded ([`MAX_CONNECTIONS`], the rest wait in the kernel's backlog) and live at
//! most [`MAX_AGE`]. Handlers touch SQLite and files, so they run on a bounded pool of
//! blocking threads; past [`MAX_QUEUED`] requests waiting for it, a request is answered
//! 503 at once. `healthz` never waits for that pool.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use super::pages::Reply;
use super::{Endpoint, Event, Log};

/// Connections served at once.
const MAX_CONNECTIONS: usize = 1024;
/// Threads that run handlers (a click costs a lookup and a wait for a batched commit).
const WORKERS: usize = 16;
/// Requests waiting for a worker, at most; more are answered 503 with `Retry-After`.
const MAX_QUEUED: usize = 512;
/// Time to send a request's head (from the connection's start, or the previous answer).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to send a request's body once its head is in.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection's longest life: a client that keeps one open for ever holds no slot.
const MAX_AGE: Duration = Duration::from_secs(300);
/// Largest request head, in bytes (hyper's read buffer).
const MAX_HEAD: usize = 16 * 1024;

/// A request as the handlers see it: read whole, its body within the cap.
pub(crate) struct Request {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub peer: IpAddr,
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value, if it is text.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// Serve `endpoint` on `listener` until `stop` is set; what happens is told to `log`.
pub(crate) fn run(
    endpoint: &Arc<Endpoint>,
    listener: std::net::TcpListener,
    stop: &Arc<AtomicBool>,
    log: Log,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(WORKERS)
        .thread_name("serve")
        .enable_all()
        .build()?;
    let result = runtime.block_on(accept(
        Arc::clone(endpoint),
        listener,
        Arc::clone(stop),
        log,
    ));
    // Handlers under way finish (each is short); a client still sending is cut off.
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

async fn accept(
    endpoint: Arc<Endpoint>,
    listener: std::net::TcpListener,
    stop: Arc<AtomicBool>,
    log: Log,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let queue = Arc::new(Semaphore::new(WORKERS + MAX_QUEUED));
    while !stop.load(Ordering::SeqCst) {
        let Ok(permit) = Arc::clone(&connections).acquire_owned().await else {
            break;
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = tokio::time::sleep(Duration::from_millis(250)) => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                log(Event::Http(&e));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (endpoint, queue) = (Arc::clone(&endpoint), Arc::clone(&queue));
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                answer(
                    Arc::clone(&endpoint),
                    Arc::clone(&queue),
                    request,
                    peer.ip(),
                    log,
                )
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = tokio::time::sleep(MAX_AGE) => {
                    // Closed once the answer under way is written.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(permit);
        });
    }
    Ok(())
}

/// One request: `healthz` at once; the others read (body capped and timed) and handed to
/// a worker, unless too many wait already.
async fn answer(
    endpoint: Arc<Endpoint>,
    queue: Arc<Semaphore>,
    request: hyper::Request<Incoming>,
    peer: IpAddr,
    log: Log,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let method = request.method().clone();
    let head = method == Method::HEAD;
    let path = request.uri().path().to_string();
    if endpoint.is_healthz(&path) && matches!(method, Method::GET | Method::HEAD) {
        return Ok(respond(Reply::text(200, "ok\n"), head));
    }
    let early = |reply: Reply| {
        log(Event::Answered {
            method: &method,
            path: &path,
            status: reply.status,
        });
        Ok(respond(reply, head))
    };
    let query = request.uri().query().unwrap_or("").to_string();
    let headers = request.headers().clone();
    let max = endpoint.config.web.max_body_bytes;
    let limited = Limited::new(request.into_body(), max);
    // The body first (capped, timed): a slow sender holds its connection, not a worker's
    // place in the queue.
    let body = match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes().to_vec(),
        Ok(Err(_)) => return early(Reply::text(413, "request body too large\n")),
        Err(_) => return early(Reply::text(408, "request timeout\n")),
    };
    let Ok(permit) = queue.try_acquire_owned() else {
        let mut busy = Reply::text(503, "busy, try again in a few seconds\n");
        busy.retry_after = Some("5");
        return early(busy);
    };
    let request = Request {
        method: method.clone(),
        path: path.clone(),
        query,
        headers,
        peer,
        body,
    };
    let handled = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        endpoint.handle(&request, log)
    })
    .await;
    let reply = handled.unwrap_or_else(|_| Reply::text(500, "server error\n"));
    Ok(respond(reply, head))
}

fn respond(reply: Reply, head: bool) -> Response<Full<Bytes>> {
    let (status, headers, body) = reply.into_parts(head);
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
