//! What every request passes through around its handler, outermost first: a
//! request id, one access-log line with HTTP metrics, security headers, JSON
//! errors under `/api/`, panics caught, a timeout, per-address rate limits and
//! a body limit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::app::config::HttpSettings;
use crate::app::metrics::Metrics;

/// Wraps the routes in every layer, as `settings` configures them.
pub fn apply(router: Router, settings: &HttpSettings, metrics: Arc<Metrics>) -> Router {
    let address = ClientAddress::new(&settings.trusted_proxies);
    let limits = Arc::new(Limits::new(address.clone(), settings));
    forget_idle_addresses(Arc::downgrade(&limits));
    let router = router
        .route_layer(middleware::from_fn(note_route))
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .layer(middleware::from_fn_with_state(limits, rate_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(settings.request_timeout_seconds),
        ))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn(api_errors_as_json));
    secure(router, settings.public_url.scheme() == "https")
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(middleware::from_fn_with_state(
            Arc::new(AccessLog { address, metrics }),
            access_log,
        ))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The address a request comes from: its TCP peer, or, when the peer is a
/// trusted proxy, the last address in `X-Forwarded-For` that is not one.
#[derive(Clone)]
pub struct ClientAddress {
    trusted: Arc<[IpNet]>,
}

impl ClientAddress {
    pub fn new(trusted: &[IpNet]) -> Self {
        Self {
            trusted: trusted.into(),
        }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// A request served in-process (no TCP peer) counts as `0.0.0.0`.
    pub fn of<B>(&self, request: &axum::http::Request<B>) -> IpAddr {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| {
                c.0.ip().to_canonical()
            });
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let parsed = hop
                .parse::<IpAddr>()
                .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()));
            let Ok(ip) = parsed else { break };
            client = ip.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// One limiter per kind of request, keyed by client address (`None`: off).
struct Limits {
    address: ClientAddress,
    login: Option<DefaultKeyedRateLimiter<IpAddr>>,
    api: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Counts refused webhook requests only (a bad or missing signature):
    /// a verified one is never limited, so that no client's reply is lost
    /// to a limit.
    webhooks: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses over the webhook limit, and until when.
    refused_until: std::sync::Mutex<std::collections::HashMap<IpAddr, Instant>>,
}

impl Limits {
    fn new(address: ClientAddress, settings: &HttpSettings) -> Self {
        let limiter = |per_minute: u32| {
            NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
        };
        let limits = &settings.rate_limit;
        Self {
            address,
            login: limiter(limits.login_per_minute),
            api: limiter(limits.api_per_minute),
            webhooks: limiter(limits.webhooks_per_minute),
            refused_until: std::sync::Mutex::default(),
        }
    }

    fn for_request(&self, request: &Request) -> Option<&DefaultKeyedRateLimiter<IpAddr>> {
        let path = request.uri().path();
        if path == "/login" && request.method() == Method::POST {
            self.login.as_ref()
        } else if path.starts_with("/api/") {
            self.api.as_ref()
        } else {
            None
        }
    }

    fn refused(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<IpAddr, Instant>> {
        self.refused_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Every minute, drops the addresses whose limits are back to full, so that
/// the limiters' memory stays the size of the current traffic. Ends with
/// the router.
fn forget_idle_addresses(limits: Weak<Limits>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(limits) = limits.upgrade() else {
                return;
            };
            for limiter in [&limits.login, &limits.api, &limits.webhooks]
                .into_iter()
                .flatten()
            {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            let now = Instant::now();
            limits.refused().retain(|_, until| *until > now);
        }
    });
}

/// What a limit counts by: an IPv4 address, or an IPv6 address's /64 (one
/// household or host gets a whole /64, and could otherwise take a fresh
/// address for every request).
fn bucket(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from_bits(
            v6.to_bits() & !((1u128 << 64) - 1),
        )),
    }
}

