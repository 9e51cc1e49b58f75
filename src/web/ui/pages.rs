//! The pages, as maud templates: everything interpolated is HTML-escaped.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, html};

use crate::domain::Channel;
use crate::domain::client::Client;
use crate::domain::compose::lint::Severity;
use crate::domain::compose::segments;
use crate::domain::words::Class;
use crate::store::clients::ClientListRow;
use crate::store::coaches::CoachRow;
use crate::store::conversation;
use crate::store::episodes::OutreachTask;
use crate::store::events::EventRow;
use crate::store::from_ts;
use crate::store::inbound::ReplyView;
use crate::store::messages::MessageView;
use crate::store::send_log::SendLogEntry;

/// The stylesheet, served at `/style.css` (so that the pages' CSP needs no
/// `'unsafe-inline'`).
pub const STYLE: &str = include_str!("style.css");

/// The frame of every page: the app's name, the coach's links, logout.
pub fn layout(title: &str, signed_in: Option<(&CoachRow, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · reengage" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header {
                    a.brand href="/" { "reengage" }
                    @if let Some((coach, csrf)) = signed_in {
                        nav aria-label="Main" {
                            a href="/" { "Queue" }
                            a href="/clients" { "Clients" }
                            a href="/replies" { "Replies" }
                            a href="/sends" { "Send log" }
                            a href="/reports" { "Outcomes" }
                            @if coach.is_admin() { a href="/admin" { "Admin" } }
                        }
                        a.meta href="/account" { (coach.name) }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button.quiet type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn page(status: StatusCode, markup: Markup) -> Response {
    (status, markup).into_response()
}

/// A short page for a refusal, in the same frame.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    page(
        status,
        layout(
            title,
            None,
            html! { h1 { (title) } p { (text) } p { a href="/" { "Back to the queue" } } },
        ),
    )
}

/// A form whose CSRF token is missing or forged: nothing was changed.
pub fn forbidden() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "Nothing was changed. Reload the page and try again.",
    )
}

pub fn internal_error(e: anyhow::Error) -> Response {
    tracing::error!(error = format!("{e:#}"), "page failed");
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "It has been logged. Please try again in a moment.",
    )
}

pub fn login(csrf: &str, problem: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        html! {
            h1 { "Log in" }
            @if let Some(problem) = problem {
                p.error role="alert" { (problem) }
            }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                label for="email" { "Email" }
                input #email type="email" name="email" autocomplete="username" required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                p { button type="submit" { "Log in" } }
            }
        },
    )
}

fn days_quiet(m: &MessageView, now: DateTime<Utc>) -> i64 {
    (now - m.quiet_since).num_days().max(0)
}

/// A time as the coach reads it, in their timezone.
/// The characters a path segment may carry as they are.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The client's page: the agency's external id, percent-encoded, so that an id
/// with "/", "?" or a space still names one client.
pub fn client_path(external_id: &str) -> String {
    format!(
        "/clients/{}",
        percent_encoding::utf8_percent_encode(external_id, PATH_SEGMENT)
    )
}

fn coach_time(coach: &CoachRow, at: DateTime<Utc>) -> String {
    at.with_timezone(&coach.tz(Tz::UTC))
        .format("%a %d %b %H:%M %Z")
        .to_string()
}

fn local(at: DateTime<Utc>, tz: &str) -> String {
    match tz.parse::<Tz>() {
        Ok(tz) => at
            .with_timezone(&tz)
            .format("%a %d %b %H:%M %Z")
            .to_string(),
        Err(_) => at.format("%a %d %b %H:%M UTC").to_string(),
    }
}

fn sms_counter(m: &MessageView) -> Markup {
    html! {
        @if m.channel == crate::domain::Channel::Sms {
            @let count = segments::count(&m.body);
            span.meta { (count.units) " characters, " (count.segments) " segment" @if count.segments != 1 { "s" } }
        }
    }
}

/// The tone and privacy lint's findings, errors first.
fn findings(m: &MessageView) -> Markup {
    findings_list(&m.lint)
}

fn findings_list(found: &[crate::domain::compose::lint::Finding]) -> Markup {
    html! {
        @if !found.is_empty() {
            ul.findings aria-label="Guardrail findings" {
                @for f in found {
                    li class=(if f.severity == Severity::Error { "error" } else { "warning" }) {
                        strong { @if f.severity == Severity::Error { "Error" } @else { "Warning" } } " (" (f.rule) "): " (f.message)
                    }
                }
            }
        }
    }
}

/// The draft's actions: approve, reject with a reason, snooze until a date.
/// A draft with error findings is approved only with "Approve anyway" ticked.
fn actions(m: &MessageView, csrf: &str) -> Markup {
    let needs_confirmation = m.lint.iter().any(|f| f.severity == Severity::Error);
    html! {
        form.inline method="post" action={ "/drafts/" (m.id) "/approve" } {
            input type="hidden" name="csrf" value=(csrf);
            @if needs_confirmation {
                input id={ "confirm-" (m.id) } type="checkbox" name="confirm" value="yes";
                label.meta for={ "confirm-" (m.id) } { "Approve anyway" }
            }
            button type="submit" { "Approve" }
        }
        form.inline method="post" action={ "/drafts/" (m.id) "/reject" } {
            input type="hidden" name="csrf" value=(csrf);
            label.meta for={ "reason-" (m.id) } { "Reason" }
            input id={ "reason-" (m.id) } type="text" name="reason";
            button.quiet type="submit" { "Reject" }
        }
        form.inline method="post" action={ "/drafts/" (m.id) "/snooze" } {
            input type="hidden" name="csrf" value=(csrf);
            label.meta for={ "until-" (m.id) } { "Snooze until" }
            input id={ "until-" (m.id) } type="date" name="until" required;
            button.quiet type="submit" { "Snooze" }
        }
    }
}

