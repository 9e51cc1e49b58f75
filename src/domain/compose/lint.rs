//! The tone and privacy lint. It never blocks a coach: it says what it found,
//! how bad it is, and what to write instead. Approving despite an error takes
//! one more confirmation, which the audit log records.

use std::path::Path;

use anyhow::Context as _;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::segments::{self, Encoding};
use crate::domain::Channel;

const BUILT_IN: &str = include_str!("../../../config/tone.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// One thing the lint found: where, how bad, and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    /// `subject` or `body`.
    pub part: String,
    /// Byte offsets in that part.
    pub start: usize,
    pub end: usize,
}

impl Finding {
    /// Findings as stored on a message. A column that does not read as
    /// findings is itself an error finding, never "no findings": approving
    /// such a draft then takes the same extra confirmation as any error.
    pub fn read_stored(json: &str) -> Vec<Finding> {
        serde_json::from_str(json).unwrap_or_else(|e| {
            tracing::error!("a message's lint findings do not read: {e}");
            vec![Finding {
                rule: "lint_unreadable".into(),
                severity: Severity::Error,
                message: "the lint's findings for this draft could not be read: \
                          check it with care"
                    .into(),
                part: "body".into(),
                start: 0,
                end: 0,
            }]
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToneFile {
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    rule: String,
    severity: Severity,
    words: Vec<String>,
    instead: String,
}

struct Rule {
    rule: String,
    severity: Severity,
    pattern: Regex,
    instead: String,
}

/// What is being checked.
pub struct Draft<'a> {
    pub channel: Channel,
    pub subject: Option<&'a str>,
    pub body: &'a str,
    pub discreet: bool,
    /// The first message of a quiet spell must say how to opt out.
    pub first_of_episode: bool,
}

pub struct Lint {
    rules: Vec<Rule>,
    missed_count: Regex,
}

/// Whole words or phrases, any case, with plurals and common endings.
fn pattern(words: &[String]) -> anyhow::Result<Regex> {
    let alternatives: Vec<String> = words
        .iter()
        .map(|w| regex::escape(&w.trim().to_lowercase()).replace(' ', r"\s+"))
        .collect();
    Ok(Regex::new(&format!(
        r"(?i)\b(?:{})(?:s|es|ed|d|ing)?\b",
        alternatives.join("|")
    ))?)
}

impl Lint {
    /// The built-in lists, extended by `file` if it is set.
    pub fn load(file: &Path) -> anyhow::Result<Self> {
        let mut entries: ToneFile = toml::from_str(BUILT_IN).context("the built-in tone lists")?;
        if !file.as_os_str().is_empty() {
            let text = std::fs::read_to_string(file).with_context(|| {
                format!(
                    "config key `templates.tone_file`: cannot read {}",
                    file.display()
                )
            })?;
            let extra: ToneFile = toml::from_str(&text).with_context(|| {
                format!(
                    "config key `templates.tone_file`: {} is not a tone list",
                    file.display()
                )
            })?;
            entries.entry.extend(extra.entry);
        }
        let rules = entries
            .entry
            .into_iter()
            .map(|e| {
                Ok(Rule {
                    pattern: pattern(&e.words)?,
                    rule: e.rule,
                    severity: e.severity,
                    instead: e.instead,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            rules,
            // "missed 3 sessions", "2 meetings missed": counting what was missed.
            missed_count: Regex::new(
                r"(?i)\b(?:\d+|two|three|four|five|several|many)\s+(?:sessions?|days?|weeks?|meetings?|appointments?|groups?|check-?ins?)\b",
            )?,
        })
    }

    pub fn check(&self, draft: &Draft<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        let parts = [("subject", draft.subject), ("body", Some(draft.body))];
        for (part, text) in parts {
            let Some(text) = text else { continue };
            // What a lock screen shows: an SMS body, or an email subject.
            let shown = match draft.channel {
                Channel::Sms => part == "body",
                Channel::Email => part == "subject",
            };
            for rule in &self.rules {
                if rule.rule == "discreet" && !(draft.discreet && shown) {
                    continue;
                }
                for m in rule.pattern.find_iter(text) {
                    findings.push(Finding {
                        rule: rule.rule.clone(),
                        severity: rule.severity,
                        message: format!("\"{}\": {}", m.as_str(), rule.instead),
                        part: part.to_owned(),
                        start: m.start(),
                        end: m.end(),
                    });
                }
            }
            for m in self.missed_count.find_iter(text) {
                findings.push(Finding {
                    rule: "dwelling".into(),
                    severity: Severity::Warning,
                    message: format!(
                        "\"{}\": don't count what was missed; \"it's been a little while\"",
                        m.as_str()
                    ),
                    part: part.to_owned(),
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
        if draft.channel == Channel::Sms {
            findings.extend(sms_form(draft));
        }
        findings.sort_by_key(|f| (f.severity != Severity::Error, f.part.clone(), f.start));
        findings
    }
}

/// Segments, characters that force UCS-2, and the opt-out line.
fn sms_form(draft: &Draft<'_>) -> Vec<Finding> {
    let body = draft.body;
    let mut findings = Vec::new();
    let count = segments::count(body);
    let whole = |rule: &str, severity, message: String| Finding {
        rule: rule.into(),
        severity,
        message,
        part: "body".into(),
        start: 0,
        end: body.len(),
    };
    if count.segments > 2 {
        findings.push(whole(
            "sms_length",
            Severity::Error,
            format!("{} segments: keep it to one (shorten it)", count.segments),
        ));
    } else if count.segments > 1 {
        findings.push(whole(
            "sms_length",
            Severity::Warning,
            format!(
                "{} segments: one is kinder and cheaper (shorten it)",
                count.segments
            ),
        ));
    }
    if count.encoding == Encoding::Ucs2 {
        // One finding per distinct character, at its first place.
        let mut seen = std::collections::HashSet::new();
        for (start, c) in body
            .char_indices()
            .filter(|(_, c)| !segments::is_gsm7(*c) && seen.insert(*c))
        {
            let fix = match c {
                '\u{2018}' | '\u{2019}' => "use a straight apostrophe (')",
                '\u{201C}' | '\u{201D}' => "use straight quotes (\")",
                '\u{2013}' | '\u{2014}' => "use a hyphen (-)",
                _ => {
                    "leave it out (an emoji or special letter makes the SMS UCS-2: 70 characters a segment)"
                }
            };
            findings.push(Finding {
                rule: "sms_encoding".into(),
                severity: Severity::Warning,
                message: format!("\"{c}\" forces UCS-2: {fix}"),
                part: "body".into(),
                start,
                end: start + c.len_utf8(),
            });
        }
    }
    if draft.first_of_episode && !body.to_lowercase().contains("stop") {
        findings.push(whole(
            "sms_opt_out",
            Severity::Error,
            "the first message must say how to opt out: add \"Reply STOP to opt out.\"".into(),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint() -> Lint {
        Lint::load(Path::new("")).unwrap()
    }

    fn rules(body: &str, discreet: bool) -> Vec<(String, Severity)> {
        lint()
            .check(&Draft {
                channel: Channel::Sms,
                subject: None,
                body,
                discreet,
                first_of_episode: false,
            })
            .into_iter()
            .map(|f| (f.rule, f.severity))
            .collect()
    }

    #[test]
    fn a_character_that_forces_ucs2_is_one_finding_however_often_it_appears() {
        let body = format!("Hi {}, Reply STOP to opt out. \u{2019}", "🙂".repeat(35));
        let encoding: Vec<(String, Severity)> = rules(&body, false)
            .into_iter()
            .filter(|(rule, _)| rule == "sms_encoding")
            .collect();
        assert_eq!(encoding.len(), 2, "one for the emoji, one for the quote");
    }

    #[test]
    fn each_rule_finds_what_it_should_and_not_look_alikes() {
        assert_eq!(
            rules("Hi Sam, you're an addict", false),
            [("stigma".into(), Severity::Error)]
        );
        assert_eq!(
            rules("addicts welcome", false),
            [("stigma".into(), Severity::Error)]
        );
        assert_eq!(
            rules("a clean slate", false),
            [("stigma".into(), Severity::Warning)]
        );
        assert!(rules("see you in class, my username is x", false).is_empty());
        assert_eq!(
            rules("This is your last chance", false),
            [("punitive".into(), Severity::Error)]
        );
        assert_eq!(
            rules("you must come", false),
            [("punitive".into(), Severity::Warning)]
        );
        for blame in [
            "You missed group on Tuesday",
            "Sorry we had a no-show",
            "you skipped your dose",
            "you didn't show up",
            "Vimos que faltaste a la cita",
            "No te presentaste el martes",
            "recaíste otra vez",
        ] {
            let found = rules(blame, false);
            assert!(
                found.contains(&("blame".into(), Severity::Error)),
                "{blame}: {found:?}"
            );
        }
        assert!(rules("We'd love to see you at group", false).is_empty());
        assert_eq!(
            rules("it's been 3 sessions", false),
            [("dwelling".into(), Severity::Warning)]
        );
        assert_eq!(
            rules("I'm disappointed", false),
            [("shame".into(), Severity::Error)]
        );
        assert!(rules("How's your recovery going?", false).is_empty());
        assert_eq!(
            rules("How's your recovery going?", true),
            [("discreet".into(), Severity::Error)]
        );
        assert!(rules("Hope your week is going ok", true).is_empty());
    }

    #[test]
    fn sms_form_counts_segments_and_names_the_fix() {
        let form = |body: &str, first| {
            lint()
                .check(&Draft {
                    channel: Channel::Sms,
                    subject: None,
                    body,
                    discreet: false,
                    first_of_episode: first,
                })
                .into_iter()
                .map(|f| (f.rule, f.severity))
                .collect::<Vec<_>>()
        };
        let stop = " Reply STOP to opt out.";
        assert!(form(&format!("{}{stop}", "a".repeat(160 - stop.len())), true).is_empty());
        assert_eq!(
            form(&format!("{}{stop}", "a".repeat(161 - stop.len())), true),
            [("sms_length".into(), Severity::Warning)]
        );
        assert_eq!(
            form(&"a".repeat(307), false),
            [("sms_length".into(), Severity::Error)]
        );
        let curly = form("It\u{2019}s me", false);
        assert_eq!(curly, [("sms_encoding".into(), Severity::Warning)]);
        assert!(
            form(&format!("{}\u{2019}", "a".repeat(69)), false)
                .iter()
                .all(|f| f.0 != "sms_length")
        );
        assert!(
            form(&format!("{}\u{2019}", "a".repeat(70)), false)
                .contains(&("sms_length".into(), Severity::Warning))
        );
        assert!(form("hi \u{1F642}", false).contains(&("sms_encoding".into(), Severity::Warning)));
        assert_eq!(
            form("Hi Sam, thinking of you.", true),
            [("sms_opt_out".into(), Severity::Error)]
        );
    }
}
