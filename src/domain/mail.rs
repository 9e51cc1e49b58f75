//! Reading a client's email: what it answers, who wrote it, whether a machine
//! did (an out-of-office, a bounce), and the client's own new words with the
//! quoted history and signatures taken off. MIME is `mail-parser`'s; the rest
//! is what mail clients actually write (see `tests/data/email/`).

use std::sync::LazyLock;

use mail_parser::{HeaderValue, Message, MessageParser, MimeHeaders};
use regex::Regex;

/// An email as reengage reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// `<id>`, as our own Message-IDs are stored; `None` when it has none.
    pub message_id: Option<String>,
    /// Every Message-ID it says it answers (In-Reply-To, then References,
    /// then, in a bounce, the returned message's own), each as `<id>`.
    pub answers: Vec<String>,
    /// The sender's address, lower-cased.
    pub from: Option<String>,
    pub subject: Option<String>,
    /// The sender's new words: the text part (or the HTML as text), with the
    /// quoted history and signature removed.
    pub text: String,
    pub automatic: Option<Automatic>,
}

/// Mail no person wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Automatic {
    /// An out-of-office or other auto-responder.
    AutoReply,
    /// A delivery status notification.
    Bounce(Bounce),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// The address failed for good ([`address_status`]): it is not to be used.
    pub hard: bool,
    /// The enhanced status code (RFC 3463), e.g. `5.1.1`, when it gives one.
    pub status: Option<String>,
    /// The address that failed, lower-cased.
    pub recipient: Option<String>,
    /// What the server said, for the coach.
    pub diagnostic: Option<String>,
}

/// Reads a raw message. An error says why it cannot be read at all; a message
/// that is only partly readable is read as far as it goes.
pub fn read(raw: &[u8]) -> Result<Email, String> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err("the message is empty".to_owned());
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| "the message has no headers mail-parser can read".to_owned())?;
    if message.headers().is_empty() {
        return Err("the message has no headers".to_owned());
    }
    let message_id = message.message_id().map(bracketed);
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_lowercase);
    let subject = message.subject().map(str::to_owned);
    let mut answers = ids(message.in_reply_to());
    answers.extend(ids(message.references()));
    let automatic = match bounce(&message, from.as_deref(), subject.as_deref()) {
        Some((bounce, returned)) => {
            answers.extend(
                returned
                    .into_iter()
                    .filter(|id| Some(id) != message_id.as_ref()),
            );
            Some(Automatic::Bounce(bounce))
        }
        None => is_auto_reply(&message, subject.as_deref()).then_some(Automatic::AutoReply),
    };
    let mut seen = std::collections::HashSet::new();
    answers.retain(|id| seen.insert(id.clone()));
    let text = match &automatic {
        Some(Automatic::Bounce(_)) => String::new(),
        _ => body_text(&message),
    };
    Ok(Email {
        message_id,
        answers,
        from,
        subject,
        text,
        automatic,
    })
}

fn bracketed(id: &str) -> String {
    format!(
        "<{}>",
        id.trim().trim_start_matches('<').trim_end_matches('>')
    )
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![bracketed(id)],
        HeaderValue::TextList(list) => list.iter().map(|id| bracketed(id)).collect(),
        _ => Vec::new(),
    }
}

/// The new text: the first text part, else the HTML with its quoted blocks
/// cut before it is turned into text.
fn body_text(message: &Message<'_>) -> String {
    let plain = message
        .text_bodies()
        .find(|part| part.is_text() && !part.is_text_html())
        .and_then(|part| part.text_contents().map(str::to_owned));
    let text = match plain {
        Some(text) => text,
        None => match message.body_html(0) {
            Some(html) => mail_parser::decoders::html::html_to_text(&without_quoted_html(&html)),
            None => message
                .body_text(0)
                .map(|t| t.into_owned())
                .unwrap_or_default(),
        },
    };
    new_text(&text)
}

static HTML_QUOTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?is)<blockquote\b|<div[^>]*\b(class|id)="?(gmail_quote|gmail_attr|yahoo_quoted|appendonsend|divRplyFwdMsg|OLK_SRC_BODY_SECTION|mail-quote|protonmail_quote)\b|<hr[^>]*id="?stopSpelling"#,
    )
    .expect("the quote pattern compiles")
});

/// The HTML up to where the quoted history starts.
fn without_quoted_html(html: &str) -> String {
    match HTML_QUOTE.find(html) {
        Some(found) => html[..found.start()].to_owned(),
        None => html.to_owned(),
    }
}