pub fn queue(
    coach: &CoachRow,
    csrf: &str,
    drafts: &[MessageView],
    next_after: Option<i64>,
    replies: &[ReplyView],
    tasks: &[OutreachTask],
    now: DateTime<Utc>,
) -> Markup {
    layout(
        "Queue",
        Some((coach, csrf)),
        html! {
            @if !replies.is_empty() {
                section aria-labelledby="waiting" {
                    h1 #waiting { "Replies waiting for you" }
                    @for r in replies {
                        (reply_card(coach, csrf, r, now, "/"))
                    }
                    p { a href="/replies" { "All replies" } }
                }
            }
            h1 { "Drafts waiting for you" }
            @for t in tasks {
                article.card aria-label={ "Reach out to " (t.client_name) } {
                    h2.section.flush {
                        "Reach out personally: " a href=(client_path(&t.external_id)) { (t.client_name) }
                    }
                    p.meta {
                        "Quiet " ((now - from_ts(t.quiet_since)).num_days()) " days; the check-ins have run their course. A call or a word from you is next."
                    }
                    @for (action, label) in [("reached", "I reached them"), ("hold", "Put on hold"), ("dismiss_outreach", "Dismiss")] {
                        form.inline method="post" action={ (client_path(&t.external_id)) "/action" } {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="action" value=(action);
                            button.quiet type="submit" { (label) }
                        }
                    }
                }
            }
            @if drafts.is_empty() {
                p { "Nothing is waiting. Thank you." }
            } @else {
                form #bulk method="post" action="/drafts/approve" {
                    input type="hidden" name="csrf" value=(csrf);
                    p { button type="submit" { "Approve selected" } }
                }
                @for m in drafts {
                    article.card aria-labelledby={ "draft-" (m.id) } {
                        h2.section.flush #{ "draft-" (m.id) } {
                            input type="checkbox" form="bulk" name="ids" value=(m.id) aria-label={ "Select the draft for " (m.client_name) };
                            " "
                            a href={ "/drafts/" (m.id) } { (m.client_name) }
                        }
                        p.meta {
                            "Quiet " (days_quiet(m, now)) " days · " (what(m)) " · " (m.channel)
                            " · drafted " (coach_time(coach, m.created_at))
                            " · their time now " (local(now, &m.client_timezone))
                        }
                        @if let Some(subject) = &m.subject { p { strong { (subject) } } }
                        p.text { (m.body) }
                        (sms_counter(m))
                        (findings(m))
                        (actions(m, csrf))
                    }
                }
                @if let Some(after) = next_after {
                    p { a href={ "/?after=" (after) } { "More drafts" } }
                }
            }
        },
    )
}

/// What happened with a client lately: events and earlier messages, newest first.
pub fn timeline(events: &[EventRow], messages: &[MessageView]) -> Markup {
    html! {
        h2.section { "Recent history" }
        @if events.is_empty() && messages.is_empty() {
            p.meta { "Nothing recorded yet." }
        }
        ul {
            @for e in events {
                li {
                    (from_ts(e.occurred_at).format("%Y-%m-%d")) ": " (e.kind.as_ref().replace('_', " "))
                    @if let Some(note) = &e.note { " · " (note) }
                    span.meta { " (" (e.source) ")" }
                }
            }
            @for m in messages {
                li {
                    (m.created_at.format("%Y-%m-%d")) ": " (what(m)) " " (m.channel) " message, " (m.status)
                    " · " a href={ "/drafts/" (m.id) } { "open" }
                }
            }
        }
    }
}

pub fn draft(
    coach: &CoachRow,
    csrf: &str,
    m: &MessageView,
    history: Markup,
    now: DateTime<Utc>,
) -> Markup {
    layout(
        "Draft",
        Some((coach, csrf)),
        html! {
            h1 { "Check-in for " (m.client_name) }
            p.meta {
                "Quiet " (days_quiet(m, now)) " days · " (what(m)) " · " (m.channel) " to " (m.to)
                " · status " (m.status)
            }
            p { a href=(client_path(&m.client_external_id)) { "About this client" } }
            div.card {
                @if let Some(subject) = &m.subject { p { strong { (subject) } } }
                p.text { (m.body) }
                (sms_counter(m))
                (findings(m))
            }
            @if m.edited {
                div.card {
                    h2.minor { "Before your edit" }
                    @if let Some(subject) = &m.original_subject { p { strong { (subject) } } }
                    p.text { (m.original_body.as_deref().unwrap_or_default()) }
                }
            }
            @if m.status == crate::domain::MessageStatus::Pending {
                form method="post" action={ "/drafts/" (m.id) "/edit" } {
                    input type="hidden" name="csrf" value=(csrf);
                    @if m.channel == crate::domain::Channel::Email {
                        label for="subject" { "Subject" }
                        input #subject type="text" name="subject" value=(m.subject.as_deref().unwrap_or_default());
                    }
                    label for="body" { "Message" }
                    textarea #body name="body" { (m.body) }
                    p { button type="submit" { "Save the edit" } }
                }
                (actions(m, csrf))
            }
            (history)
        },
    )
}