async fn rate_limit(State(limits): State<Arc<Limits>>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/webhooks/") {
        return limit_refused_webhooks(&limits, request, next).await;
    }
    if let Some(limiter) = limits.for_request(&request) {
        let client = limits.address.of(&request);
        if let Err(not_until) = limiter.check_key(&bucket(client)) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            // Not the path: an API path may hold a client's id.
            let limit = if request.uri().path() == "/login" {
                "login"
            } else {
                "api"
            };
            tracing::warn!(%client, limit, "rate limited");
            if request.uri().path() == "/login" {
                let page = super::ui::notice_page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many tries",
                    &format!(
                        "Too many logins from your address. Try again in {} seconds.",
                        whole_seconds(wait)
                    ),
                );
                return retry_after(page, wait);
            }
            return too_many(wait);
        }
    }
    next.run(request).await
}

/// The webhooks' limit: each refused request (403: no valid signature)
/// counts; past the limit, every request from that address is 429 until the
/// limit refills. Twilio's addresses send verified requests, so they are
/// never held back.
async fn limit_refused_webhooks(limits: &Limits, request: Request, next: Next) -> Response {
    let Some(limiter) = &limits.webhooks else {
        return next.run(request).await;
    };
    let client = limits.address.of(&request);
    let key = bucket(client);
    let held = limits.refused().get(&key).copied();
    if let Some(until) = held.filter(|until| *until > Instant::now()) {
        return too_many(until - Instant::now());
    }
    let response = next.run(request).await;
    if response.status() != StatusCode::FORBIDDEN {
        return response;
    }
    match limiter.check_key(&key) {
        Ok(()) => response,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            limits.refused().insert(key, Instant::now() + wait);
            tracing::warn!(%client, "webhook requests refused too often; holding the address back");
            too_many(wait)
        }
    }
}

/// A wait in whole seconds, rounded up, at least 1.
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// 429, with `Retry-After` in whole seconds.
fn too_many(wait: Duration) -> Response {
    let seconds = whole_seconds(wait);
    retry_after(
        format!("Too many requests from your address. Try again in {seconds} seconds.\n")
            .into_response(),
        wait,
    )
}

/// Makes an answer a 429 that says when to come back.
fn retry_after(mut response: Response, wait: Duration) -> Response {
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(whole_seconds(wait)));
    response
}

/// The route a request matched (`/drafts/{id}`, never the raw path), carried
/// on the response for the access log and the metrics.
#[derive(Clone)]
struct Route(Arc<str>);

async fn note_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| Route(path.as_str().into()));
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

struct AccessLog {
    address: ClientAddress,
    metrics: Arc<Metrics>,
}

/// One line per request: its id, method, matched route, status, duration and
/// client address. Never the raw path (an unsubscribe link's token is a
/// secret), the query or a header's value.
async fn access_log(State(log): State<Arc<AccessLog>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let client = log.address.of(&request);
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<Route>()
        .map_or("unmatched", |r| &r.0);
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    log.metrics.http_request(route, status, seconds);
    let ms = (seconds * 1000.0).round() as u64;
    macro_rules! line {
        ($level:expr) => {
            tracing::event!(
                target: "reengage::http",
                $level,
                request_id = %id,
                %method,
                route,
                status,
                ms,
                %client,
                "request"
            )
        };
    }
    // Probes and scrapes come every few seconds: at debug, so that the log
    // shows people's requests.
    if matches!(route, "/livez" | "/readyz" | "/metrics" | "/favicon.ico") && status < 400 {
        line!(tracing::Level::DEBUG);
    } else {
        line!(tracing::Level::INFO);
    }
    response
}

/// A panic in a handler: logged, and answered with the error page (JSON
/// under `/api/`, by [`api_errors_as_json`]).
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    super::ui::error_page(anyhow::anyhow!("a request handler panicked: {what}"))
}

