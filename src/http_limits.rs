//! What one client can hold: the time it takes to send a request body, and how many of its
//! requests are in flight at once.
//!
//! actix bounds the wait for a request's headers (`client_request_timeout`) and the idle time
//! between requests (keep-alive), but nothing bounds the body: a client that announces
//! `Content-Length: 100000` and sends a byte a minute keeps its connection, its buffers and a
//! file descriptor for as long as it likes. Bodies are read by extractors (`web::Json`,
//! `web::Bytes`, `web::Payload`, ...) inside the handlers, so the deadline is put on the
//! payload stream itself, before any of them sees it: every reader meets it.

use crate::configuration::LimitSettings;
use crate::problem::{ApiError, ProblemKind};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::{HttpMessage, HttpRequest, ResponseError};
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::Stream;
use std::cell::Cell;
use std::collections::HashMap;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// Probes and scrapes come from the same few addresses as everything else (a load balancer,
/// a node): they are never refused, so health stays visible while a client misbehaves.
const EXEMPT: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// The middleware; one per server, shared by its workers (`.wrap(limits.clone())`).
/// How long a connection is kept after its last answer so the client can read it
/// (actix's `client_disconnect_timeout`, set from this in `startup`).
pub const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// When the 408 goes out: early enough that the connection is closed, linger included,
/// within the configured bound.
fn answer_by(bound: Duration) -> Duration {
    bound.saturating_sub(CLOSE_LINGER).max(bound / 2)
}

#[derive(Clone)]
pub struct HttpLimits {
    inner: Arc<Shared>,
}

struct Shared {
    body_timeout: Duration,
    per_client: usize,
    trust_forwarded: bool,
    in_flight: Mutex<HashMap<String, usize>>,
}

impl HttpLimits {
    pub fn new(settings: &LimitSettings, trust_forwarded: bool) -> Self {
        Self {
            inner: Arc::new(Shared {
                body_timeout: answer_by(settings.body_timeout),
                per_client: settings.requests_per_client,
                trust_forwarded,
                in_flight: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl Shared {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // Counts stay consistent under a poisoned lock: every change is one statement.
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One request counted against its client address until it is dropped (answered, or its
/// connection gone).
struct Slot {
    shared: Arc<Shared>,
    address: String,
}

impl Slot {
    fn take(shared: &Arc<Shared>, address: String) -> Option<Slot> {
        let mut counts = shared.counts();
        let count = counts.entry(address.clone()).or_insert(0);
        if *count >= shared.per_client {
            return None;
        }
        *count += 1;
        drop(counts);
        Some(Slot {
            shared: shared.clone(),
            address,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.shared.counts();
        if let Some(count) = counts.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for HttpLimits
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = HttpLimitsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(HttpLimitsService {
            service,
            shared: self.inner.clone(),
        }))
    }
}

pub struct HttpLimitsService<S> {
    service: S,
    shared: Arc<Shared>,
}

/// A problem answer after which the connection is closed: the rest of the client's body is
/// never read, so the connection could not carry another request anyway.
fn closing<B>(req: HttpRequest, error: ApiError) -> ServiceResponse<EitherBody<B>> {
    let mut res = error.error_response();
    res.head_mut().set_connection_type(ConnectionType::Close);
    ServiceResponse::new(req, res).map_into_right_body()
}

impl<S, B> Service<ServiceRequest> for HttpLimitsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let slot = if EXEMPT.contains(&req.path()) {
            None
        } else {
            let address = crate::client_address::of(req.request(), self.shared.trust_forwarded);
            match Slot::take(&self.shared, address) {
                Some(slot) => Some(slot),
                None => {
                    // 429, not 503: the service is fine, this one client asks too much at
                    // once; a 503 would tell load balancers and monitors the opposite.
                    let error = ApiError::new(
                        ProblemKind::RateLimited,
                        format!(
                            "this client already has {} requests in progress; wait for them",
                            self.shared.per_client
                        ),
                    )
                    .with_retry_after(1);
                    return Box::pin(ready(Ok(closing(req.into_parts().0, error))));
                }
            }
        };
        let timed_out = Rc::new(Cell::new(false));
        let limit = self.shared.body_timeout;
        match req.take_payload() {
            Payload::None => {}
            payload => req.set_payload(Payload::Stream {
                payload: Box::pin(Deadline {
                    inner: payload,
                    timer: Box::pin(tokio::time::sleep(limit)),
                    timed_out: timed_out.clone(),
                }),
            }),
        }
        let fut = self.service.call(req);
        Box::pin(async move {
            let _slot = slot;
            let res = fut.await?;
            if !timed_out.get() {
                return Ok(res.map_into_left_body());
            }
            // Whatever the reader made of the cut stream (a 400 from the JSON extractor, a
            // handler's own error), the honest answer is the timeout.
            let (req, _) = res.into_parts();
            let error = ApiError::new(
                ProblemKind::RequestTimeout,
                format!(
                    "the request body was not received within {} seconds",
                    limit.as_secs()
                ),
            );
            Ok(closing(req, error))
        })
    }
}

/// The request's payload, cut off at its deadline.
struct Deadline {
    inner: Payload,
    timer: Pin<Box<tokio::time::Sleep>>,
    timed_out: Rc<Cell<bool>>,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.timed_out.get() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut this.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.timed_out.set(true);
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "request body timeout",
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