fn yes(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

pub fn clients(
    coach: &CoachRow,
    csrf: &str,
    rows: &[ClientListRow],
    query: &str,
    status: &str,
    next_after: Option<i64>,
) -> Markup {
    layout(
        "Clients",
        Some((coach, csrf)),
        html! {
            h1 { "Clients" }
            form method="get" action="/clients" {
                label for="q" { "Search by name or id" }
                input #q type="text" name="q" value=(query);
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" { "any" }
                    @for s in ["active", "paused", "hold", "discharged"] {
                        option value=(s) selected[status == s] { (s) }
                    }
                }
                p { button.quiet type="submit" { "Search" } }
            }
            table {
                thead { tr { th { "Client" } th { "Status" } th { "Last engaged" } th { "Quiet spell" } th { "Consent" } } }
                tbody {
                    @for r in rows {
                        tr {
                            td { a href=(client_path(&r.client.external_id)) { (r.client.greeting_name()) } br; span.meta { (r.client.external_id) } }
                            td { (r.client.status) }
                            td { (r.client.quiet_since().format("%Y-%m-%d")) }
                            td { @match r.episode_step { Some(step) => { "step " (step) }, None => { "none" } } }
                            td {
                                "email " (yes(r.client.consent_email)) @if r.client.opted_out_email_at.is_some() { " (opted out)" }
                                br;
                                "sms " (yes(r.client.consent_sms)) @if r.client.opted_out_sms_at.is_some() { " (opted out)" }
                            }
                        }
                    }
                }
            }
            @if let Some(after) = next_after {
                p { a href={ "/clients?q=" (query) "&status=" (status) "&after=" (after) } { "More clients" } }
            }
        },
    )
}

/// What a coach is writing to a client, kept when it comes back with a problem.
#[derive(Debug, Default)]
pub struct ReplyBox<'a> {
    pub channel: Option<Channel>,
    pub subject: &'a str,
    pub body: &'a str,
    pub problem: Option<String>,
    pub findings: &'a [crate::domain::compose::lint::Finding],
    /// The lint found errors: "Send anyway" must be ticked.
    pub needs_confirmation: bool,
}

/// The conversation, oldest first: what we sent (with its state and
/// delivery) and what the client wrote (with what it was read as).
fn thread(coach: &CoachRow, items: &[conversation::Item]) -> Markup {
    use crate::store::conversation::Direction;
    html! {
        section #thread aria-labelledby="conversation" {
            h2.section #conversation { "Conversation" }
            @if items.is_empty() {
                p.meta { "Nothing sent or received yet." }
            }
            ol.thread {
                @for item in items {
                    @let incoming = item.direction == Direction::In;
                    li class=(if incoming { "in" } else { "out" }) {
                        p.meta {
                            (coach_time(coach, item.at)) " · " (item.channel) " · "
                            @if incoming { "from " (item.author) } @else { "by " (item.author) }
                            " · " (item.status.name().replace('_', " "))
                            @if let Some(delivery) = &item.delivery_status { " · " (delivery) }
                            @if let Some(class) = item.classification.as_deref().filter(|c| *c != "reply") {
                                " · " strong { (class.replace('_', " ")) }
                            }
                            @if let Some(due) = item.due_at {
                                " · goes " (coach_time(coach, due))
                            }
                        }
                        @if let Some(subject) = &item.subject { p { strong { (subject) } } }
                        p.text { (item.body) }
                    }
                }
            }
        }
    }
}

/// The box to write back in: it goes from the agency, through the same
/// checks as every message.
fn reply_box(c: &Client, csrf: &str, reply: &ReplyBox<'_>, window_minutes: u32) -> Markup {
    let channel = reply.channel.unwrap_or(c.preferred_channel);
    html! {
        form #reply method="post" action={ (client_path(&c.external_id)) "/message" } {
            h2.section { "Write to " (c.greeting_name()) }
            input type="hidden" name="csrf" value=(csrf);
            @if let Some(problem) = &reply.problem {
                p.error role="alert" { (problem) }
            }
            (findings_list(reply.findings))
            label for="channel" { "Send by" }
            select #channel name="channel" {
                option value="sms" selected[channel == Channel::Sms] { "SMS" }
                option value="email" selected[channel == Channel::Email] { "Email" }
            }
            label for="reply-subject" { "Subject (email only; left empty, it answers theirs)" }
            input #reply-subject type="text" name="subject" value=(reply.subject);
            label for="reply-body" { "Your message" }
            textarea #reply-body name="body" required { (reply.body) }
            @if reply.needs_confirmation {
                p {
                    input #confirm-send type="checkbox" name="confirm" value="yes";
                    label.meta for="confirm-send" { "Send anyway" }
                }
            }
            p.meta {
                "It goes from the agency's number or address, never your own. While the client "
                "is writing (the last " (window_minutes) " minutes) it goes at once; otherwise it "
                "waits for their quiet hours to end."
            }
            p { button type="submit" { "Send" } }
        }
    }
}

