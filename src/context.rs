//! What every job and request needs, built once from the settings.

use std::sync::Arc;

use anyhow::Context as _;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::channels::Channels;
use crate::clock::Clock;
use crate::compose::Composer;
use crate::compose::lint::Lint;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::replies::Words;
use crate::store::Store;
use crate::unsubscribe::UnsubscribeSigner;

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
}

impl AppContext {
    /// Connects to the database, applies migrations, loads the templates and checks
    /// that every cadence step has them in every language and for both channels.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
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
        let channels = Channels::from_settings(&settings)?;
        let store = Store::connect(settings.database.url.expose_secret()).await?;
        store.migrate().await?;
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
        let words = Arc::new(Words::load(&settings.replies.words_file)?);
        let lint = Arc::new(Lint::load(&settings.templates.tone_file)?);
        // The neutral sender name of discreet clients must itself be neutral.
        if let Some(finding) = lint
            .check(&crate::compose::lint::Draft {
                channel: crate::domain::Channel::Sms,
                subject: None,
                body: &settings.email.discreet_name,
                discreet: true,
                first_of_episode: false,
            })
            .into_iter()
            .find(|f| f.rule == "discreet")
        {
            anyhow::bail!("config key `email.discreet_name`: {}", finding.message);
        }
        Ok(Self {
            lint,
            words,
            unsubscribe,
            metrics: Arc::default(),
            settings: Arc::new(settings),
            store,
            composer: Arc::new(composer),
            channels,
            clock,
            shutdown: CancellationToken::new(),
        })
    }
}