/// A line that starts the quoted history, with everything after it.
static HISTORY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^\s*(
            -{2,}\s*(original\s+message|mensaje\s+original|message\s+d'origine|ursprüngliche\s+nachricht)\s*-{2,}
          | -{2,}\s*forwarded\s+message\s*-{2,}
          | _{10,}
          | (from|de|von):\s.+\s(sent|enviado|date|fecha|gesendet):\s.*
          | begin\s+forwarded\s+message:
        )\s*$",
    )
    .expect("the history pattern compiles")
});

/// "On … wrote:" and its translations, once joined across a wrap.
static ATTRIBUTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^\s*(
            (on|el|le|am|il|em)\s.{4,300}(wrote|escribió|escribio|a\s+écrit|schrieb|ha\s+scritto|escreveu)\s*:
          | .{4,200}\s<[^>\s]+@[^>\s]+>\s+(wrote|escribió|escribio)\s*:
        )\s*$",
    )
    .expect("the attribution pattern compiles")
});

/// A line that starts a signature or a device's footer (which may end in the
/// app's link, as `Get Outlook for Android<https://aka.ms/…>` does).
static SIGNATURE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^\s*(
            --\s?
          | sent\s+(from|with|via)\s+(my\s+)?\S.{0,40}
          | get\s+outlook\s+for\s+\S.{0,30}
          | (enviado|enviada)\s+desde\s+.{1,40}
          | obtener\s+outlook\s+para\s+.{1,30}
          | sent\s+from\s+(yahoo|mail|proton|outlook|gmail).{0,40}
        )\s*(<[^>\s]*>)?\s*$",
    )
    .expect("the signature pattern compiles")
});

/// A header block line of a quoted Outlook message (`From: …` on its own line,
/// followed by `Sent:`/`Date:` within the next lines).
static HEADER_FROM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\**(from|de|von)\**:\s*\S").expect("the header pattern compiles")
});
static HEADER_NEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\**(sent|date|enviado|fecha|gesendet|to|para|an|subject|asunto)\**:\s")
        .expect("the header pattern compiles")
});

/// The sender's own new words in a reply's text: quoted lines (`>`), the
/// history under an attribution ("On … wrote:") or a forwarded header block,
/// and a signature or device footer are removed. Text the sender wrote below
/// a `>`-quoted block (an inline or bottom-posted answer) is kept.
pub fn new_text(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let joined = lines
            .get(i + 1)
            .map(|next| format!("{} {}", line.trim_end(), next.trim()));
        let attribution = ATTRIBUTION.is_match(line);
        let wrapped = !attribution
            && line.trim_start().len() > 3
            && joined.as_deref().is_some_and(|j| ATTRIBUTION.is_match(j));
        if attribution || wrapped {
            let after = i + if wrapped { 2 } else { 1 };
            // A `>`-quoted block may be followed by the sender's answer; any
            // other history under an attribution is quoted without marks.
            let rest = &lines[after.min(lines.len())..];
            let quoted = rest
                .iter()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim_start().starts_with('>'));
            if !quoted {
                break;
            }
            i = after;
            continue;
        }
        if HISTORY.is_match(line) || outlook_header(&lines[i..]) || SIGNATURE.is_match(line) {
            break;
        }
        if !line.trim_start().starts_with('>') {
            kept.push(line);
        }
        i += 1;
    }
    let text = kept.join("\n");
    text.trim().to_owned()
}

/// `From: …` followed, within three lines, by another header of a quoted
/// message.
fn outlook_header(lines: &[&str]) -> bool {
    HEADER_FROM.is_match(lines[0])
        && lines
            .iter()
            .skip(1)
            .take(3)
            .any(|l| HEADER_NEXT.is_match(l))
}

static AUTO_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^\s*((re|aw|fw|fwd)\s*:\s*)*(
            auto(matic|matische)?[\s-]*(reply|response|antwort)
          | autoreply | auto-reply | autorespuesta
          | out\s+of\s+(the\s+)?office | ooo\b
          | respuesta\s+autom[aá]tica | fuera\s+de\s+(la\s+)?oficina
          | r[ée]ponse\s+automatique | absence | abwesenheit
          | away\s+from\s+(my|the)\s+(desk|office)
          | on\s+vacation | vacation\s+(reply|response)
        )",
    )
    .expect("the auto-reply pattern compiles")
});

/// An auto-responder's mail: by its headers (RFC 3834 `Auto-Submitted`,
/// `X-Autoreply`, `Precedence`), else by an out-of-office subject.
fn is_auto_reply(message: &Message<'_>, subject: Option<&str>) -> bool {
    let header = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if header("Auto-Submitted").is_some_and(|v| !v.is_empty() && v != "no") {
        return true;
    }
    if header("X-Autoreply").is_some() || header("X-Autorespond").is_some() {
        return true;
    }
    if header("Precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "auto_reply" | "junk")) {
        return true;
    }
    subject.is_some_and(|s| AUTO_SUBJECT.is_match(s))
}

