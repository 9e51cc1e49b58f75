//! The `reengage` command as an operator runs it: exit codes, messages, and a
//! `serve` that answers and stops cleanly. SQLite only; the library stories in
//! loop.rs cover both backends.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Operator {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Operator {
    fn new(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("reengage.toml");
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"sqlite://{d}/db.sqlite\"\n[outbox]\ndir = \"{d}/outbox\"\n\
                 [templates]\ndir = \"{d}/templates\"\n{extra}",
                d = dir.path().display()
            ),
        )
        .unwrap();
        Self { dir, config }
    }

    /// An operator's first step on a new database.
    fn migrated(extra: &str) -> Self {
        let op = Self::new(extra);
        let out = op.run(&["migrate"]);
        assert!(out.status.success(), "{}", stderr(&out));
        op
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reengage"));
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(self.dir.path())
            .env("RUST_LOG", "warn");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("reengage runs")
    }

    /// `coaches add`, which must succeed.
    fn add_coach(&self, email: &str, name: &str) {
        let added = self.run(&["coaches", "add", "--email", email, "--name", name]);
        assert!(added.status.success(), "{}", stderr(&added));
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The status `GET /api/v1/drafts` answers with this token, from a
    /// server on this operator's settings and database.
    fn api_status(&self, token: &str) -> u16 {
        use tower::ServiceExt as _;
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let settings = reengage::app::config::Settings::load(Some(&self.config), None).unwrap();
            let ctx = reengage::app::context::AppContext::build(settings)
                .await
                .unwrap();
            let response = reengage::web::router(ctx.clone())
                .oneshot(
                    axum::http::Request::get("/api/v1/drafts")
                        .header("authorization", format!("Bearer {token}"))
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            ctx.store.close().await;
            response.status().as_u16()
        })
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn an_operator_imports_detects_approves_and_dispatches_from_the_shell() {
    let op = Operator::migrated("");
    op.add_coach("rosa@example.org", "Rosa Diaz");
    let again = op.run(&[
        "coaches",
        "add",
        "--email",
        "rosa@example.org",
        "--name",
        "Rosa",
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already exists"));
    op.add_coach("marcus@example.org", "Marcus Lee");

    let clients = op.file(
        "clients.csv",
        "external_id,first_name,email,phone,coach_email,consent_email,consent_sms\n\
         c-1,Jordan,jordan@example.org,(201) 555-0123,rosa@example.org,yes,yes\n\
         c-2,Maria,maria@example.org,not-a-phone,rosa@example.org,yes,yes\n\
         c-3,Devon,devon@example.org,,ghost@example.org,yes,no\n",
    );
    let bad = op.run(&["import", "clients", &clients]);
    assert_eq!(bad.status.code(), Some(1));
    let err = stderr(&bad);
    assert!(
        err.contains("line 3: phone: `not-a-phone` is not a valid phone number"),
        "{err}"
    );
    assert!(
        err.contains("line 4: no active coach has the email ghost@example.org"),
        "{err}"
    );
    assert!(err.contains("nothing imported"), "{err}");

    let skipped = op.run(&["import", "clients", &clients, "--skip-invalid"]);
    assert!(skipped.status.success(), "{}", stderr(&skipped));
    assert!(stdout(&skipped).contains("1 new"), "{}", stdout(&skipped));

    let events = op.file(
        "events.csv",
        "external_id,kind,occurred_at,note\nc-1,check_in,2026-05-20,\n",
    );
    assert!(op.run(&["import", "events", &events]).status.success());

    let dry = op.run(&["detect", "--now", "2026-06-01T15:00:00Z", "--dry-run"]);
    assert!(stdout(&dry).contains("dry run"), "{}", stdout(&dry));
    assert!(stdout(&dry).contains("drafted 1"), "{}", stdout(&dry));
    let listed = op.run(&["drafts", "list", "--json"]);
    assert_eq!(stdout(&listed).trim(), "[]", "a dry run drafts nothing");

    let detect = op.run(&["detect", "--now", "2026-06-01T15:00:00Z"]);
    assert!(stdout(&detect).contains("drafted 1"), "{}", stdout(&detect));
    let listed: serde_json::Value = serde_json::from_slice(
        &op.run(&["drafts", "list", "--status", "pending", "--json"])
            .stdout,
    )
    .unwrap();
    let draft = &listed[0];
    assert_eq!(draft["client_external_id"], "c-1");
    assert_eq!(draft["coach_email"], "rosa@example.org");
    assert_eq!(draft["to"], "+12015550123");
    let id = draft["id"].to_string();

    let foreign = op.run(&["drafts", "approve", &id, "--coach", "marcus@example.org"]);
    assert_eq!(foreign.status.code(), Some(1));
    assert!(
        stderr(&foreign).contains("another coach"),
        "{}",
        stderr(&foreign)
    );
    let unknown = op.run(&[
        "drafts",
        "approve",
        &id,
        "999",
        "--coach",
        "rosa@example.org",
    ]);
    assert_eq!(unknown.status.code(), Some(1), "one of the two ids failed");
    assert!(stdout(&unknown).contains(&format!("draft {id}: approved")));
    assert!(stderr(&unknown).contains("draft 999 does not exist"));

    let dispatch = op.run(&["dispatch"]);
    assert!(dispatch.status.success(), "{}", stderr(&dispatch));
    let sends = op.run(&["sends", "list", "--json"]);
    let sends: serde_json::Value = serde_json::from_slice(&sends.stdout).unwrap();
    let outbox = op.path().join("outbox").join(format!("{id}.json"));
    match sends[0]["outcome"].as_str() {
        // Daytime for the client: it went.
        Some("sent") => assert!(outbox.exists()),
        // Quiet hours for the client right now: nothing attempted yet.
        None => assert!(stdout(&dispatch).contains("deferred for quiet hours 1")),
        other => panic!("unexpected outcome {other:?}"),
    }
}

#[test]
fn bad_settings_stop_start_up_with_the_key_named() {
    for (extra, key) in [
        ("[schedule]\ndetect = \"every minute\"\n", "schedule.detect"),
        ("[sending]\nquiet_start = \"9pm\"\n", "sending.quiet_start"),
        (
            "[defaults]\ntimezone = \"Mars/Olympus\"\n",
            "defaults.timezone",
        ),
        ("[email]\nfrom = \"not an address\"\n", "email.from"),
        (
            "[http]\npublic_url = \"ftp://example.org\"\n",
            "http.public_url",
        ),
    ] {
        let op = Operator::new(extra);
        let out = op.run(&["detect"]);
        assert_eq!(out.status.code(), Some(1), "{extra}");
        assert!(stderr(&out).contains(key), "{extra}: {}", stderr(&out));
    }
    let op = Operator::migrated("");
    let out = op
        .command(&["migrate"])
        .env("REENGAGE__DATABASE__URL", "mysql://nope")
        .output()
        .unwrap();
    assert!(stderr(&out).contains("database.url"), "{}", stderr(&out));
    let out = op.run(&["--database-url", "redis://x", "migrate"]);
    assert!(stderr(&out).contains("database.url"), "{}", stderr(&out));
}

#[test]
fn a_bad_sender_number_stops_the_commands_that_send() {
    let op = Operator::migrated("[sms]\nfrom = \"+1 555\"\n");
    for command in [&["dispatch"][..], &["serve"]] {
        let out = op.run(command);
        assert_eq!(out.status.code(), Some(1), "{command:?}");
        assert!(stderr(&out).contains("sms.from"), "{}", stderr(&out));
    }
    // The others never send, so they do not load the phone metadata to check.
    let out = op.run(&["detect"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn secrets_never_appear_in_debug_output_or_start_up_errors() {
    let op = Operator::migrated(
        "[security]\nsecret_key = \"k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y\"\n\
         [email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"smtp.example.org\"\nusername = \"mailer\"\n\
         password = \"smtp-pa55word\"\n[sms]\ntransport = \"twilio\"\n[sms.twilio]\n\
         account_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token = \"tw1l10-t0ken\"\n\
         api_key_sid = \"SK0123\"\napi_key_secret = \"ap1-s3cret\"\n",
    );
    let settings = reengage::app::config::Settings::load(
        Some(&op.config),
        Some("postgres://reengage:hunter2secret@db/reengage"),
    )
    .unwrap();
    let debug = format!("{settings:?}");
    for secret in [
        "hunter2secret",
        "smtp-pa55word",
        "tw1l10-t0ken",
        "ap1-s3cret",
        "k3y-k3y",
    ] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert!(
        debug.contains("smtp.example.org"),
        "the rest is still there to debug"
    );

    // A start-up that fails (no database here) does not print them either.
    let out = op.run(&[
        "--database-url",
        "postgres://reengage:hunter2secret@127.0.0.1:1/x",
        "migrate",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    for secret in [
        "hunter2secret",
        "smtp-pa55word",
        "tw1l10-t0ken",
        "ap1-s3cret",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[test]
fn missing_provider_settings_stop_start_up_with_the_key_named() {
    for (extra, key) in [
        ("[email]\ntransport = \"smtp\"\n", "email.smtp.host"),
        ("[sms]\ntransport = \"twilio\"\n", "sms.twilio.account_sid"),
        (
            "[sms]\ntransport = \"twilio\"\n[sms.twilio]\naccount_sid = \"AC1\"\n",
            "sms.twilio.auth_token",
        ),
        (
            "[security]\nsecret_key = \"short\"\n",
            "security.secret_key",
        ),
        (
            "[email]\ndiscreet_name = \"Recovery Team\"\n",
            "email.discreet_name",
        ),
        (
            "[replies]\nhelp_text = \"Text us anytime\"\n",
            "replies.help_text",
        ),
        (
            "[replies]\nwrong_number_reply = \"Sorry, this is the recovery program\"\n",
            "replies.wrong_number_reply",
        ),
    ] {
        let op = Operator::new(extra);
        let out = op.run(&["detect"]);
        assert_eq!(out.status.code(), Some(1), "{extra}");
        assert!(stderr(&out).contains(key), "{extra}: {}", stderr(&out));
    }
}

#[test]
fn serve_answers_health_and_stops_cleanly_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let op = Operator::migrated(&format!(
        "[http]\nbind = \"127.0.0.1:{port}\"\nheader_read_timeout_seconds = 1\n"
    ));
    // As systemd's Type=notify would: a socket that hears "READY=1".
    let notify_path = op.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut child = op
        .command(&["serve"])
        .env("NOTIFY_SOCKET", &notify_path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = [0u8; 256];
    let n = notify.recv(&mut said).expect("serve says when it is ready");
    assert_eq!(String::from_utf8_lossy(&said[..n]).trim(), "READY=1");
    let deadline = Instant::now() + Duration::from_secs(30);
    let response = loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            break response;
        }
        assert!(Instant::now() < deadline, "serve never listened");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok\n"), "{response}");
    assert!(
        response.to_lowercase().contains("x-request-id: "),
        "{response}"
    );
    // A client that never finishes its headers is let go (slow-loris).
    {
        use std::io::{Read, Write};
        let mut slow = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        slow.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: loc")
            .unwrap();
        let mut answer = Vec::new();
        let closed = slow.read_to_end(&mut answer);
        assert!(
            closed.is_ok(),
            "the server closed the connection: {closed:?}"
        );
        let answer = String::from_utf8_lossy(&answer);
        assert!(!answer.contains("200 OK"), "{answer}");
    }

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let n = notify.recv(&mut said).expect("serve says it is stopping");
    assert_eq!(String::from_utf8_lossy(&said[..n]).trim(), "STOPPING=1");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(status.success(), "exit {status:?}: {log}");
}

#[test]
fn the_demo_queues_drafts_for_two_coaches_and_says_what_to_do_next() {
    let op = Operator::migrated("");
    let out = Command::new(env!("CARGO_BIN_EXE_reengage"))
        .args(["demo", "--clients", "60", "--no-serve", "--dir", "demo"])
        .current_dir(op.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("drafts are queued for 2 demo coaches"),
        "{text}"
    );
    assert!(text.contains("drafts list"), "{text}");
    assert!(text.contains("drafts approve"), "{text}");
    assert!(text.contains("dispatch"), "{text}");
    let config = op.path().join("demo/reengage.toml");
    let listed = Command::new(env!("CARGO_BIN_EXE_reengage"))
        .arg("--config")
        .arg(&config)
        .args(["drafts", "list", "--status", "pending", "--json"])
        .current_dir(op.path())
        .output()
        .unwrap();
    let drafts: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let drafts = drafts.as_array().unwrap();
    assert!(drafts.len() >= 20, "{}", drafts.len());
    assert!(
        drafts
            .iter()
            .any(|d| d["body"].as_str().unwrap().starts_with("Hola"))
    );
    assert!(drafts.iter().any(|d| d["channel"] == "email"));
    // An email reply came in through the folder inbox, and was taken in once.
    assert!(text.contains("by SMS and by email"), "{text}");
    assert!(
        op.path()
            .join("demo/inbox/processed/demo-reply.eml")
            .exists()
    );
    // `inbox` reads the folder again: a stranger's email is stored unmatched.
    std::fs::write(
        op.path().join("demo/inbox/new.eml"),
        "From: someone@example.net\r\nSubject: hello\r\nMessage-ID: <new@example.net>\r\n\r\nwho is this?\r\n",
    )
    .unwrap();
    let inbox = Command::new(env!("CARGO_BIN_EXE_reengage"))
        .arg("--config")
        .arg(&config)
        .args(["inbox", "--now"])
        .current_dir(op.path())
        .output()
        .unwrap();
    assert!(inbox.status.success(), "{}", stderr(&inbox));
    assert_eq!(
        stdout(&inbox).trim(),
        "stored 1, matched 0, unmatched 1, auto-replies 0, bounces 0, duplicates 0"
    );
}

#[test]
fn inbox_says_when_email_replies_are_not_read() {
    let op = Operator::migrated("");
    let out = op.run(&["inbox"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("email.inbound.transport is not set"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn templates_check_passes_on_the_shipped_templates_and_fails_on_a_broken_one() {
    let op = Operator::migrated("");
    let ok = op.run(&["templates", "check"]);
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).contains("es/checkin-3.sms"));

    std::fs::create_dir_all(op.path().join("templates/en")).unwrap();
    op.file(
        "templates/en/checkin-2.sms.hbs",
        "Hi {{client.nickname}}. Reply STOP to opt out.",
    );
    let broken = op.run(&["templates", "check"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        stdout(&broken).contains("en/checkin-2.sms"),
        "{}",
        stdout(&broken)
    );

    op.file(
        "templates/en/checkin-2.sms.hbs",
        "Hi {{client.name}},\nthis is your last chance. Reply STOP to opt out.",
    );
    let harsh = op.run(&["templates", "check"]);
    assert_eq!(harsh.status.code(), Some(1));
    assert!(
        stdout(&harsh).contains("en/checkin-2.sms.hbs:2 (regular): punitive \"last chance\""),
        "{}",
        stdout(&harsh)
    );
}

/// `templates check` reads files only: it runs before `migrate`, and it
/// fails an agency template that names the no-show, in either language.
#[test]
fn templates_check_needs_no_database_and_refuses_blame_in_both_languages() {
    let op = Operator::new("");
    let ok = op.run(&["templates", "check"]);
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));
    std::fs::create_dir_all(op.path().join("templates/en")).unwrap();
    std::fs::create_dir_all(op.path().join("templates/es")).unwrap();
    op.file(
        "templates/en/checkin-2.sms.hbs",
        "Hi {{client.name}}, you missed your appointment on Tuesday. Reply STOP to opt out.",
    );
    op.file(
        "templates/es/checkin-2.sms.hbs",
        "Hola {{client.name}}, faltaste a tu cita del martes. Responde STOP para no recibir más.",
    );
    let out = op.run(&["templates", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    for expected in [
        "en/checkin-2.sms.hbs:1 (regular): blame \"you missed\"",
        "es/checkin-2.sms.hbs:1 (regular): blame \"faltaste\"",
    ] {
        assert!(
            stdout(&out).contains(expected),
            "{expected}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn backup_writes_a_working_copy_and_logs_can_be_json() {
    let op = Operator::migrated("[log]\nformat = \"json\"\n");
    op.add_coach("rosa@example.org", "Rosa Diaz");
    let copy = op.path().join("backup.db");
    let out = op
        .command(&["backup", copy.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("backup written"));
    // The copy opens and holds the data.
    let listed = op.run(&[
        "--database-url",
        &format!("sqlite://{}", copy.display()),
        "tokens",
        "create",
        "--coach",
        "rosa@example.org",
    ]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let again = op.run(&["backup", copy.to_str().unwrap()]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "an existing file is not overwritten"
    );
    // JSON logs: every line is an object.
    let detect = op
        .command(&["detect"])
        .env("RUST_LOG", "info,reengage=debug")
        .output()
        .unwrap();
    for line in stderr(&detect).lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
}

#[test]
fn replies_test_shows_the_class_and_the_rule_and_an_agency_file_extends_the_lists() {
    let op = Operator::migrated("");
    let out = op.run(&["replies", "test", "i dont wanna be here anymore"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("crisis"), "{text}");
    assert!(text.contains("matched `"), "{text}");
    assert!(
        text.contains("be here anymore"),
        "the client's words: {text}"
    );
    let out = op.run(&["replies", "test", "STOP"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("opt_out"), "{}", stdout(&out));
    assert!(stdout(&out).contains("the whole text is a keyword"));
    // The built-in lists do not hold the agency's wording for a place it
    // knows (the reply model may guess; `--rules-only` leaves it out).
    let out = op.run(&[
        "replies",
        "test",
        "--rules-only",
        "thinking of the old mill again",
    ]);
    assert!(stdout(&out).starts_with("reply"), "{}", stdout(&out));

    // An agency's own rule, and a typo in one that names the list and the rule.
    let words = op.file(
        "words.toml",
        "[crisis]\nen = [\"(thinking|think) of the (quarry|silo|old mill)\"]\n",
    );
    let with_words = Operator {
        config: op
            .file(
                "with-words.toml",
                &format!(
                    "{}\n[replies]\nwords_file = \"{words}\"\n",
                    std::fs::read_to_string(&op.config).unwrap()
                ),
            )
            .into(),
        dir: op.dir,
    };
    let out = with_words.run(&[
        "replies",
        "test",
        "--rules-only",
        "thinking of the old mill again",
    ]);
    assert!(stdout(&out).starts_with("crisis"), "{}", stdout(&out));
    assert!(stdout(&out).contains("old mill"), "{}", stdout(&out));
    std::fs::write(&words, "[crisis]\nen = [\"want to (die\"]\n").unwrap();
    let out = with_words.run(&["replies", "test", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("crisis.en") && stderr(&out).contains("want to (die"),
        "{}",
        stderr(&out)
    );

    // A labelled corpus: recall and precision by class.
    std::fs::write(&words, "[crisis]\nen = [\"think of the quarry\"]\n").unwrap();
    let corpus = with_words.file(
        "corpus.csv",
        "text,classes,lang,lookalike\nkms,crisis,en,no\nwork is killing me lol,reply,en,yes\nSTOP,opt_out,en,no\n",
    );
    let out = with_words.run(&["replies", "eval", &corpus, "--misses"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("3 texts"), "{report}");
    assert!(report.contains("held as crisis: 0 of 1"), "{report}");
}

#[test]
fn coaches_away_sets_a_backup_and_coaches_back_ends_it() {
    let op = Operator::migrated("");
    for (email, name) in [
        ("rosa@example.org", "Rosa Diaz"),
        ("marcus@example.org", "Marcus Lee"),
    ] {
        let out = op.run(&["coaches", "add", "--email", email, "--name", name]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = op.run(&[
        "coaches",
        "away",
        "--email",
        "rosa@example.org",
        "--until",
        "2099-01-31",
        "--backup",
        "marcus@example.org",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("marcus@example.org covers"),
        "{}",
        stdout(&out)
    );
    for (args, problem) in [
        (vec!["--until", "2001-01-01"], "has passed"),
        (vec!["--until", "next week"], "is not a date"),
        (
            vec!["--until", "2099-01-31", "--backup", "nobody@example.org"],
            "no active coach",
        ),
        (
            vec!["--until", "2099-01-31", "--backup", "rosa@example.org"],
            "own backup",
        ),
    ] {
        let mut all = vec!["coaches", "away", "--email", "rosa@example.org"];
        all.extend(args);
        let out = op.run(&all);
        assert_eq!(out.status.code(), Some(1), "{all:?}");
        assert!(stderr(&out).contains(problem), "{all:?}: {}", stderr(&out));
    }
    let out = op.run(&["coaches", "back", "--email", "rosa@example.org"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("is back"));
}

#[test]
fn migrate_migrates_and_other_commands_refuse_a_database_that_needs_it() {
    let op = Operator::new("");
    let out = op.run(&[
        "coaches",
        "add",
        "--email",
        "rosa@example.org",
        "--name",
        "Rosa",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("run `reengage migrate` first") && stderr(&out).contains("0001"),
        "{}",
        stderr(&out)
    );
    // Nothing else touched the database: migrate still has everything to do.
    let out = op.run(&["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("migrations applied: 0001"),
        "{}",
        stdout(&out)
    );
    let out = op.run(&["migrate"]);
    assert!(stdout(&out).contains("up to date"), "{}", stdout(&out));
    let out = op.run(&[
        "coaches",
        "add",
        "--email",
        "rosa@example.org",
        "--name",
        "Rosa",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Migrating needs no word lists, templates or channels.
    let broken = op.file(
        "broken.toml",
        &format!(
            "{}\n[replies]\nwords_file = \"no-such-file.toml\"\n",
            std::fs::read_to_string(&op.config).unwrap()
        ),
    );
    let run = |command: &str| {
        Command::new(env!("CARGO_BIN_EXE_reengage"))
            .args(["--config", &broken, command])
            .current_dir(op.path())
            .output()
            .unwrap()
    };
    let out = run("migrate");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run("detect");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("replies.words_file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn templates_check_covers_a_steps_variants() {
    let op = Operator::migrated("");
    std::fs::create_dir_all(op.path().join("templates/en")).unwrap();
    op.file(
        "templates/en/checkin-1~short.sms.hbs",
        "Hi {{client.nickname}}. Reply STOP to opt out.",
    );
    let broken = op.run(&["templates", "check"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        stdout(&broken).contains("en/checkin-1~short.sms"),
        "{}",
        stdout(&broken)
    );
    op.file(
        "templates/en/checkin-1~short.sms.hbs",
        "Hi {{client.name}}, thinking of you. Reply STOP to opt out.",
    );
    let ok = op.run(&["templates", "check"]);
    assert!(ok.status.success(), "{}", stdout(&ok));
    assert!(
        stdout(&ok).contains("en/checkin-1~short.sms"),
        "{}",
        stdout(&ok)
    );
}

#[test]
fn tokens_are_listed_without_their_secret_and_a_revoked_one_is_refused() {
    let op = Operator::migrated("");
    op.add_coach("rosa@example.org", "Rosa Diaz");
    let made = op.run(&[
        "tokens",
        "create",
        "--coach",
        "rosa@example.org",
        "--expires-in-days",
        "30",
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    let token = stdout(&made).trim().to_owned();
    assert!(token.starts_with("rg_"));
    assert_eq!(op.api_status(&token), 200, "the new token works");
    let listed = op.run(&["tokens", "list"]);
    let text = stdout(&listed);
    assert!(text.contains("rosa@example.org"), "{text}");
    assert!(!text.contains(&token), "never the token itself");
    let id = text
        .lines()
        .nth(1)
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        text.lines().nth(1).unwrap().split('\t').nth(4).unwrap() != "-",
        "it expires: {text}"
    );
    let revoked = op.run(&["tokens", "revoke", &id]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert_eq!(op.api_status(&token), 401, "refused from the next request");
    let again = op.run(&["tokens", "revoke", &id]);
    assert_eq!(again.status.code(), Some(1));
    let listed = stdout(&op.run(&["tokens", "list", "--coach", "rosa@example.org"]));
    assert!(
        listed.lines().nth(1).unwrap().split('\t').nth(5).unwrap() != "-",
        "{listed}"
    );
}

#[test]
fn config_check_names_an_unknown_key_and_where_it_was_set() {
    let op = Operator::new("[http]\nbindd = \"127.0.0.1:9\"\n");
    let out = op.run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("`http.bindd`") && err.contains(&op.config.display().to_string()),
        "{err}"
    );

    let op = Operator::new("");
    let out = op.run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("the configuration is valid"));
    let out = op
        .command(&["config", "check"])
        .env("REENGAGE__SENDING__MAX_PER_CLIENT_PER_DAYS", "3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("`sending.max_per_client_per_days`")
            && err.contains("REENGAGE__SENDING__MAX_PER_CLIENT_PER_DAYS"),
        "{err}"
    );
    // A bad value in a template folder is found too, without a database.
    std::fs::create_dir_all(op.path().join("templates/en")).unwrap();
    std::fs::write(
        op.path().join("templates/en/checkin-1.sms.hbs"),
        "Hi {{first_name",
    )
    .unwrap();
    let out = op.run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(!op.path().join("db.sqlite").exists(), "no database is made");
}

#[test]
fn config_show_says_which_layer_set_each_value_and_hides_secrets() {
    let op = Operator::new("[sending]\nbatch_size = 77\n");
    let out = op
        .command(&["config", "show"])
        .env("REENGAGE__SMS__TWILIO__AUTH_TOKEN", "twilio-secret-4711")
        .env("REENGAGE__SECURITY__SECRET_KEY", "k".repeat(40))
        .env("REENGAGE__EMAIL__SMTP__PASSWORD", "smtp-secret-4711")
        .env(
            "REENGAGE__EMAIL__INBOUND__IMAP__PASSWORD",
            "imap-secret-4711",
        )
        .env("REENGAGE__SMS__TWILIO__API_KEY_SECRET", "key-secret-4711")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for secret in [
        "twilio-secret-4711",
        "smtp-secret-4711",
        "imap-secret-4711",
        "key-secret-4711",
        &"k".repeat(40),
    ] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("{key} missing: {text}"))
            .to_owned()
    };
    assert!(line("sms.twilio.auth_token").contains("= \"[redacted]\" "));
    assert!(
        line("sms.twilio.auth_token")
            .ends_with("# the environment, REENGAGE__SMS__TWILIO__AUTH_TOKEN")
    );
    assert!(line("sending.batch_size").starts_with("sending.batch_size = 77 "));
    assert!(line("sending.batch_size").contains(&op.config.display().to_string()));
    assert!(line("http.bind").ends_with("# the built-in defaults"));
    let out = op
        .command(&["config", "show"])
        .env(
            "REENGAGE__DATABASE__URL",
            "postgres://app:db-secret-4711@db.internal/reengage",
        )
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(!text.contains("db-secret-4711"), "{text}");
    assert!(
        text.contains("postgres://app:REDACTED@db.internal/reengage"),
        "{text}"
    );
}

#[test]
fn completions_and_the_manual_page_cover_the_commands() {
    let op = Operator::new("");
    let bash = op.run(&["completions", "bash"]);
    assert!(bash.status.success());
    assert!(stdout(&bash).contains("tokens") && stdout(&bash).contains("complete -F"));
    let man = op.run(&["man"]);
    assert!(man.status.success());
    let page = stdout(&man);
    assert!(
        page.starts_with(".ie") || page.contains(".TH reengage"),
        "{page}"
    );
    assert!(page.contains("serve"));
}
