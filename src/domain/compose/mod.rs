//! Drafts from templates. Handlebars runs in strict mode, so a missing variable
//! is an error that names the template, never a message with a hole in it.
//!
//! The default templates are compiled into the binary; files in `templates.dir`
//! replace them one by one. Layout: `LANG/NAME.sms.hbs`, `LANG/NAME.email.hbs`
//! (subject, a line `---`, then the plain-text body), `LANG/NAME.email.html.hbs`,
//! and shared partials in `partials/NAME.hbs`.
//!
//! The tone and privacy lint is `lint`; SMS segment counting is `segments`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context as _;
use handlebars::{Context, Handlebars};
use rust_embed::RustEmbed;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::Channel;

pub mod lint;
pub mod segments;
pub mod text;

#[derive(RustEmbed)]
#[folder = "templates/"]
#[include = "*.hbs"]
struct BuiltInTemplates;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("template {name} is missing")]
    Missing { name: String },
    #[error("template {name} failed to render: {reason}")]
    Render { name: String, reason: String },
    #[error("template {name} needs a line `---` between the subject and the body")]
    NoSubject { name: String },
    #[error("template {name} rendered an empty {part}")]
    Empty { name: String, part: &'static str },
}

/// The sample client templates are checked and previewed with: long names,
/// so that an SMS that fits for them fits for anyone.
pub fn sample_vars(agency: &str, public_url: &str, discreet: bool) -> TemplateVars {
    TemplateVars {
        client: ClientVars {
            name: "Maximiliana".into(),
            first_name: "Maximiliana".into(),
        },
        coach: CoachVars {
            first_name: "Christopher".into(),
            name: "Christopher Montgomery".into(),
        },
        agency: AgencyVars {
            name: agency.to_owned(),
        },
        unsubscribe_url: format!(
            "{}/unsubscribe/sample-token",
            public_url.trim_end_matches('/')
        ),
        discreet,
    }
}

/// One template rendered for a sample client.
pub struct SampleRender {
    pub language: String,
    pub template: String,
    pub channel: Channel,
    pub discreet: bool,
    pub rendered: Result<Rendered, ComposeError>,
}