/// What the client page shows.
pub struct ClientPage<'a> {
    pub client: &'a Client,
    pub coach_email: &'a str,
    pub thread: &'a [conversation::Item],
    pub reply: ReplyBox<'a>,
    /// `replies.conversation_window_minutes`, to say when an answer goes.
    pub window_minutes: u32,
    pub history: Markup,
}

pub fn client(coach: &CoachRow, csrf: &str, page: ClientPage<'_>) -> Markup {
    let ClientPage {
        client: c,
        coach_email,
        thread: items,
        reply,
        window_minutes,
        history,
    } = page;
    let action = |value: &str, label: &str| {
        html! {
            form.inline method="post" action={ (client_path(&c.external_id)) "/action" } {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value=(value);
                button.quiet type="submit" { (label) }
            }
        }
    };
    layout(
        "Client",
        Some((coach, csrf)),
        html! {
            h1 { (c.greeting_name()) }
            p.meta {
                (c.external_id) " · " (c.status)
                @if let Some(reason) = c.status_reason { " (" (reason) ")" }
                " · coach " (coach_email) " · " (c.timezone)
                @if c.discreet { " · discreet" }
            }
            @if c.status_reason == Some(crate::domain::StatusReason::ReportedDeceased) {
                div.card.error role="alert" {
                    p {
                        strong { "A reply said this client has died." }
                        " Nothing goes to them on any channel until you confirm it or undo it. "
                        "Read the reply below before you choose."
                    }
                    (action("confirm_deceased", "Confirm: they have died"))
                    (action("undo_deceased", "Undo: they have not died; resume outreach"))
                }
            }
            @if c.status_reason == Some(crate::domain::StatusReason::Deceased) {
                p.meta role="status" { "This client has died. Nothing goes to them." }
            }
            div.card {
                p { "Email: " (c.email.as_deref().unwrap_or("none")) " · consent " (yes(c.consent_email))
                    @if c.opted_out_email_at.is_some() { " · opted out" } }
                @if let Some((problem, at)) = c.email_problem {
                    p.error role="status" {
                        strong { @if problem == crate::domain::EmailProblem::Bounced { "Email bounced." } @else { "Wrong person." } }
                        " Since " (coach_time(coach, from_ts(at))) " no email goes to this address. Give a new one to clear it."
                    }
                }
                p { "Phone: " (c.phone.as_deref().unwrap_or("none")) " · consent " (yes(c.consent_sms))
                    @if c.opted_out_sms_at.is_some() { " · opted out" } }
                @if let Some(at) = c.phone_wrong_at {
                    p.error role="status" {
                        strong { "Wrong number." }
                        " A reply on " (coach_time(coach, from_ts(at))) " said this phone is not theirs. "
                        "No SMS goes to it until you confirm it or the number changes."
                    }
                    (action("confirm_phone", "The number is theirs: confirm it"))
                }
                p { "Quiet since " (c.quiet_since().format("%Y-%m-%d")) }
            }
            div {
                (action("reached", "I reached them personally"))
                @if c.status_reason.is_some() {
                } @else if c.status == crate::domain::ClientStatus::Active {
                    (action("pause", "Pause"))
                    (action("hold", "Put on hold"))
                } @else {
                    (action("resume", "Resume"))
                }
                @if c.opted_out_sms_at.is_some() {
                    (action("opt_in_sms", "Undo the SMS opt-out"))
                } @else {
                    (action("opt_out_sms", "Record an SMS opt-out"))
                }
                @if c.opted_out_email_at.is_some() {
                    (action("opt_in_email", "Undo the email opt-out"))
                } @else {
                    (action("opt_out_email", "Record an email opt-out"))
                }
            }
            @if coach.is_admin() {
                form.inline method="post" action={ (client_path(&c.external_id)) "/action" } {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="action" value="reassign";
                    label.meta for="to" { "Reassign to (coach email)" }
                    input #to type="text" name="to";
                    button.quiet type="submit" { "Reassign" }
                }
            }
            (thread(coach, items))
            (reply_box(c, csrf, &reply, window_minutes))
            (history)
        },
    )
}

