//! `reengage templates check`. It reads files only: no database.

use std::process::ExitCode;

use clap::Subcommand;

use crate::app::config::Settings;
use crate::domain::compose::Composer;
use crate::domain::compose::lint::Lint;

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Render every template for a sample client and a sample discreet client.
    Check,
}

pub fn run(settings: &Settings, command: &TemplatesCommand) -> anyhow::Result<ExitCode> {
    match command {
        TemplatesCommand::Check => {
            let composer = Composer::load(&settings.templates.dir)?;
            let lint = Lint::load(&settings.templates.tone_file)?;
            Ok(check(settings, &composer, &lint))
        }
    }
}

/// Renders every template in every language for a regular and a discreet sample
/// client, runs the lint, and prints each finding at its template's file and
/// line. Exit 1 on a template that fails to render or an error finding.
fn check(settings: &Settings, composer: &Composer, tone: &Lint) -> ExitCode {
    use crate::domain::Channel;
    use crate::domain::compose::lint::{self, Severity};
    let mut failed = false;
    let first_step = &settings.detection.cadence[0].template;
    let dir = settings.templates.dir.display().to_string();
    let samples = composer.render_samples(&settings.agency.name, settings.http.public_url.as_str());
    for sample in samples {
        let (language, template, channel, discreet) = (
            &sample.language,
            &sample.template,
            sample.channel,
            sample.discreet,
        );
        let who = if discreet { "discreet" } else { "regular" };
        let file = match channel {
            Channel::Sms => format!("{language}/{template}.sms"),
            Channel::Email => format!("{language}/{template}.email"),
        };
        let rendered = match sample.rendered {
            Ok(rendered) => rendered,
            Err(e) => {
                failed = true;
                say!("FAIL {e} ({who})");
                continue;
            }
        };
        let findings = tone.check(&lint::Draft {
            channel,
            subject: rendered.subject.as_deref(),
            body: &rendered.body,
            discreet,
            first_of_episode: template == first_step,
        });
        if findings.is_empty() {
            let extra = match channel {
                Channel::Sms => {
                    let count = crate::domain::compose::segments::count(&rendered.body);
                    format!(
                        ": {} characters, {} segment(s), {:?}",
                        count.units, count.segments, count.encoding
                    )
                }
                Channel::Email => String::new(),
            };
            say!("ok   {file} ({who}){extra}");
        }
        for f in findings {
            let part = if f.part == "subject" {
                rendered.subject.as_deref()
            } else {
                Some(rendered.body.as_str())
            };
            let matched = part.and_then(|p| p.get(f.start..f.end)).unwrap_or_default();
            let line = if f.end - f.start < 40 {
                composer.line_of(&file, matched)
            } else {
                1
            };
            let level = match f.severity {
                Severity::Error => {
                    failed = true;
                    "error"
                }
                Severity::Warning => "warning",
            };
            say!(
                "{level}: {dir}/{file}.hbs:{line} ({who}): {} {}",
                f.rule,
                f.message
            );
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
