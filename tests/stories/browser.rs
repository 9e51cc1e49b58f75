//! A real browser: headless Chromium, driven through chromedriver, works the
//! queue the way a coach does. The queue's screenshot is saved to
//! `target/test-artifacts/queue.png`, the outcomes page's to `reports.png`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use crate::common::*;
use chrono::Duration;
use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the page's `main` says `text` (pages load after a click), then
/// returns what it says.
async fn main_text_once_it_says(browser: &fantoccini::Client, text: &str) -> String {
    let deadline = Instant::now() + StdDuration::from_secs(15);
    loop {
        if let Ok(main) = browser.find(Locator::Css("main")).await
            && let Ok(found) = main.text().await
        {
            if found.contains(text) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "the page never said {text:?}: {found}"
            );
        }
        assert!(Instant::now() < deadline, "the page never loaded");
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + StdDuration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(StdDuration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: scripts/test runs it"]
async fn a_coach_edits_approves_rejects_and_finds_the_send_in_a_real_browser() {
    let app = TestApp::sqlite().await;
    set_passwords(&app).await;
    let now = chrono::Utc::now();
    app.import_clients(
        &clients_csv(&[
            ClientCsv::default(),
            ClientCsv {
                external_id: "c-2",
                first_name: "Maria",
                phone: "+12015550177",
                ..Default::default()
            },
        ]),
        now - Duration::days(10),
    )
    .await;
    app.detect(now).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, reengage::web::router(app.ctx.clone())).into_future());

    let port = free_port();
    let _driver = Driver(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver runs (apt-get install chromium chromium-driver; scripts/test does)",
            ),
    );
    wait_for_port(port);
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=375,900",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session");
    let base = format!("http://{address}");

    browser.goto(&format!("{base}/")).await.unwrap();
    assert!(
        browser
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/login")
    );
    browser
        .find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys(COACH)
        .await
        .unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let queue_text = main_text_once_it_says(&browser, "Drafts waiting for you").await;
    assert!(
        queue_text.contains("Jordan") && queue_text.contains("Maria"),
        "{queue_text}"
    );
    // The stylesheet loads under the page's CSP (which allows no inline style).
    let brand_weight = browser
        .execute(
            "return getComputedStyle(document.querySelector('h1')).fontWeight",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(brand_weight, json!("600"), "style.css applies");
    let screenshot = browser.screenshot().await.unwrap();
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("queue.png"), screenshot).unwrap();

    // Jordan's draft: open it, edit it, approve it.
    browser
        .find(Locator::LinkText("Jordan"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    main_text_once_it_says(&browser, "Check-in for Jordan").await;
    let body = browser.find(Locator::Id("body")).await.unwrap();
    body.clear().await.unwrap();
    body.send_keys("Hi Jordan, Rosa here, thinking of you this week. Reply STOP to opt out.")
        .await
        .unwrap();
    browser
        .find(Locator::Css("form[action$='/edit'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let page = main_text_once_it_says(&browser, "Before your edit").await;
    assert!(page.contains("thinking of you this week"), "{page}");
    browser
        .find(Locator::Css("main form[action$='/approve'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Back on the queue: reject Maria's with a reason.
    main_text_once_it_says(&browser, "Drafts waiting for you").await;
    browser
        .find(Locator::Css("form[action$='/reject'] input[name=reason]"))
        .await
        .unwrap()
        .send_keys("I spoke with her yesterday")
        .await
        .unwrap();
    browser
        .find(Locator::Css("form[action$='/reject'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    main_text_once_it_says(&browser, "Nothing is waiting").await;
    let statuses: Vec<String> = app
        .messages(None)
        .await
        .into_iter()
        .map(|m| m.status.to_string())
        .collect();
    assert!(statuses.contains(&"approved".to_owned()) && statuses.contains(&"rejected".to_owned()));

    // Dispatch (tomorrow at 11:00 in New York), then find the send in the log.
    let tomorrow = (now + Duration::days(1))
        .date_naive()
        .and_hms_opt(15, 0, 0)
        .unwrap()
        .and_utc();
    assert_eq!(app.dispatch(tomorrow).await.sent, 1);
    browser.goto(&format!("{base}/sends")).await.unwrap();
    let log = main_text_once_it_says(&browser, "+12015550123").await;
    assert!(log.contains("attempt: sent"), "{log}");

    // The outcomes page draws its charts in a real browser.
    browser.goto(&format!("{base}/reports")).await.unwrap();
    main_text_once_it_says(&browser, "From opened to returned").await;
    let charts = browser
        .find_all(Locator::Css("figure.chart svg rect"))
        .await
        .unwrap();
    assert!(!charts.is_empty(), "the charts have bars");
    std::fs::write(
        artifacts.join("reports.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();
    browser.close().await.unwrap();
}
