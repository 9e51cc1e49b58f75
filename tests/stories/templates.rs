//! The shipped copy keeps the promises of DOMAIN.md's tone guide.

use std::path::Path;

use reengage::domain::Channel;
use reengage::domain::compose::lint::{Draft, Lint};
use reengage::domain::compose::segments::{self, Encoding};
use reengage::domain::compose::{Composer, TemplateVars, sample_vars};

/// The library's sample client (long names: the SMS must still fit one
/// segment), for an agency whose name is itself a program word.
fn vars(discreet: bool) -> TemplateVars {
    sample_vars("Riverside Recovery Center", "https://example.org", discreet)
}

#[test]
fn every_shipped_sms_is_one_gsm7_segment_and_says_how_to_opt_out() {
    let composer = Composer::load(Path::new("/nonexistent")).unwrap();
    let templates = composer.templates();
    assert_eq!(
        composer.languages().into_iter().collect::<Vec<_>>(),
        ["en", "es"]
    );
    assert_eq!(templates.len(), 6);
    for (language, template) in templates {
        let sms = composer
            .render(&template, &language, Channel::Sms, &vars(false))
            .unwrap();
        let count = segments::count(&sms.body);
        assert_eq!(
            count.encoding,
            Encoding::Gsm7,
            "{language}/{template}: {}",
            sms.body
        );
        assert!(
            count.units <= 160,
            "{language}/{template} is {} long",
            count.units
        );
        assert!(sms.body.contains("STOP"), "{language}/{template}");
        // A discreet client's SMS says nothing about the program or the agency.
        let discreet = composer
            .render(&template, &language, Channel::Sms, &vars(true))
            .unwrap();
        assert!(!discreet.body.contains("Recovery"), "{}", discreet.body);
    }
}

/// Checked with the tone list itself (`config/tone.toml`, DOMAIN.md's table),
/// not a copy of it: stigma, shame, ultimatums, dwelling on the past, and
/// program words where the client is discreet.
#[test]
fn shipped_copy_never_dwells_on_the_past_or_shames() {
    let composer = Composer::load(Path::new("/nonexistent")).unwrap();
    let lint = Lint::load(Path::new("")).unwrap();
    for (language, template) in composer.templates() {
        for channel in [Channel::Sms, Channel::Email] {
            for discreet in [false, true] {
                let r = composer
                    .render(&template, &language, channel, &vars(discreet))
                    .unwrap();
                let found = lint.check(&Draft {
                    channel,
                    subject: r.subject.as_deref(),
                    body: &r.body,
                    discreet,
                    first_of_episode: true,
                });
                assert!(
                    found.is_empty(),
                    "{language}/{template} ({channel}, discreet {discreet}): {found:?}"
                );
            }
        }
        let email = composer
            .render(&template, &language, Channel::Email, &vars(true))
            .unwrap();
        let subject = email.subject.unwrap().to_lowercase();
        assert!(
            !subject.contains("recovery") && !subject.contains("program"),
            "{subject}"
        );
        assert!(
            !email.body.contains("Montgomery"),
            "discreet sign-off uses the first name only"
        );
    }
}
