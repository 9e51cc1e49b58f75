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
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

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
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub schedule: ScheduleSettings,
    pub detection: DetectionSettings,
    pub sending: SendingSettings,
    pub defaults: DefaultSettings,
    pub agency: AgencySettings,
    pub security: SecuritySettings,
    pub email: EmailSettings,
    pub sms: SmsSettings,
    pub replies: ReplySettings,
    pub crisis: CrisisSettings,
    pub reports: ReportSettings,
    pub log: LogSettings,
    pub retention: RetentionSettings,
    pub outbox: OutboxSettings,
    pub templates: TemplateSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    pub message_body_days: u32,
    pub send_log_years: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplySettings {
    pub words_file: PathBuf,
    pub confirm_opt_out: bool,
    pub opt_out_confirmation: String,
    pub help_text: String,
    pub wrong_number_reply: String,
    pub notify_after_minutes: u32,
    pub notify_by_sms: bool,
    pub conversation_window_minutes: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    pub window_days: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrisisSettings {
    pub auto_reply: bool,
    pub resources_message: String,
    /// The resources message in other languages, by the client's language.
    #[serde(default)]
    pub resources_messages: std::collections::BTreeMap<String, String>,
    pub escalate_after_minutes: u32,
}

impl CrisisSettings {
    /// The resources message in `language`, or the default one.
    pub fn resources_for(&self, language: &str) -> &str {
        self.resources_messages
            .get(language)
            .unwrap_or(&self.resources_message)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// May carry a password, so it is a secret: `Debug` prints it redacted.
    pub url: SecretString,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub bind: SocketAddr,
    pub public_url: Url,
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub request_timeout_seconds: u64,
    pub body_limit_bytes: usize,
    pub header_read_timeout_seconds: u64,
    pub shutdown_drain_seconds: u64,
    pub rate_limit: RateLimitSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub login_per_minute: u32,
    pub api_per_minute: u32,
    pub webhooks_per_minute: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    pub detect: String,
    pub dispatch: String,
    pub digest: String,
    pub housekeeping: String,
    pub inbox: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CadenceStep {
    pub after_days: u32,
    pub template: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionSettings {
    pub cadence: Vec<CadenceStep>,
    pub draft_expiry_hours: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct DefaultSettings {
    pub timezone: Tz,
    pub phone_region: String,
    pub language: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencySettings {
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    pub secret_key: SecretString,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransportKind {
    Outbox,
    Smtp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub transport: EmailTransportKind,
    #[serde(deserialize_with = "mailbox")]
    pub from: Mailbox,
    pub discreet_name: String,
    pub max_per_second: u32,
    pub concurrency: u32,
    pub smtp: SmtpSettings,
    pub inbound: InboundSettings,
}

/// Where email replies come in from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InboundTransportKind {
    /// Replies go to the coach's own address; reengage does not read them.
    #[serde(rename = "")]
    Off,
    /// `.eml` files dropped in a folder.
    Folder,
    /// A mailbox on an IMAP server.
    Imap,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundSettings {
    pub transport: InboundTransportKind,
    pub address: String,
    pub folder: InboundFolderSettings,
    pub imap: ImapSettings,
}

impl InboundSettings {
    pub fn is_on(&self) -> bool {
        self.transport != InboundTransportKind::Off
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundFolderSettings {
    pub dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: String,
    pub password: SecretString,
    pub mailbox: String,
    pub processed_mailbox: String,
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: String,
    pub password: SecretString,
    pub pool_size: u32,
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsTransportKind {
    Outbox,
    Twilio,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    pub transport: SmsTransportKind,
    pub from: String,
    pub concurrency: u32,
    pub twilio: TwilioSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioSettings {
    pub base_url: Url,
    pub account_sid: String,
    pub auth_token: SecretString,
    pub api_key_sid: String,
    pub api_key_secret: SecretString,
    pub messaging_service_sid: String,
    pub max_per_second: u32,
    pub timeout_seconds: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    pub dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSettings {
    pub dir: PathBuf,
    pub tone_file: PathBuf,
}

fn time_of_day<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveTime, D::Error> {
    let text = String::deserialize(deserializer)?;
    NaiveTime::parse_from_str(&text, "%H:%M")
        .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a time of day as HH:MM")))
}

/// Addresses or CIDR ranges; a bare address is a range of one.
fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|text| {
            text.parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "`{text}` is not an address or a CIDR range like 10.0.0.0/8"
                    ))
                })
        })
        .collect()
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
    /// How long after an engagement detection first needs to look at a
    /// client: the first cadence step.
    pub fn first_step_after(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.detection.cadence[0].after_days))
    }

    /// How long after a client's message a coach's answer still goes at once.
    pub fn conversation_window(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.replies.conversation_window_minutes))
    }

    /// The quiet hours of `[sending]`.
    pub fn quiet_hours(&self) -> crate::domain::window::QuietHours {
        crate::domain::window::QuietHours {
            start: self.sending.quiet_start,
            end: self.sending.quiet_end,
        }
    }

    /// Reads the layers, lets `database_url` win over them, and checks the result.
    pub fn load(file: Option<&Path>, database_url: Option<&str>) -> anyhow::Result<Self> {
        let figment = layers(file, database_url)?;
        let settings: Settings = figment.extract().map_err(|e| {
            let path = e.path.clone();
            let key = path.join(".");
            let from = e
                .metadata
                .as_ref()
                .map(|m| format!(" (set in {})", layer_name(m, &path)))
                .unwrap_or_default();
            anyhow::anyhow!("config key `{key}`{from}: {}", e.kind)
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
        self.validate_schedule()?;
        self.validate_cadence()?;
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
        self.validate_counts()?;
        let secret_key = self.security.secret_key.expose_secret();
        if !secret_key.is_empty() && secret_key.chars().count() < 32 {
            return Err(ConfigError::new(
                "security.secret_key",
                "must be at least 32 characters (or empty, to have one made)",
            ));
        }
        self.validate_help_text()?;
        self.validate_inbound()?;
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::new(
                "log.level",
                format!("`{}` is not a level like info or debug", self.log.level),
            ));
        }
        if self.retention.send_log_years < 6 {
            return Err(ConfigError::new(
                "retention.send_log_years",
                "must be at least 6: consent and opt-out evidence is kept 6 years (HIPAA)",
            ));
        }
        if self.email.transport == EmailTransportKind::Smtp {
            self.validate_smtp()?;
        }
        if self.sms.transport == SmsTransportKind::Twilio {
            self.validate_twilio()?;
        }
        Ok(())
    }

    /// The numbers that must be at least 1.
    fn validate_counts(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            (
                "http.request_timeout_seconds",
                self.http.request_timeout_seconds,
            ),
            (
                "http.header_read_timeout_seconds",
                self.http.header_read_timeout_seconds,
            ),
            ("http.body_limit_bytes", self.http.body_limit_bytes as u64),
            ("sending.max_attempts", u64::from(self.sending.max_attempts)),
            ("sending.batch_size", u64::from(self.sending.batch_size)),
            (
                "sending.max_per_client_per_day",
                u64::from(self.sending.max_per_client_per_day),
            ),
            (
                "sending.max_per_client_per_week",
                u64::from(self.sending.max_per_client_per_week),
            ),
            ("email.concurrency", u64::from(self.email.concurrency)),
            ("sms.concurrency", u64::from(self.sms.concurrency)),
            ("reports.window_days", u64::from(self.reports.window_days)),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        Ok(())
    }

    /// Every job's cron string, as the scheduler will read it.
    fn validate_schedule(&self) -> Result<(), ConfigError> {
        for (key, cron) in [
            ("schedule.detect", &self.schedule.detect),
            ("schedule.dispatch", &self.schedule.dispatch),
            ("schedule.digest", &self.schedule.digest),
            ("schedule.housekeeping", &self.schedule.housekeeping),
            ("schedule.inbox", &self.schedule.inbox),
        ] {
            if !cron.is_empty() {
                check_cron(cron).map_err(|problem| ConfigError::new(key, problem))?;
            }
        }
        Ok(())
    }

    /// The cadence's steps: at least one, the first after a day or more,
    /// strictly increasing.
    fn validate_cadence(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }

    /// Checks what only the commands that send need (`serve`, `dispatch`,
    /// `demo`): that `sms.from` is a real number. It stays out of
    /// [`Settings::validate`] because checking a number loads the phone
    /// metadata, 45 ms of the 60 ms every other command took to start.
    pub fn validate_sending(&self) -> Result<(), ConfigError> {
        let twilio = &self.sms.twilio;
        if self.sms.transport != SmsTransportKind::Twilio || twilio.messaging_service_sid.is_empty()
        {
            PhoneNumber::parse(&self.sms.from, None).map_err(|e| {
                ConfigError::new("sms.from", format!("{e} (use E.164, like +12015550100)"))
            })?;
        }
        Ok(())
    }

    /// The HELP answer must carry what docs/domain.md lists.
    fn validate_help_text(&self) -> Result<(), ConfigError> {
        let text = &self.replies.help_text;
        let lower = text.to_lowercase();
        let digits = text.chars().filter(char::is_ascii_digit).count();
        let missing: Vec<&str> = [
            (
                lower.contains(&self.agency.name.to_lowercase()),
                "the agency's name",
            ),
            (
                digits >= 7 || text.contains('@'),
                "a phone number or email to reach",
            ),
            (
                ["day", "week", "month"].iter().any(|w| lower.contains(w)),
                "how often messages come",
            ),
            (
                lower.contains("msg&data rates may apply"),
                "\"Msg&data rates may apply\"",
            ),
            (lower.contains("stop"), "how to stop (STOP)"),
        ]
        .into_iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, what)| what)
        .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::new(
                "replies.help_text",
                format!("must give {}", missing.join(", ")),
            ))
        }
    }

    /// `[email.inbound]`: an address to receive at, and for IMAP a server
    /// and a login.
    fn validate_inbound(&self) -> Result<(), ConfigError> {
        let inbound = &self.email.inbound;
        if !inbound.is_on() {
            return Ok(());
        }
        if inbound.address.parse::<lettre::Address>().is_err() {
            return Err(ConfigError::new(
                "email.inbound.address",
                "must be the agency's reply mailbox (name@domain) when email.inbound.transport is set",
            ));
        }
        if inbound.transport == InboundTransportKind::Imap {
            let imap = &inbound.imap;
            for (key, value) in [
                ("email.inbound.imap.host", imap.host.as_str()),
                ("email.inbound.imap.username", imap.username.as_str()),
                ("email.inbound.imap.mailbox", imap.mailbox.as_str()),
                ("email.inbound.imap.password", imap.password.expose_secret()),
            ] {
                if value.trim().is_empty() {
                    return Err(ConfigError::new(
                        key,
                        "is required when email.inbound.transport = \"imap\"",
                    ));
                }
            }
            if imap.timeout_seconds == 0 {
                return Err(ConfigError::new(
                    "email.inbound.imap.timeout_seconds",
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }

    fn validate_smtp(&self) -> Result<(), ConfigError> {
        let smtp = &self.email.smtp;
        if smtp.host.trim().is_empty() {
            return Err(ConfigError::new(
                "email.smtp.host",
                "is required when email.transport = \"smtp\"",
            ));
        }
        let has_password = !smtp.password.expose_secret().is_empty();
        if smtp.username.is_empty() && has_password {
            return Err(ConfigError::new(
                "email.smtp.username",
                "is required when email.smtp.password is set",
            ));
        }
        if !smtp.username.is_empty() && !has_password {
            return Err(ConfigError::new(
                "email.smtp.password",
                "is required when email.smtp.username is set",
            ));
        }
        if smtp.pool_size == 0 || smtp.timeout_seconds == 0 {
            return Err(ConfigError::new(
                "email.smtp.pool_size",
                "pool_size and timeout_seconds must be at least 1",
            ));
        }
        Ok(())
    }

    fn validate_twilio(&self) -> Result<(), ConfigError> {
        let twilio = &self.sms.twilio;
        let required = |key: &str, value: &str| {
            if value.trim().is_empty() {
                Err(ConfigError::new(
                    key,
                    "is required when sms.transport = \"twilio\"",
                ))
            } else {
                Ok(())
            }
        };
        required("sms.twilio.account_sid", &twilio.account_sid)?;
        required("sms.twilio.auth_token", twilio.auth_token.expose_secret())?;
        if twilio.api_key_sid.is_empty() != twilio.api_key_secret.expose_secret().is_empty() {
            return Err(ConfigError::new(
                "sms.twilio.api_key_secret",
                "api_key_sid and api_key_secret go together: set both or neither",
            ));
        }
        if !matches!(twilio.base_url.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "sms.twilio.base_url",
                "must be an http:// or https:// URL",
            ));
        }
        if twilio.timeout_seconds == 0 {
            return Err(ConfigError::new(
                "sms.twilio.timeout_seconds",
                "must be at least 1",
            ));
        }
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

/// The layers, lowest first: the built-in defaults, `file`, the environment,
/// then `--database-url`.
fn layers(file: Option<&Path>, database_url: Option<&str>) -> anyhow::Result<Figment> {
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
    Ok(figment)
}

/// Which layer a value at `path` came from, as an operator names it.
fn layer_name(metadata: &figment::Metadata, path: &[String]) -> String {
    if let Some(figment::Source::File(file)) = &metadata.source {
        return format!("the file {}", file.display());
    }
    if metadata.name.contains("environment") {
        let variable: Vec<String> = path.iter().map(|key| key.to_uppercase()).collect();
        return format!("the environment, REENGAGE__{}", variable.join("__"));
    }
    if metadata.name.contains("TOML") {
        return "the built-in defaults".to_owned();
    }
    "--database-url".to_owned()
}

/// The keys whose values are secrets: `config show` never prints them.
const SECRET_KEYS: &[&str] = &[
    "security.secret_key",
    "email.smtp.password",
    "email.inbound.imap.password",
    "sms.twilio.auth_token",
    "sms.twilio.api_key_secret",
];

/// Every effective setting, one `key = value` line each, with the layer that
/// set it; secrets (and a database URL's password) show as `[redacted]`.
/// Fails as [`Settings::load`] does, on an unknown key or a bad value.
pub fn show(file: Option<&Path>, database_url: Option<&str>) -> anyhow::Result<String> {
    Settings::load(file, database_url)?;
    let figment = layers(file, database_url)?;
    let root: figment::value::Value = figment.extract()?;
    let mut leaves = Vec::new();
    flatten(String::new(), &root, &mut leaves);
    let mut text = String::new();
    for (key, value) in leaves {
        let path: Vec<String> = key.split('.').map(str::to_owned).collect();
        let from = figment.find_metadata(&key).map_or_else(
            || "the built-in defaults".to_owned(),
            |m| layer_name(m, &path),
        );
        let shown = redacted(&key, &value)?;
        text.push_str(&format!("{key} = {shown}    # {from}\n"));
    }
    Ok(text)
}

/// The leaves of `value` with their dotted keys; a list is one leaf.
fn flatten(
    prefix: String,
    value: &figment::value::Value,
    out: &mut Vec<(String, figment::value::Value)>,
) {
    match value {
        figment::value::Value::Dict(_, dict) => {
            for (name, child) in dict {
                let key = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                flatten(key, child, out);
            }
        }
        leaf => out.push((prefix, leaf.clone())),
    }
}

/// A value as TOML, or `[redacted]` for a secret that is set.
fn redacted(key: &str, value: &figment::value::Value) -> anyhow::Result<String> {
    let text = value.as_str().unwrap_or_default();
    if SECRET_KEYS.contains(&key) && !text.is_empty() {
        return Ok("\"[redacted]\"".to_owned());
    }
    if key == "database.url"
        && let Ok(mut url) = Url::parse(text)
    {
        if url.password().is_some() {
            let _ = url.set_password(Some("REDACTED"));
        }
        return Ok(format!("\"{url}\""));
    }
    Ok(toml::Value::try_from(value)?.to_string())
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

/// Logs go to stderr, as text or JSON lines (`log.format`), at `RUST_LOG` if
/// set, else `log.level`. The first call wins.
pub fn init_tracing(log: &LogSettings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // The scheduler's own lines ("Job creator created") are noise to
        // an operator: each job run logs its own summary.
        tracing_subscriber::EnvFilter::new(format!(
            "{},sqlx=warn,tokio_cron_scheduler=warn",
            log.level
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
