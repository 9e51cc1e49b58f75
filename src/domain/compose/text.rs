//! A message's text as a coach gives it, for a draft they edit and a message
//! of their own alike: one rule for trimming and for limits.

use crate::domain::Channel;
use crate::domain::limits;

/// A body and subject that passed the rule: trimmed, not empty, within the
/// channel's limits, and no subject on an SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText {
    /// `None`: no subject was given, or a blank one (the caller decides what
    /// an email without one gets).
    pub subject: Option<String>,
    pub body: String,
}

/// What is wrong with a text, and in which field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct TextProblem {
    pub field: &'static str,
    pub problem: String,
}

impl MessageText {
    pub fn parse(channel: Channel, subject: Option<&str>, body: &str) -> Result<Self, TextProblem> {
        let problem = |field, problem: String| TextProblem { field, problem };
        let body = body.trim();
        if body.is_empty() {
            return Err(problem("body", "must not be empty".into()));
        }
        let most = match channel {
            Channel::Sms => limits::SMS,
            Channel::Email => limits::BODY,
        };
        if let Some(p) = limits::length_problem(body, most) {
            return Err(problem("body", p));
        }
        let subject = subject.map(str::trim).filter(|s| !s.is_empty());
        if let Some(p) = subject.and_then(|s| limits::length_problem(s, limits::SUBJECT)) {
            return Err(problem("subject", p));
        }
        if channel == Channel::Sms && subject.is_some() {
            return Err(problem("subject", "an SMS has no subject".into()));
        }
        Ok(Self {
            subject: subject.map(str::to_owned),
            body: body.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_trimmed_and_a_blank_subject_is_none() {
        let text = MessageText::parse(Channel::Email, Some("  "), "\n Hi there \r\n").unwrap();
        assert_eq!(text.body, "Hi there");
        assert_eq!(text.subject, None);
        let text = MessageText::parse(Channel::Email, Some(" Checking in "), "Hi").unwrap();
        assert_eq!(text.subject.as_deref(), Some("Checking in"));
    }

    #[test]
    fn each_problem_names_its_field() {
        let field = |channel, subject, body: &str| {
            MessageText::parse(channel, subject, body)
                .unwrap_err()
                .field
        };
        assert_eq!(field(Channel::Sms, None, "   "), "body");
        assert_eq!(
            field(Channel::Sms, None, &"a".repeat(limits::SMS + 1)),
            "body"
        );
        assert_eq!(field(Channel::Sms, Some("Hello"), "Hi"), "subject");
        assert_eq!(
            field(Channel::Email, Some(&"s".repeat(limits::SUBJECT + 1)), "Hi"),
            "subject"
        );
        // An email may be longer than an SMS; the limit counts the trimmed text.
        let long = format!("  {}  ", "a".repeat(limits::SMS));
        assert!(MessageText::parse(Channel::Email, None, &long.repeat(2)).is_ok());
        assert!(MessageText::parse(Channel::Sms, None, &long).is_ok());
    }
}