/// What templates can use: `{{client.name}}`, `{{coach.first_name}}`, …
#[derive(Debug, Clone, Serialize)]
pub struct TemplateVars {
    pub client: ClientVars,
    pub coach: CoachVars,
    pub agency: AgencyVars,
    pub unsubscribe_url: String,
    pub discreet: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientVars {
    /// The preferred name, falling back to the first name.
    pub name: String,
    pub first_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoachVars {
    pub first_name: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgencyVars {
    pub name: String,
}

/// A rendered draft, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: Option<String>,
    pub body: String,
    pub html: Option<String>,
    /// `LANG/NAME`, as stored on the message.
    pub template: String,
    /// A short hash of the template sources used, so that a message can be traced
    /// to the exact wording it came from.
    pub template_hash: String,
}

/// The variant an episode's step is drafted from: one of `variants` or the
/// step's own template (`None`), each as likely, drawn from `seed` (the
/// client and the quiet spell, and the step), so that the same episode always
/// gets the same one.
pub fn pick_variant(variants: &[String], seed: &str) -> Option<String> {
    use sha2::Digest;
    if variants.is_empty() {
        return None;
    }
    let digest = sha2::Sha256::digest(seed.as_bytes());
    let draw = u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 has 8 bytes"));
    let pick = (draw % (variants.len() as u64 + 1)) as usize;
    let mut sorted = variants.to_vec();
    sorted.sort();
    (pick > 0).then(|| sorted[pick - 1].clone())
}

/// The HTML of a text a person wrote, inside the agency's layout.
const WRITTEN_HTML: &str = "{{#> html_layout lang=lang title=title}}\
    {{#each paragraphs}}<p>{{#each this}}{{#if @index}}<br>\n{{/if}}{{this}}{{/each}}</p>\n{{/each}}\
    {{/html_layout}}";

pub struct Composer {
    /// Plain text: no escaping.
    text: Handlebars<'static>,
    /// HTML: everything escaped.
    html: Handlebars<'static>,
    sources: BTreeMap<String, String>,
}

impl Composer {
    /// Loads the built-in templates, then the overrides in `dir` if it exists.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut sources = BTreeMap::new();
        for path in BuiltInTemplates::iter() {
            let file = BuiltInTemplates::get(&path).context("built-in template vanished")?;
            let text = String::from_utf8(file.data.into_owned())
                .with_context(|| format!("built-in template {path} is not UTF-8"))?;
            sources.insert(path.trim_end_matches(".hbs").to_owned(), text);
        }
        if dir.is_dir() {
            for (name, text) in read_overrides(dir)? {
                sources.insert(name, text);
            }
        }
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        html.register_escape_fn(handlebars::html_escape);
        for (name, source) in &sources {
            let (registry, key) = match name.strip_prefix("partials/") {
                Some(partial) => {
                    text.register_partial(partial, source)
                        .with_context(|| format!("template {name} does not parse"))?;
                    html.register_partial(partial, source)
                        .with_context(|| format!("template {name} does not parse"))?;
                    continue;
                }
                None if name.ends_with(".html") => (&mut html, name),
                None => (&mut text, name),
            };
            registry
                .register_template_string(key, source)
                .with_context(|| format!("template {name} does not parse"))?;
        }
        Ok(Self {
            text,
            html,
            sources,
        })
    }

    /// The HTML part of an email written as plain text (a coach's own message,
    /// an edited draft): the agency's `html_layout` around the text's
    /// paragraphs, every character of it escaped.
    pub fn html_of_text(&self, language: &str, title: &str, body: &str) -> anyhow::Result<String> {
        // A browser's form sends `\r\n`.
        let body = body.replace("\r\n", "\n");
        let paragraphs: Vec<Vec<&str>> = body
            .split("\n\n")
            .map(|p| p.lines().map(str::trim_end).collect::<Vec<_>>())
            .filter(|p| p.iter().any(|l| !l.trim().is_empty()))
            .collect();
        let vars =
            serde_json::json!({ "lang": language, "title": title, "paragraphs": paragraphs });
        Ok(self
            .html
            .render_template(WRITTEN_HTML, &vars)
            .context("the written-text HTML does not render (is partials/html_layout changed?)")?
            .trim()
            .to_owned())
    }

    /// The languages that have templates (the folders other than `partials`).
    pub fn languages(&self) -> BTreeSet<String> {
        self.sources
            .keys()
            .filter(|k| !k.starts_with("partials/"))
            .filter_map(|k| k.split_once('/').map(|(lang, _)| lang.to_owned()))
            .collect()
    }

    /// The variants of `template` in `language` that have this channel's
    /// files: `LANG/NAME~VARIANT.sms.hbs` (and `.email.hbs`, `.email.html.hbs`)
    /// beside `LANG/NAME.…`, by name.
    pub fn variants(&self, language: &str, template: &str, channel: Channel) -> Vec<String> {
        let prefix = format!("{language}/{template}~");
        let suffix = match channel {
            Channel::Sms => ".sms",
            Channel::Email => ".email",
        };
        // An email needs both its parts: a variant with its text alone is
        // never drawn (it could not be rendered).
        self.sources
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix)?.strip_suffix(suffix))
            .filter(|variant| {
                channel == Channel::Sms
                    || self
                        .sources
                        .contains_key(&format!("{prefix}{variant}.email.html"))
            })
            .map(str::to_owned)
            .collect()
    }

    /// Renders `template`, or its `variant`: the message records the step's
    /// template with the variant beside it.
    pub fn render_variant(
        &self,
        template: &str,
        variant: Option<&str>,
        language: &str,
        channel: Channel,
        vars: &TemplateVars,
    ) -> Result<Rendered, ComposeError> {
        let name = match variant {
            Some(v) => format!("{template}~{v}"),
            None => template.to_owned(),
        };
        let mut rendered = self.render(&name, language, channel, vars)?;
        rendered.template = format!("{language}/{template}");
        Ok(rendered)
    }

    /// Every (language, template) pair that has at least one file (a variant,
    /// `NAME~VARIANT`, is a template of its own here, so that every check
    /// covers it).
    pub fn templates(&self) -> BTreeSet<(String, String)> {
        self.sources
            .keys()
            .filter(|k| !k.starts_with("partials/"))
            .filter_map(|k| {
                let (lang, file) = k.split_once('/')?;
                let name = file.split('.').next()?;
                Some((lang.to_owned(), name.to_owned()))
            })
            .collect()
    }

    /// Every template in every language, for each channel, rendered for a
    /// regular and a discreet sample client ([`sample_vars`]): what
    /// `templates check` and the admin's preview show. The one loop over them.
    pub fn render_samples(&self, agency: &str, public_url: &str) -> Vec<SampleRender> {
        let mut out = Vec::new();
        for (language, template) in self.templates() {
            for discreet in [false, true] {
                for channel in [Channel::Sms, Channel::Email] {
                    // A variant may cover one channel only; the step's own
                    // template covers the other.
                    let file = format!("{language}/{template}.{}", channel.as_ref());
                    if template.contains('~') && !self.sources.contains_key(&file) {
                        continue;
                    }
                    let vars = sample_vars(agency, public_url, discreet);
                    let rendered = self.render(&template, &language, channel, &vars);
                    out.push(SampleRender {
                        language: language.clone(),
                        template: template.clone(),
                        channel,
                        discreet,
                        rendered,
                    });
                }
            }
        }
        out
    }

    /// Checks that `template` exists for both channels in every language.
    pub fn check_complete(&self, template: &str) -> Result<(), ComposeError> {
        for lang in self.languages() {
            for suffix in ["sms", "email", "email.html"] {
                let name = format!("{lang}/{template}.{suffix}");
                if !self.sources.contains_key(&name) {
                    return Err(ComposeError::Missing { name });
                }
            }
        }
        Ok(())
    }

    /// Renders `template` in `language` for `channel`.
    pub fn render(
        &self,
        template: &str,
        language: &str,
        channel: Channel,
        vars: &TemplateVars,
    ) -> Result<Rendered, ComposeError> {
        let base = format!("{language}/{template}");
        // The variables become JSON once, for both parts of an email.
        let vars = Context::wraps(vars).map_err(|e| ComposeError::Render {
            name: base.clone(),
            reason: e.to_string(),
        })?;
        let vars = &vars;
        match channel {
            Channel::Sms => {
                let name = format!("{base}.sms");
                let body = self.render_one(&self.text, &name, vars)?;
                Ok(Rendered {
                    subject: None,
                    body: non_empty(body.trim().to_owned(), &name, "body")?,
                    html: None,
                    template: base,
                    template_hash: self.hash(&[&name]),
                })
            }
            Channel::Email => {
                let name = format!("{base}.email");
                let html_name = format!("{base}.email.html");
                let text = self.render_one(&self.text, &name, vars)?;
                let (subject, body) = split_subject(&text)
                    .ok_or_else(|| ComposeError::NoSubject { name: name.clone() })?;
                let html = self.render_one(&self.html, &html_name, vars)?;
                Ok(Rendered {
                    subject: Some(non_empty(subject, &name, "subject")?),
                    body: non_empty(body, &name, "body")?,
                    html: Some(non_empty(html.trim().to_owned(), &html_name, "body")?),
                    template: base,
                    template_hash: self.hash(&[&name, &html_name]),
                })
            }
        }
    }

    fn render_one(
        &self,
        registry: &Handlebars<'static>,
        name: &str,
        vars: &Context,
    ) -> Result<String, ComposeError> {
        if !registry.has_template(name) {
            return Err(ComposeError::Missing {
                name: name.to_owned(),
            });
        }
        registry
            .render_with_context(name, vars)
            .map_err(|e| ComposeError::Render {
                name: name.to_owned(),
                reason: e.to_string(),
            })
    }

    /// Where `text` first appears in template `name` (`LANG/NAME.sms` and the
    /// like), as a 1-based line, ignoring case; 1 when it is not there as written.
    pub fn line_of(&self, name: &str, text: &str) -> usize {
        let needle = text.to_lowercase();
        self.sources
            .get(name)
            .and_then(|source| {
                source
                    .lines()
                    .position(|line| line.to_lowercase().contains(&needle))
            })
            .map_or(1, |i| i + 1)
    }

    fn hash(&self, names: &[&str]) -> String {
        let mut hasher = Sha256::new();
        for name in names {
            hasher.update(name.as_bytes());
            hasher.update(
                self.sources
                    .get(*name)
                    .map(String::as_str)
                    .unwrap_or_default(),
            );
        }
        hex::encode(&hasher.finalize()[..8])
    }
}