static FULL_STATUS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[45]\.2\.2\b").expect("the status pattern compiles"));

/// Whether a server's reply says the mailbox is full (`x.2.2`): a soft
/// failure, whatever its first digit (RFC 3463).
pub fn mailbox_full(reply: &str) -> bool {
    FULL_STATUS.is_match(reply)
}

/// Whether an RFC 3463 status says the recipient's address is bad for good:
/// a permanent failure of the address or its mailbox (5.0.0 unspecified,
/// 5.1.x no such mailbox or domain, 5.2.1 disabled, 5.4.0/1/4 no such host).
/// Not: our own sender refused (5.1.0, 5.1.7, 5.1.8), the mailbox full
/// (x.2.2), or this one message refused (size, content, policy or spam:
/// 5.2.3, 5.3.x, 5.5.x, 5.6.x, 5.7.x). The one rule for bounces and for
/// refusals at sending.
pub fn address_status(status: &str) -> bool {
    let mut parts = status.split('.');
    let (Some("5"), Some(subject), Some(detail)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    match subject {
        "0" => detail == "0",
        "1" => !matches!(detail, "0" | "7" | "8"),
        "2" => detail == "1",
        "4" => matches!(detail, "0" | "1" | "4"),
        _ => false,
    }
}

/// Whether a server's refusal carries an [`address_status`].
pub fn address_rejected(reply: &str) -> bool {
    ANY_STATUS
        .captures_iter(reply)
        .any(|c| address_status(&c[1]))
}

static STATUS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^\s*status:\s*([245]\.\d{1,3}\.\d{1,3})")
        .expect("the status pattern compiles")
});
static ANY_STATUS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([45]\.\d{1,3}\.\d{1,3})\b").expect("the status pattern compiles")
});
static ACTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?im)^\s*action:\s*(\w+)").expect("the action pattern compiles"));
static RECIPIENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^\s*(final|original)-recipient:\s*(rfc822\s*;)?\s*<?([^\s<>;]+@[^\s<>;]+)>?")
        .expect("the recipient pattern compiles")
});
static DIAGNOSTIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^\s*diagnostic-code:\s*(.+)$").expect("the diagnostic pattern compiles")
});
static RETURNED_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^\s*message-id:\s*(<[^>\s]+>)").expect("the message-id pattern compiles")
});
static BOUNCE_SENDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(mailer-daemon|postmaster|mail-daemon|bounce[s]?)([+@.-]|$)")
        .expect("the sender pattern compiles")
});
static BOUNCE_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(undeliver|undelivered|delivery\s+status\s+notification|delivery\s+(has\s+)?failed|failure\s+notice|returned\s+mail|mail\s+delivery\s+(failed|subsystem|system)|non[- ]?delivery|no\s+se\s+pudo\s+entregar|no\s+entregado)",
    )
    .expect("the subject pattern compiles")
});