/// Every failure under `/api/` in the API's error shape,
/// `{"error": code, "detail": text}`, whoever answered it: a handler, axum's
/// extractors (a bad path parameter), the router (no such route or method),
/// or the layers (body limit, rate limit, timeout, panic).
async fn api_errors_as_json(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !api || is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let is_text = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) if is_text => String::from_utf8_lossy(&bytes).trim().to_owned(),
        _ => String::new(),
    };
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let code = match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let body = json!({ "error": code, "detail": detail }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

/// Headers every response carries: pages and API answers hold client data,
/// so nothing is cached, framed, sniffed or sent on as a Referer; and over
/// https, browsers are told to stay on https.
fn secure(router: Router, https: bool) -> Router {
    let mut headers: Vec<(HeaderName, &'static str)> = vec![
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    if https {
        headers.push((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"));
    }
    headers.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, forwarded: Option<&str>) -> axum::http::Request<()> {
        let mut request = axum::http::Request::new(());
        request
            .extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        if let Some(value) = forwarded {
            request
                .headers_mut()
                .insert("x-forwarded-for", value.parse().unwrap());
        }
        request
    }

    #[tokio::test]
    async fn a_panic_is_a_500_page_or_a_json_error_and_the_server_goes_on() {
        use tower::ServiceExt as _;
        let settings = crate::app::config::Settings::load(None, None).unwrap();
        fn boom() -> &'static str {
            panic!("a bug")
        }
        let router = Router::new()
            .route("/page", axum::routing::get(|| async { boom() }))
            .route("/api/v1/thing", axum::routing::get(|| async { boom() }));
        let router = apply(router, &settings.http, Arc::new(Metrics::default()));
        for (path, kind) in [
            ("/page", "text/html"),
            ("/api/v1/thing", "application/json"),
        ] {
            let response = router
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
            assert!(content_type.starts_with(kind), "{path}: {content_type}");
            assert!(response.headers().contains_key("x-request-id"));
            let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .unwrap();
            let body = String::from_utf8_lossy(&body);
            assert!(
                !body.contains("a bug"),
                "the panic stays in the log: {body}"
            );
            if kind == "application/json" {
                let value: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(value["error"], "internal");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_over_the_time_limit_is_a_503_and_its_work_is_dropped() {
        use tower::ServiceExt as _;
        let settings = crate::app::config::Settings::load(None, None).unwrap();
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = finished.clone();
        let router = Router::new().route(
            "/api/v1/slow",
            axum::routing::get(move || async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                "late"
            }),
        );
        let router = apply(router, &settings.http, Arc::new(Metrics::default()));
        // The clock is paused: tokio moves it on when every task waits.
        let response = router
            .oneshot(Request::get("/api/v1/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["error"], "unavailable");
        assert!(!finished.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn an_ipv6_household_is_one_bucket_and_ipv4_addresses_are_their_own() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            bucket(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            bucket(ip("2001:db8:1:2::7"))
        );
        assert_ne!(bucket(ip("2001:db8:1:3::1")), bucket(ip("2001:db8:1:2::1")));
        assert_eq!(bucket(ip("198.51.100.7")), ip("198.51.100.7"));
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let none = ClientAddress::new(&[]);
        let proxy = ClientAddress::new(&["10.0.0.0/8".parse().unwrap()]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            none.of(&request("203.0.113.9:5000", Some("198.51.100.1"))),
            ip("203.0.113.9")
        );
        assert_eq!(
            proxy.of(&request("203.0.113.9:5000", Some("198.51.100.1"))),
            ip("203.0.113.9")
        );
        assert_eq!(
            proxy.of(&request("10.1.2.3:5000", Some("198.51.100.1"))),
            ip("198.51.100.1")
        );
        // A client cannot pose as another by sending its own header: the
        // proxy appends the real address, and that one is taken.
        assert_eq!(
            proxy.of(&request(
                "10.1.2.3:5000",
                Some("192.0.2.7, 198.51.100.1, 10.9.9.9")
            )),
            ip("198.51.100.1")
        );
        assert_eq!(proxy.of(&request("10.1.2.3:5000", None)), ip("10.1.2.3"));
        assert_eq!(
            proxy.of(&request(
                "[::ffff:10.1.2.3]:5000",
                Some("[2001:db8::1]:443")
            )),
            ip("2001:db8::1")
        );
    }
}