fn non_empty(text: String, name: &str, part: &'static str) -> Result<String, ComposeError> {
    if text.trim().is_empty() {
        Err(ComposeError::Empty {
            name: name.to_owned(),
            part,
        })
    } else {
        Ok(text)
    }
}

/// Splits "subject\n---\nbody" into its two parts.
fn split_subject(text: &str) -> Option<(String, String)> {
    let mut subject = Vec::new();
    let mut lines = text.lines();
    for line in lines.by_ref() {
        if line.trim() == "---" {
            let body = lines.collect::<Vec<_>>().join("\n");
            return Some((subject.join(" ").trim().to_owned(), body.trim().to_owned()));
        }
        subject.push(line.trim());
    }
    None
}

/// Reads `dir/LANG/*.hbs` and `dir/partials/*.hbs`, named as the built-ins are.
fn read_overrides(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    let folders = std::fs::read_dir(dir)
        .with_context(|| format!("Failed to read the templates folder {}", dir.display()))?;
    for folder in folders {
        let folder = folder?;
        if !folder.file_type()?.is_dir() {
            continue;
        }
        let folder_name = folder.file_name().to_string_lossy().into_owned();
        for file in std::fs::read_dir(folder.path())? {
            let file = file?;
            let file_name = file.file_name().to_string_lossy().into_owned();
            let Some(stem) = file_name.strip_suffix(".hbs") else {
                continue;
            };
            let text = std::fs::read_to_string(file.path())
                .with_context(|| format!("Failed to read template {}", file.path().display()))?;
            found.push((format!("{folder_name}/{stem}"), text));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_is_drawn_stably_and_evenly() {
        let variants = vec!["short".to_owned(), "warm".to_owned()];
        assert_eq!(pick_variant(&[], "1:100:1"), None);
        let first = pick_variant(&variants, "7:1700000000:1");
        for _ in 0..5 {
            assert_eq!(pick_variant(&variants, "7:1700000000:1"), first);
        }
        let mut counts = std::collections::HashMap::new();
        for client in 0..3000 {
            let pick = pick_variant(&variants, &format!("{client}:1700000000:1"));
            *counts.entry(pick).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 3, "{counts:?}");
        for n in counts.values() {
            assert!(
                (900..=1100).contains(n),
                "close to a third each: {counts:?}"
            );
        }
    }

    fn vars() -> TemplateVars {
        TemplateVars {
            client: ClientVars {
                name: "Sam".into(),
                first_name: "Samantha".into(),
            },
            coach: CoachVars {
                first_name: "Rosa".into(),
                name: "Rosa Diaz".into(),
            },
            agency: AgencyVars {
                name: "Riverside".into(),
            },
            unsubscribe_url: "http://127.0.0.1/unsubscribe/x".into(),
            discreet: false,
        }
    }

    #[test]
    fn an_override_replaces_one_file_and_a_missing_variable_names_the_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("en")).unwrap();
        std::fs::write(
            dir.path().join("en/checkin-1.sms.hbs"),
            "Hi {{client.nickname}}",
        )
        .unwrap();
        let composer = Composer::load(dir.path()).unwrap();
        let err = composer
            .render("checkin-1", "en", Channel::Sms, &vars())
            .unwrap_err();
        assert!(err.to_string().contains("en/checkin-1.sms"), "{err}");
        // The email templates were not overridden and still render.
        let email = composer
            .render("checkin-1", "en", Channel::Email, &vars())
            .unwrap();
        assert!(email.body.contains("Sam"));
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let composer = Composer::load(Path::new("/nonexistent")).unwrap();
        let mut v = vars();
        v.client.name = "<Sam & Co>".into();
        let email = composer
            .render("checkin-1", "en", Channel::Email, &v)
            .unwrap();
        assert!(email.body.contains("<Sam & Co>"));
        let html = email.html.unwrap();
        assert!(html.contains("&lt;Sam &amp; Co&gt;"), "{html}");
        assert!(!html.contains("<Sam"));
    }

    #[test]
    fn an_email_variant_without_its_html_part_is_never_drawn() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("en")).unwrap();
        for (file, text) in [
            ("en/checkin-1~warm.sms.hbs", "Hi {{client.name}}"),
            ("en/checkin-1~warm.email.hbs", "Hi {{client.name}}"),
            ("en/checkin-1~full.email.hbs", "Hi {{client.name}}"),
            (
                "en/checkin-1~full.email.html.hbs",
                "<p>Hi {{client.name}}</p>",
            ),
        ] {
            std::fs::write(dir.path().join(file), text).unwrap();
        }
        let composer = Composer::load(dir.path()).unwrap();
        assert_eq!(composer.variants("en", "checkin-1", Channel::Sms), ["warm"]);
        assert_eq!(
            composer.variants("en", "checkin-1", Channel::Email),
            ["full"]
        );
    }

    #[test]
    fn a_coachs_text_keeps_its_paragraphs_whatever_its_line_ends() {
        let composer = Composer::load(Path::new("/nonexistent")).unwrap();
        let html = composer
            .html_of_text("en", "Hello", "First line.\r\n\r\nSecond paragraph.")
            .unwrap();
        assert_eq!(html.matches("<p").count(), 2, "{html}");
    }
}