/// A delivery status notification: `multipart/report; report-type=delivery-status`
/// (RFC 3464), or a mailer daemon's notice in plain text. Also returns the
/// Message-IDs of the returned message, which say what bounced.
fn bounce(
    message: &Message<'_>,
    from: Option<&str>,
    subject: Option<&str>,
) -> Option<(Bounce, Vec<String>)> {
    let report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
    });
    let daemon = from.is_some_and(|f| BOUNCE_SENDER.is_match(f))
        && subject.is_some_and(|s| BOUNCE_SUBJECT.is_match(s));
    if !report && !daemon {
        return None;
    }
    // The report's fields and the returned headers, wherever the parser put
    // them: read from the raw message.
    let raw = String::from_utf8_lossy(message.raw_message());
    let status = STATUS
        .captures(&raw)
        .or_else(|| ANY_STATUS.captures(&raw))
        .map(|c| c[1].to_owned());
    let delayed = ACTION
        .captures(&raw)
        .is_some_and(|c| c[1].eq_ignore_ascii_case("delayed"));
    let hard = !delayed && status.as_deref().is_some_and(address_status);
    let recipient = RECIPIENT.captures(&raw).map(|c| c[3].to_lowercase());
    let diagnostic = DIAGNOSTIC.captures(&raw).map(|c| c[1].trim().to_owned());
    let returned = RETURNED_ID
        .captures_iter(&raw)
        .map(|c| c[1].to_owned())
        .collect();
    Some((
        Bounce {
            hard,
            status,
            recipient,
            diagnostic,
        },
        returned,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_history_and_footers_come_off_and_the_answer_stays() {
        for (text, kept) in [
            (
                "can we talk tomorrow?\n\nOn Tue, Dec 1, 2026 at 9:14 AM Rosa <coach@hope.example.org> wrote:\n> Hi Maria, how have you been?\n",
                "can we talk tomorrow?",
            ),
            (
                "ok\n\nOn Tue, Dec 1, 2026 at 9:14 AM Rosa at Hope Recovery <\ncoach@hope.example.org> wrote:\n\n> How have you been?",
                "ok",
            ),
            (
                "On Dec 1, 2026, at 09:14, Rosa wrote:\n> How have you been?\n\nbetter now > last week, thanks",
                "better now > last week, thanks",
            ),
            (
                "He wrote: I'm fine\n\nSent from my iPhone",
                "He wrote: I'm fine",
            ),
            (
                "gracias\n\n________________________________\nFrom: Rosa\nSent: Tuesday\nSubject: Checking in\n\nHow have you been?",
                "gracias",
            ),
            ("yes\n-----Original Message-----\nFrom: Rosa", "yes"),
            (
                "bien\n\nEl mar, 1 dic 2026 a las 9:14, Rosa (<coach@hope.example.org>) escribió:\n> Hola",
                "bien",
            ),
            ("call me\n-- \nMaria Lopez\n555-0100", "call me"),
        ] {
            assert_eq!(new_text(text), kept, "{text:?}");
        }
    }

    #[test]
    fn only_an_address_status_says_the_address_is_bad() {
        assert!(address_rejected(
            "550 5.1.1 <maria@example.com>: Recipient address rejected"
        ));
        assert!(address_rejected(
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound"
        ));
        assert!(!address_rejected("550 5.7.1 Message rejected as spam"));
        assert!(!address_rejected("554 Transaction failed"));
        // Our own sender refused: every client's address would look bad.
        assert!(!address_rejected(
            "553 5.1.8 <outreach@agency.org>: Sender address rejected: Domain not found"
        ));
        assert!(!address_rejected(
            "550 5.1.0 <outreach@agency.org>: Sender address rejected"
        ));
        assert!(!address_rejected(
            "550 5.7.26 Unauthenticated email is not accepted (DMARC)"
        ));
        assert!(!address_rejected("552 5.3.4 Message too big"));
        for hard in ["5.0.0", "5.1.1", "5.1.10", "5.1.2", "5.2.1", "5.4.1"] {
            assert!(address_status(hard), "{hard}");
        }
        for soft in ["4.1.1", "5.2.2", "4.2.2", "5.7.1", "5.1.7", "5.6.0"] {
            assert!(!address_status(soft), "{soft}");
        }
        assert!(mailbox_full("552 5.2.2 Mailbox full"));
        assert!(!mailbox_full("550 5.1.1 no such user"));
    }

    #[test]
    fn an_empty_or_headerless_message_is_an_error() {
        assert!(read(b"").is_err());
        assert!(read(b"   \r\n").is_err());
    }

    #[test]
    fn an_out_of_office_and_a_bounce_are_machines() {
        let ooo = b"From: Maria <maria@example.com>\r\nSubject: Out of Office: Checking in\r\nMessage-ID: <a@x>\r\n\r\nI am away until Monday.\r\n";
        assert_eq!(read(ooo).unwrap().automatic, Some(Automatic::AutoReply));
        let dsn = b"From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b@mx>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; Maria@Example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <ours@hope.example.org>\r\n\r\n--B--\r\n";
        let email = read(dsn).unwrap();
        let Some(Automatic::Bounce(bounce)) = email.automatic else {
            panic!("{email:?}");
        };
        assert!(bounce.hard);
        assert_eq!(bounce.status.as_deref(), Some("5.1.1"));
        assert_eq!(bounce.recipient.as_deref(), Some("maria@example.net"));
        assert_eq!(email.answers, ["<ours@hope.example.org>"]);
    }

    #[test]
    fn a_full_mailbox_bounces_soft() {
        let dsn = b"From: postmaster@mx.example.net\r\nSubject: Delivery Status Notification (Failure)\r\nMessage-ID: <c@mx>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; maria@example.net\r\nAction: failed\r\nStatus: 5.2.2\r\n\r\n--B--\r\n";
        let Some(Automatic::Bounce(bounce)) = read(dsn).unwrap().automatic else {
            panic!("a bounce");
        };
        assert!(!bounce.hard);
        assert_eq!(bounce.status.as_deref(), Some("5.2.2"));
    }
}
