//! Layered settings: the built-in `config/default.toml`, then an optional file,
//! then `REENGAGE__SECTION__KEY` environment variables. Everything is checked
//! once, at start, and a bad value is reported with the key that holds it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::NaiveTime;
use chrono_tz::Tz;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use lettre::message::Mailbox;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use url::Url;

use crate::domain::PhoneNumber;

/// The documented defaults, compiled in so that the binary runs from any folder.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// A setting that is present but wrong. The message names the key.
#[derive(Debug, thiserror::Error)]
#[error("config key `{key}`: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    fn new(key: &str, problem: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            problem: problem.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub schedule: ScheduleSettings,
    pub detection: DetectionSettings,
    pub sending: SendingSettings,
    pub defaults: DefaultSettings,
    pub agency: AgencySettings,
    pub email: EmailSettings,
    pub sms: SmsSettings,
    pub outbox: OutboxSettings,
    pub templates: TemplateSettings,
}

#[derive(Debug, Deserialize)]
pub struct DatabaseSettings {
    /// May carry a password, so it is a secret: `Debug` prints it redacted.
    pub url: SecretString,
}

#[derive(Debug, Deserialize)]
pub struct HttpSettings {
    pub bind: SocketAddr,
    pub public_url: Url,
}

#[derive(Debug, Deserialize)]
pub struct ScheduleSettings {
    pub detect: String,
    pub dispatch: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CadenceStep {
    pub after_days: u32,
    pub template: String,
}

#[derive(Debug, Deserialize)]
pub struct DetectionSettings {
    pub cadence: Vec<CadenceStep>,
    pub draft_expiry_hours: u32,
}

#[derive(Debug, Deserialize)]
pub struct SendingSettings {
    #[serde(deserialize_with = "time_of_day")]
    pub quiet_start: NaiveTime,
    #[serde(deserialize_with = "time_of_day")]
    pub quiet_end: NaiveTime,
    pub max_per_client_per_day: u32,
    pub max_per_client_per_week: u32,
    pub max_attempts: u32,
    pub retry_base_seconds: u64,
    pub retry_cap_seconds: u64,
    pub lease_seconds: u64,
    pub batch_size: u32,
}

#[derive(Debug, Deserialize)]
pub struct DefaultSettings {
    pub timezone: Tz,
    pub phone_region: String,
    pub language: String,
}

#[derive(Debug, Deserialize)]
pub struct AgencySettings {
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransportKind {
    Outbox,
}

#[derive(Debug, Deserialize)]
pub struct EmailSettings {
    pub transport: EmailTransportKind,
    #[serde(deserialize_with = "mailbox")]
    pub from: Mailbox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsTransportKind {
    Outbox,
}

#[derive(Debug, Deserialize)]
pub struct SmsSettings {
    pub transport: SmsTransportKind,
    pub from: String,
}

#[derive(Debug, Deserialize)]
pub struct OutboxSettings {
    pub dir: PathBuf,
}

#[derive(Debug, Deserialize)]
pub struct TemplateSettings {
    pub dir: PathBuf,
}

fn time_of_day<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveTime, D::Error> {
    let text = String::deserialize(deserializer)?;
    NaiveTime::parse_from_str(&text, "%H:%M")
        .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a time of day as HH:MM")))
}

fn mailbox<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Mailbox, D::Error> {
    let text = String::deserialize(deserializer)?;
    Mailbox::from_str(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not an address like `Name <name@example.org>`: {e}"
        ))
    })
}

impl Settings {
    /// Reads the layers, lets `database_url` win over them, and checks the result.
    pub fn load(file: Option<&Path>, database_url: Option<&str>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(file) = file {
            if !file.exists() {
                anyhow::bail!("config file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed("REENGAGE__").split("__"));
        if let Some(url) = database_url {
            figment = figment.merge(("database.url", url));
        }
        let settings: Settings = figment.extract().map_err(|e| {
            let key = e.path.join(".");
            anyhow::anyhow!("config key `{key}`: {e}")
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// The checks that serde cannot make on one value alone.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database.url.expose_secret();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "database.url",
                "must start with `sqlite:` or `postgres://`",
            ));
        }
        if !matches!(self.http.public_url.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "http.public_url",
                "must be an http:// or https:// URL",
            ));
        }
        for (key, cron) in [
            ("schedule.detect", &self.schedule.detect),
            ("schedule.dispatch", &self.schedule.dispatch),
        ] {
            if !cron.is_empty() {
                check_cron(cron).map_err(|problem| ConfigError::new(key, problem))?;
            }
        }
        let cadence = &self.detection.cadence;
        if cadence.is_empty() {
            return Err(ConfigError::new(
                "detection.cadence",
                "needs at least one step",
            ));
        }
        if cadence[0].after_days == 0 {
            return Err(ConfigError::new(
                "detection.cadence",
                "the first step's after_days must be at least 1",
            ));
        }
        if cadence
            .windows(2)
            .any(|w| w[1].after_days <= w[0].after_days)
        {
            return Err(ConfigError::new(
                "detection.cadence",
                "steps must be in strictly increasing order of after_days",
            ));
        }
        if self.sending.max_attempts == 0 {
            return Err(ConfigError::new(
                "sending.max_attempts",
                "must be at least 1",
            ));
        }
        if self.sending.batch_size == 0 {
            return Err(ConfigError::new("sending.batch_size", "must be at least 1"));
        }
        if self.sending.lease_seconds < 10 {
            return Err(ConfigError::new(
                "sending.lease_seconds",
                "must be at least 10 seconds",
            ));
        }
        phonenumber::country::Id::from_str(&self.defaults.phone_region).map_err(|_| {
            ConfigError::new(
                "defaults.phone_region",
                format!(
                    "`{}` is not an ISO 3166 region code like `US`",
                    self.defaults.phone_region
                ),
            )
        })?;
        PhoneNumber::parse(&self.sms.from, None)
            .map_err(|e| ConfigError::new("sms.from", e.to_string()))?;
        Ok(())
    }

    pub fn phone_region(&self) -> phonenumber::country::Id {
        // Checked in `validate`.
        phonenumber::country::Id::from_str(&self.defaults.phone_region)
            .unwrap_or(phonenumber::country::Id::US)
    }

    /// Changes whenever the cadence does, so that stored detection times can be
    /// recomputed after an admin edits it.
    pub fn cadence_fingerprint(&self) -> String {
        self.detection
            .cadence
            .iter()
            .map(|s| format!("{}:{}", s.after_days, s.template))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Parses a 6-field cron string exactly as tokio-cron-scheduler will.
pub fn check_cron(cron: &str) -> Result<(), String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(cron)
        .map(|_| ())
        .map_err(|e| {
            format!("`{cron}` is not a 6-field cron string (sec min hour day month weekday): {e}")
        })
}
