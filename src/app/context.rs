//! What every job and request needs, built once from the settings.

use std::sync::Arc;

use anyhow::Context as _;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::app::channels::Channels;
use crate::app::clock::Clock;
use crate::app::config::Settings;
use crate::app::metrics::Metrics;
use crate::app::unsubscribe::UnsubscribeSigner;
use crate::domain::compose::Composer;
use crate::domain::compose::lint::Lint;
use crate::domain::words::Words;
use crate::store::Store;

#[derive(Clone)]
pub struct AppContext {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub composer: Arc<Composer>,
    pub channels: Channels,
    pub clock: Clock,
    pub unsubscribe: UnsubscribeSigner,
    pub metrics: Arc<Metrics>,
    pub words: Arc<Words>,
    pub lint: Arc<Lint>,
    /// Cancelled on SIGTERM or Ctrl-C: jobs finish what is in flight and claim nothing new.
    pub shutdown: CancellationToken,
    /// Wakes `serve`'s dispatcher at once, for a message a coach just wrote.
    pub dispatch_now: Arc<tokio::sync::Notify>,
}

/// What building the context does about migrations the database lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Apply them (`serve`, `demo`, tests).
    Apply,
    /// Refuse to run, naming the command that applies them: a read-only
    /// command must not change a production schema during a rolling upgrade.
    Require,
}

impl AppContext {
    /// Loads the templates (checking that every cadence step has them in every
    /// language and for both channels), the channels and the word lists, then
    /// connects to the database and applies migrations.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Migrations::Apply).await
    }

    /// As [`AppContext::build`], with `migrations` saying whether to apply
    /// missing migrations or refuse to run without them.
    pub async fn build_with(settings: Settings, migrations: Migrations) -> anyhow::Result<Self> {
        let Named {
            composer,
            channels,
            words,
            lint,
        } = Named::load(&settings)?;
        // The settings are checked first, and the database comes last, so
        // that a settings mistake is reported before a database one.
        let store = Store::connect(settings.database.url.expose_secret()).await?;
        match migrations {
            Migrations::Apply => store.migrate().await?,
            Migrations::Require => {
                let pending = store.pending_migrations().await?;
                if !pending.is_empty() {
                    anyhow::bail!(
                        "the database lacks migrations {}: run `reengage migrate` first",
                        pending.join(", ")
                    );
                }
            }
        }
        let clock = Clock::System;
        store
            .sync_cadence(&settings.cadence_fingerprint(), clock.now())
            .await?;
        let key = if settings.security.secret_key.expose_secret().is_empty() {
            store.stored_secret_key().await?
        } else {
            settings.security.secret_key.clone()
        };
        let unsubscribe = UnsubscribeSigner::new(key, &settings.http.public_url);
        Ok(Self {
            lint: Arc::new(lint),
            words: Arc::new(words),
            unsubscribe,
            metrics: Arc::default(),
            settings: Arc::new(settings),
            store,
            composer: Arc::new(composer),
            channels,
            clock,
            shutdown: CancellationToken::new(),
            dispatch_now: Arc::new(tokio::sync::Notify::new()),
        })
    }
}

/// What the settings name, loaded and checked: the templates (every cadence
/// step in every language, for both channels), the channels, the word lists
/// and the tone rules. Needs no database.
pub struct Named {
    composer: Composer,
    channels: Channels,
    words: Words,
    lint: Lint,
}

impl Named {
    pub fn load(settings: &Settings) -> anyhow::Result<Self> {
        let composer = Composer::load(&settings.templates.dir)?;
        for step in &settings.detection.cadence {
            composer.check_complete(&step.template).with_context(
                || "config key `detection.cadence` names a template that is incomplete",
            )?;
        }
        if !composer.languages().contains(&settings.defaults.language) {
            anyhow::bail!(
                "config key `defaults.language`: there are no templates for `{}`",
                settings.defaults.language
            );
        }
        let channels = Channels::from_settings(settings)?;
        let words = Words::load(&settings.replies.words_file)?;
        let lint = Lint::load(&settings.templates.tone_file)?;
        // Texts that may reach someone who must not learn of the program: the
        // neutral sender name of discreet clients, and the answer to a
        // stranger's phone. Neither may carry program words.
        for (key, text) in [
            ("email.discreet_name", &settings.email.discreet_name),
            (
                "replies.wrong_number_reply",
                &settings.replies.wrong_number_reply,
            ),
        ] {
            let findings = lint.check(&crate::domain::compose::lint::Draft {
                channel: crate::domain::Channel::Sms,
                subject: None,
                body: text,
                discreet: true,
                first_of_episode: false,
            });
            if let Some(finding) = findings.iter().find(|f| f.rule == "discreet") {
                anyhow::bail!("config key `{key}`: {}", finding.message);
            }
        }
        Ok(Self {
            composer,
            channels,
            words,
            lint,
        })
    }
}
