//! The shipped copy keeps the promises of DOMAIN.md's tone guide.

use std::path::Path;

use reengage::compose::segments::{self, Encoding};
use reengage::compose::{AgencyVars, ClientVars, CoachVars, Composer, TemplateVars};
use reengage::domain::Channel;

fn vars(discreet: bool) -> TemplateVars {
    TemplateVars {
        // Long names: the SMS must still fit one segment.
        client: ClientVars {
            name: "Maximiliana".into(),
            first_name: "Maximiliana".into(),
        },
        coach: CoachVars {
            first_name: "Christopher".into(),
            name: "Christopher Montgomery".into(),
        },
        agency: AgencyVars {
            name: "Riverside Recovery Center".into(),
        },
        unsubscribe_url: "https://example.org/unsubscribe/token".into(),
        discreet,
    }
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

#[test]
fn shipped_copy_never_dwells_on_the_past_or_shames() {
    let composer = Composer::load(Path::new("/nonexistent")).unwrap();
    let banned = [
        "missed",
        "you haven't",
        "you didn't",
        "you never",
        "failed",
        "last chance",
        "must",
        "have to",
        "disappointed",
        "ashamed",
        "addict",
        "clean",
    ];
    for (language, template) in composer.templates() {
        for channel in [Channel::Sms, Channel::Email] {
            let r = composer
                .render(&template, &language, channel, &vars(false))
                .unwrap();
            let text = format!(
                "{} {} {}",
                r.subject.unwrap_or_default(),
                r.body,
                r.html.unwrap_or_default()
            )
            .to_lowercase();
            for word in banned {
                assert!(
                    !text.contains(word),
                    "{language}/{template} ({channel}) says `{word}`"
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