pub fn sends(
    coach: &CoachRow,
    csrf: &str,
    entries: &[SendLogEntry],
    in_doubt: &[MessageView],
    filter: &crate::store::send_log::Filter,
    since: &str,
) -> Markup {
    let selected = |current: &Option<String>, value: &str| current.as_deref() == Some(value);
    layout(
        "Send log",
        Some((coach, csrf)),
        html! {
            h1 { "Send log" }
            @if !in_doubt.is_empty() {
                div.card {
                    h2.section.flush-top { "Not sure these went out" }
                    p.meta { "The provider may or may not have taken them. Send again (it may then arrive twice), or mark it sent." }
                    @for m in in_doubt {
                        p {
                            a href={ "/drafts/" (m.id) } { (m.client_name) } " · " (m.channel) " to " (m.to)
                            @if let Some(error) = &m.last_error { br; span.meta { (error) } }
                        }
                        form.inline method="post" action={ "/messages/" (m.id) "/resend" } {
                            input type="hidden" name="csrf" value=(csrf);
                            button.quiet type="submit" { "Send again" }
                        }
                        form.inline method="post" action={ "/messages/" (m.id) "/resolve" } {
                            input type="hidden" name="csrf" value=(csrf);
                            button.quiet type="submit" { "Mark sent" }
                        }
                    }
                }
            }
            form method="get" action="/sends" {
                label for="outcome" { "Outcome" }
                select #outcome name="outcome" {
                    option value="" { "any" }
                    @for o in ["sent", "retry", "failed", "in_doubt"] {
                        option value=(o) selected[selected(&filter.outcome, o)] { (o) }
                    }
                }
                label for="channel" { "Channel" }
                select #channel name="channel" {
                    option value="" { "any" }
                    @for c in ["email", "sms"] {
                        option value=(c) selected[selected(&filter.channel, c)] { (c) }
                    }
                }
                label for="since" { "Since" }
                input #since type="date" name="since" value=(since);
                p { button.quiet type="submit" { "Filter" } }
            }
            @if entries.is_empty() {
                p { "Nothing to show." }
            } @else {
                table {
                    thead { tr { th { "When" } th { "Client" } th { "Channel" } th { "To" } th { "What happened" } } }
                    tbody {
                        @for e in entries {
                            tr {
                                td { (coach_time(coach, e.started_at)) }
                                td { (e.client_external_id) }
                                td { (e.channel) }
                                td { (e.recipient) }
                                td {
                                    (e.event) ": "
                                    (e.outcome.as_ref().map(AsRef::as_ref).or(e.delivery_status.as_deref()).unwrap_or("started"))
                                    @if let Some(code) = &e.code { " (" (code) ")" }
                                    @if let Some(error) = &e.error { br; span.meta { (error) } }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// How long ago, in words a coach reads at a glance.
fn age(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let minutes = (now - at).num_minutes().max(0);
    match minutes {
        0 => "just now".to_owned(),
        1..=59 => format!("{minutes} min ago"),
        60..=1439 => format!("{} h ago", minutes / 60),
        _ => format!("{} days ago", minutes / 1440),
    }
}

/// One reply, with why it was flagged and what the coach can do.
fn reply_card(
    coach: &CoachRow,
    csrf: &str,
    r: &ReplyView,
    now: DateTime<Utc>,
    back: &str,
) -> Markup {
    let open_crisis = r.classification == Class::Crisis && r.acknowledged_at.is_none();
    html! {
        article.card aria-label={ "Reply " (r.id) } {
            @if open_crisis {
                p.error role="alert" { strong { "This reply needs you now." } " Nobody has said they are on it yet." }
            }
            p.meta {
                (age(now, r.received_at)) " · " (coach_time(coach, r.received_at)) " · " (r.channel) " · " (r.classes.iter().map(|c| c.as_ref().replace('_', " ")).collect::<Vec<_>>().join(", "))
                @if r.needs_reply { " · waiting for a reply" }
                @if let Some(at) = r.acknowledged_at {
                    " · on it: " (r.acknowledged_by.as_deref().unwrap_or("someone")) " at " (coach_time(coach, at))
                }
                @if r.handled_at.is_some() && !r.needs_reply {
                    " · handled"
                    @if let Some(by) = &r.handled_by { " by " (by) }
                }
            }
            p {
                @match (&r.client_external_id, &r.client_name) {
                    (Some(id), Some(name)) => { a href=(client_path(id)) { (name) } },
                    _ => {
                        "Unmatched sender " (r.from)
                        @if let Some(why) = &r.unmatched_reason { span.meta { " (" (why) ")" } }
                    },
                }
            }
            @if let Some(kind) = &r.automatic {
                p.meta { "Automatic mail: " (kind.replace('_', " ")) }
            }
            @if let Some(subject) = &r.subject { p { strong { (subject) } } }
            p.text { (r.body) }
            @if !r.matched.is_empty() {
                p.meta { "Why: " (why(&r.matched)) }
                // The rules' own text is for whoever keeps the word lists.
                @if coach.is_admin() {
                    details.meta {
                        summary { "The rules that matched" }
                        ul {
                            @for m in &r.matched {
                                li { (m.class.as_ref().replace('_', " ")) ": " code.wrap-anywhere { (m.rule) } }
                            }
                        }
                    }
                }
            }
            @if open_crisis {
                form.inline method="post" action={ "/replies/" (r.id) "/acknowledge" } {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="back" value=(back);
                    button type="submit" { "I'm on it" }
                }
            }
            @if r.needs_reply {
                form.inline method="post" action={ "/replies/" (r.id) "/handled" } {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="back" value=(back);
                    button.quiet type="submit" { "Mark handled" }
                }
            }
        }
    }
}

/// A coach's own page (or, for an admin, any coach's): the away period and
/// the backup who covers.
pub fn account(
    coach: &CoachRow,
    csrf: &str,
    target: &CoachRow,
    everyone: &[CoachRow],
    now: DateTime<Utc>,
) -> Markup {
    let backup = target
        .backup_coach_id
        .and_then(|id| everyone.iter().find(|c| c.id == id));
    let away = target.is_away(now);
    layout(
        "Away and cover",
        Some((coach, csrf)),
        html! {
            h1 { (target.name) }
            p.meta { (target.email) " · " (target.role) }
            h2.section { "Away and cover" }
            @if away {
                p role="status" {
                    strong { "Away" } " until "
                    (coach_time(coach, from_ts(target.away_until.unwrap_or_default())))
                    @match backup {
                        Some(b) => { ". " (b.name) " covers: drafts, replies, notices and crisis alerts go to them." },
                        None => { ". No backup: notices and crisis alerts go to the admins." },
                    }
                }
                form method="post" action="/account/back" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="email" value=(target.email);
                    button type="submit" { "I'm back" }
                }
            } @else {
                p { "Not away." @if let Some(b) = backup { " Backup for crisis escalations: " (b.name) "." } }
            }
            form.card method="post" action="/account/away" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="email" value=(target.email);
                p {
                    label for="until" { "Away through (the last day away)" } br;
                    input #until type="date" name="until" required;
                }
                p {
                    label for="backup" { "Backup coach" } br;
                    select #backup name="backup" {
                        option value="" { "Nobody: the admins" }
                        @for c in everyone.iter().filter(|c| c.id != target.id && c.is_active()) {
                            option value=(c.email) selected[Some(c.id) == target.backup_coach_id] { (c.name) " (" (c.email) ")" }
                        }
                    }
                }
                button type="submit" { "Set away" }
            }
        },
    )
}

pub fn replies(coach: &CoachRow, csrf: &str, replies: &[ReplyView], now: DateTime<Utc>) -> Markup {
    layout(
        "Replies",
        Some((coach, csrf)),
        html! {
            h1 { "Replies" }
            @if replies.is_empty() {
                p { "No replies yet." }
            }
            @for r in replies {
                (reply_card(coach, csrf, r, now, "/replies"))
            }
        },
    )
}

pub fn admin(
    coach: &CoachRow,
    csrf: &str,
    all: &[CoachRow],
    tokens: &[crate::store::tokens::TokenRow],
    expired: &[MessageView],
    settings: &crate::app::config::Settings,
) -> Markup {
    layout(
        "Admin",
        Some((coach, csrf)),
        html! {
            h1 { "Admin" }
            (coaches_table(csrf, all))
            (add_coach_form(csrf))
            (tokens_table(coach, csrf, tokens))
            h2.section { "Settings (read-only; change them in the config file)" }
            ul {
                @for step in &settings.detection.cadence {
                    li { "After " (step.after_days) " quiet days: " (step.template) }
                }
                li { "Drafts expire after " (settings.detection.draft_expiry_hours) " hours" }
                li { "Quiet hours: " (settings.sending.quiet_start.format("%H:%M")) " to " (settings.sending.quiet_end.format("%H:%M")) ", client's local time" }
                li { "At most " (settings.sending.max_per_client_per_day) " a day and " (settings.sending.max_per_client_per_week) " a week per client" }
            }
            p { a href="/admin/templates" { "Preview the templates" } }
            h2.section { "Drafts that expired before anyone acted" }
            @if expired.is_empty() {
                p.meta { "None." }
            }
            ul {
                @for m in expired {
                    li {
                        a href={ "/drafts/" (m.id) } { (m.client_name) } " · " (what(m)) " · "
                        (m.channel) " · coach " (m.coach_email) " · drafted " (coach_time(coach, m.created_at))
                    }
                }
            }
        },
    )
}

/// Every coach, with their access and a new password.
fn coaches_table(csrf: &str, all: &[CoachRow]) -> Markup {
    let form_for = |c: &CoachRow, action: &str, label: &str| {
        html! {
            form.inline method="post" action="/admin/coaches" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value=(action);
                input type="hidden" name="email" value=(c.email);
                button.quiet type="submit" { (label) }
            }
        }
    };
    html! {
        h2.section { "Coaches" }
        table {
            thead { tr { th { "Coach" } th { "Role" } th { "Access" } th { "" } } }
            tbody {
                @for c in all {
                    tr {
                        td {
                            a href={ "/account?email=" (url::form_urlencoded::byte_serialize(c.email.as_bytes()).collect::<String>()) } { (c.name) } br;
                            span.meta { (c.email) }
                        }
                        td { (c.role) }
                        td { @if c.is_active() { "active" } @else { "deactivated" } }
                        td {
                            @if c.is_active() { (form_for(c, "deactivate", "Deactivate")) }
                            @else { (form_for(c, "activate", "Activate")) }
                            form.inline method="post" action="/admin/coaches" {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="action" value="password";
                                input type="hidden" name="email" value=(c.email);
                                label.meta for={ "pw-" (c.id) } { "New password" }
                                input id={ "pw-" (c.id) } type="password" name="password" autocomplete="new-password";
                                button.quiet type="submit" { "Reset" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn add_coach_form(csrf: &str) -> Markup {
    html! {
        div.card {
            h2.minor.flush-top { "Add a coach" }
            form method="post" action="/admin/coaches" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value="add";
                label for="new-email" { "Email" }
                input #new-email type="email" name="email" required;
                label for="new-name" { "Name" }
                input #new-name type="text" name="name" required;
                label for="new-role" { "Role" }
                select #new-role name="role" { option value="coach" { "coach" } option value="admin" { "admin" } }
                label for="new-password" { "Password (at least 10 characters)" }
                input #new-password type="password" name="password" autocomplete="new-password";
                p { button type="submit" { "Add" } }
            }
        }
    }
}

/// The API tokens (never the tokens themselves), each revocable.
fn tokens_table(coach: &CoachRow, csrf: &str, tokens: &[crate::store::tokens::TokenRow]) -> Markup {
    let when = |at: Option<i64>| {
        crate::store::from_opt_ts(at).map_or_else(|| "never".to_owned(), |at| coach_time(coach, at))
    };
    html! {
        h2.section { "API tokens" }
        p.meta { "Made with " code { "reengage tokens create" } ". The token itself is shown once, when it is made, and never again." }
        @if tokens.is_empty() {
            p.meta { "None." }
        } @else {
            table {
                thead { tr { th { "Id" } th { "Coach" } th { "Made" } th { "Last used" } th { "Expires" } th { "" } } }
                tbody {
                    @for t in tokens {
                        tr {
                            td { (t.id) }
                            td { (t.coach) }
                            td { (when(Some(t.created_at))) }
                            td { (when(t.last_used_at)) }
                            td { @if t.expires_at.is_some() { (when(t.expires_at)) } @else { "no expiry" } }
                            td {
                                @if t.revoked_at.is_some() {
                                    "revoked " (when(t.revoked_at))
                                } @else {
                                    form.inline method="post" action={ "/admin/tokens/" (t.id) "/revoke" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button.quiet type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn template_preview(
    coach: &CoachRow,
    csrf: &str,
    previews: &[(
        String,
        bool,
        Result<crate::domain::compose::Rendered, String>,
    )],
) -> Markup {
    layout(
        "Templates",
        Some((coach, csrf)),
        html! {
            h1 { "Templates, for a sample client" }
            @for (name, discreet, rendered) in previews {
                div.card {
                    h2.minor.flush-top { (name) @if *discreet { " · discreet client" } }
                    @match rendered {
                        Ok(r) => {
                            @if let Some(subject) = &r.subject { p { strong { (subject) } } }
                            p.text { (r.body) }
                        },
                        Err(e) => { p.error { (e) } },
                    }
                }
            }
        },
    )
}

/// "step 2", or whose own message it is.
fn what(m: &MessageView) -> String {
    match (m.step, &m.author) {
        (Some(step), _) => format!("step {step}"),
        (None, Some(author)) => format!("written by {author}"),
        (None, None) => "a coach's message".to_owned(),
    }
}

/// A row's rate, and its interval if it has one.
type RateOf = fn(&crate::domain::outcomes::Row) -> (f64, Option<(f64, f64)>);

/// The outcomes page: the funnel, return and reply rates by the chosen
/// dimension with their intervals, and the monthly trend.
pub fn reports(
    coach: &CoachRow,
    csrf: &str,
    report: &crate::pipeline::reports::Report,
    monthly: &crate::pipeline::reports::Report,
    query: &str,
) -> Markup {
    layout(
        "Outcomes",
        Some((coach, csrf)),
        html! {
            h1 { "Outcomes" }
            p.meta {
                "Episodes reached in the period (counted in the month of their first send); outcomes within "
                (report.window_days) " days of the first send, credited to the message sent last before them. "
                @if coach.is_admin() { "Every coach's clients." } @else { "Your clients, and those you cover for." }
            }
            (report_form(report, query))
            @if report.undecided {
                p.error role="status" {
                    "The intervals overlap: these numbers cannot yet tell the "
                    (report.by) "s apart. Keep going before choosing one."
                }
            }
            (funnel_chart(report))
            (rate_charts(report, monthly))
            (workload(report))
        },
    )
}

/// The report's settings: compare by, the period, and the CSV of the same.
fn report_form(report: &crate::pipeline::reports::Report, query: &str) -> Markup {
    use crate::domain::outcomes::By;
    let options = [
        By::Step,
        By::Channel,
        By::Template,
        By::Variant,
        By::Edited,
        By::Language,
        By::Coach,
        By::Month,
    ];
    html! {
        form method="get" action="/reports" {
            label for="by" { "Compare by" }
            select #by name="by" {
                @for by in options {
                    option value=(by) selected[by == report.by] { (by) }
                }
            }
            label for="since" { "From (first send on or after)" }
            input #since type="date" name="since" value=(report.since.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default());
            label for="until" { "Until" }
            // The last day the report covers: `until` is the exclusive end.
            input #until type="date" name="until" value=((report.until - chrono::Duration::seconds(1)).format("%Y-%m-%d"));
            p { button type="submit" { "Show" } " " a href={ "/reports.csv?" (query) } download { "Download CSV" } }
        }
    }
}

/// From opened to returned, and why episodes fell out.
fn funnel_chart(report: &crate::pipeline::reports::Report) -> Markup {
    use super::charts::{self, Bar};
    let f = &report.funnel;
    let opened = f.opened.max(1) as f64;
    let funnel: Vec<Bar> = [
        ("opened", f.opened),
        ("drafted", f.drafted),
        ("approved", f.approved),
        ("sent", f.sent),
        ("delivered", f.delivered),
        ("replied", f.replied),
        ("returned", f.returned),
    ]
    .iter()
    .map(|(label, n)| Bar {
        label: (*label).to_owned(),
        value: *n as f64 / opened,
        interval: None,
        text: n.to_string(),
    })
    .collect();
    let d = &f.dropped;
    html! {
        (charts::bars(
            "funnel",
            "From opened to returned",
            &format!(
                "{} episodes opened; {} sent, {} replied, {} returned. Fell out: {} rejected, {} expired unseen, {} cancelled, {} failed, {} undelivered.",
                f.opened, f.sent, f.replied, f.returned, d.rejected, d.expired,
                d.cancelled.values().sum::<u64>(), d.failed, d.undelivered
            ),
            ["stage", "episodes"],
            &funnel,
        ))
        @if !d.cancelled.is_empty() {
            p.meta {
                "Cancelled, by reason: "
                (d.cancelled.iter().map(|(why, n)| format!("{} {n}", why.replace('_', " "))).collect::<Vec<_>>().join(", "))
            }
        }
    }
}

/// Came back and replied, by the report's dimension, and came back by month.
fn rate_charts(
    report: &crate::pipeline::reports::Report,
    monthly: &crate::pipeline::reports::Report,
) -> Markup {
    use super::charts::{self, Bar};
    let rate_bars = |rate: RateOf, rows: &[crate::domain::outcomes::Row]| {
        rows.iter()
            .map(|r| {
                let (value, interval) = rate(r);
                Bar {
                    label: r.key.clone(),
                    value,
                    interval,
                    text: format!("{} of {}", charts::percent(value, interval), r.episodes),
                }
            })
            .collect::<Vec<_>>()
    };
    let returns = rate_bars(
        |r| (r.return_rate, Some((r.return_rate_low, r.return_rate_high))),
        &report.rows,
    );
    let replies = rate_bars(|r| (r.reply_rate, None), &report.rows);
    let trend = rate_bars(
        |r| (r.return_rate, Some((r.return_rate_low, r.return_rate_high))),
        &monthly.rows,
    );
    let reached: u64 = report.rows.iter().map(|r| r.episodes).max().unwrap_or(0);
    html! {
        (charts::bars(
            "returns",
            &format!("Came back, by {}", report.by),
            &format!(
                "Share of reached episodes (at most {reached} in a row) whose client checked in or attended a session, with the 95% interval."
            ),
            [report.by.to_string().as_str(), "returned"],
            &returns,
        ))
        (charts::bars(
            "replies",
            &format!("Replied, by {}", report.by),
            "Share of reached episodes whose client wrote back (not a bare keyword, not an automatic reply).",
            [report.by.to_string().as_str(), "replied"],
            &replies,
        ))
        (charts::bars(
            "trend",
            "Came back, by month",
            "The return rate of the episodes first sent in each month, with the 95% interval.",
            ["month", "returned"],
            &trend,
        ))
    }
}

/// Each coach's queue, and how long replies and returns took.
fn workload(report: &crate::pipeline::reports::Report) -> Markup {
    html! {
        h2.section { "Coaches' queues" }
        table {
            thead { tr { th { "coach" } th { "drafts" } th { "decided" } th { "median time to decide" } th { "expired unseen" } } }
            tbody {
                @for w in &report.workload {
                    tr {
                        td { (w.coach) } td { (w.drafts) } td { (w.decided) }
                        td { (w.time_to_decision.map(|s| format!("{:.1} h", s.median_hours)).unwrap_or_else(|| "-".into())) }
                        td { (w.expired) }
                    }
                }
            }
        }
        @for (what, spread) in [("reply", &report.time_to_reply), ("return", &report.time_to_return)] {
            @if let Some(s) = spread {
                p.meta {
                    "Time to " (what) ": median " (format!("{:.1}", s.median_hours)) " hours (quartiles "
                    (format!("{:.1}", s.q1_hours)) "–" (format!("{:.1}", s.q3_hours)) ", " (s.count) " episodes)."
                }
            }
        }
    }
}

/// What a reply was read as and the client's words that said so, each class
/// and each phrase once: `crisis: “want to die”, “pills”; opt out: “stop”`.
fn why(matched: &[crate::domain::words::Match]) -> String {
    let mut classes: Vec<(crate::domain::words::Class, Vec<String>)> = Vec::new();
    for m in matched {
        let at = match classes.iter().position(|(c, _)| *c == m.class) {
            Some(at) => at,
            None => {
                classes.push((m.class, Vec::new()));
                classes.len() - 1
            }
        };
        let phrases = &mut classes[at].1;
        for phrase in m.text.split(", ").map(str::trim).filter(|p| !p.is_empty()) {
            if !phrases.iter().any(|p| p.eq_ignore_ascii_case(phrase)) {
                phrases.push(phrase.to_owned());
            }
        }
    }
    classes
        .iter()
        .map(|(class, phrases)| {
            let quoted: Vec<String> = phrases.iter().map(|p| format!("“{p}”")).collect();
            format!(
                "{}: {}",
                class.as_ref().replace('_', " "),
                quoted.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::why;
    use crate::domain::words::{Class, Match};

    #[test]
    fn why_names_each_class_and_phrase_once() {
        let m = |class, text: &str| Match {
            class,
            rule: "a rule".into(),
            text: text.into(),
        };
        let matched = [
            m(Class::Crisis, "want to die"),
            m(Class::Crisis, "Want to die"),
            m(Class::OptOut, "stop"),
            m(Class::Crisis, "want to die, pills"),
        ];
        assert_eq!(
            why(&matched),
            "crisis: “want to die”, “pills”; opt out: “stop”"
        );
    }
}
