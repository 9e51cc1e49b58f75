//! The coach UI as a browser uses it: cookies, forms with their CSRF tokens,
//! redirects; and one password for every coach.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt as _;

use super::TestApp;

/// The password [`set_passwords`] gives every coach.
pub const PASSWORD: &str = "a long enough password";

/// A browser on the coach UI: it keeps cookies, and sends forms.
pub struct Browser<'a> {
    app: &'a TestApp,
    pub cookies: HashMap<String, String>,
}

/// What a page answered.
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: HashMap::new(),
        }
    }

    pub async fn send(&mut self, request: axum::http::request::Builder, body: Body) -> Page {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let request = request
            .header(header::COOKIE, cookie.join("; "))
            .body(body)
            .unwrap();
        let response = reengage::web::router(self.app.ctx.clone())
            .oneshot(request)
            .await
            .unwrap();
        for set in response.headers().get_all(header::SET_COOKIE) {
            let parsed = cookie::Cookie::parse(set.to_str().unwrap().to_owned()).unwrap();
            assert!(
                parsed.http_only().unwrap_or(false),
                "{set:?} is not HttpOnly"
            );
            assert_eq!(parsed.same_site(), Some(cookie::SameSite::Lax));
            if parsed.value().is_empty() {
                self.cookies.remove(parsed.name());
            } else {
                self.cookies
                    .insert(parsed.name().to_owned(), parsed.value().to_owned());
            }
        }
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let headers = response.headers().clone();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
            .await
            .unwrap();
        Page {
            status,
            location,
            content_type,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Request::get(path), Body::empty()).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
            Body::from(body),
        )
        .await
    }

    /// The CSRF token in the page's forms.
    pub fn csrf(page: &Page) -> String {
        let at = page
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token")
            + 19;
        page.body[at..].split('"').next().unwrap().to_owned()
    }

    pub async fn log_in(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let csrf = Self::csrf(&form);
        self.post(
            "/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }
}

/// Every coach's password is [`PASSWORD`].
pub async fn set_passwords(app: &TestApp) {
    let hash = reengage::app::auth::hash_password(&secrecy::SecretString::from(PASSWORD)).unwrap();
    let mut conn = app.ctx.store.conn().await.unwrap();
    sqlx::query("UPDATE coaches SET password_hash = $1")
        .bind(hash)
        .execute(&mut *conn)
        .await
        .unwrap();
}
