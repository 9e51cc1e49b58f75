//! The word file: the shape of `config/words.toml`, read with an agency's
//! file of the same shape extending it.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

use super::lang::Lang;

const BUILT_IN_WORDS: &str = include_str!("../../../config/words.toml");

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ByLang {
    #[serde(default)]
    pub(super) en: Vec<String>,
    #[serde(default)]
    pub(super) es: Vec<String>,
}

impl ByLang {
    fn extend(&mut self, other: ByLang) {
        self.en.extend(other.en);
        self.es.extend(other.es);
    }

    pub(super) fn each(&self) -> impl Iterator<Item = (Lang, &str, &'static str)> {
        self.en
            .iter()
            .map(|r| (Lang::En, r.as_str(), "en"))
            .chain(self.es.iter().map(|r| (Lang::Es, r.as_str(), "es")))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClassRules {
    #[serde(default)]
    pub(super) en: Vec<String>,
    #[serde(default)]
    pub(super) es: Vec<String>,
    #[serde(default)]
    pub(super) except: ByLang,
    /// Rules no exception takes back.
    #[serde(default)]
    pub(super) firm: ByLang,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Keywords {
    #[serde(default)]
    pub(super) opt_out: Vec<String>,
    #[serde(default)]
    pub(super) opt_in: Vec<String>,
    #[serde(default)]
    pub(super) help: Vec<String>,
}

/// Words that together signal danger, with their weights: the crisis net
/// under the rules, for what no rule foresaw.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Signals {
    #[serde(default)]
    pub(super) threshold: Option<f64>,
    #[serde(default)]
    pub(super) en: HashMap<String, f64>,
    #[serde(default)]
    pub(super) es: HashMap<String, f64>,
}

/// `config/words.toml`, and an agency's file of the same shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WordFile {
    #[serde(default)]
    pub(super) ignore: Vec<String>,
    #[serde(default)]
    pub(super) courtesy: Vec<String>,
    #[serde(default)]
    pub(super) not_names: Vec<String>,
    #[serde(default)]
    pub(super) shortcuts: HashMap<String, String>,
    #[serde(default)]
    pub(super) numbers: HashMap<String, u32>,
    #[serde(default)]
    pub(super) sets: HashMap<String, Vec<String>>,
    #[serde(default)]
    pub(super) keywords: Keywords,
    #[serde(default)]
    pub(super) signals: Signals,
    #[serde(default)]
    pub(super) crisis: ClassRules,
    #[serde(default)]
    pub(super) deceased: ClassRules,
    #[serde(default)]
    pub(super) opt_out: ClassRules,
    #[serde(default)]
    pub(super) wrong_number: ClassRules,
    #[serde(default)]
    pub(super) help: ClassRules,
    #[serde(default)]
    pub(super) opt_in: ClassRules,
}

impl WordFile {
    /// The built-in lists, extended by the agency's `file` if it is set.
    pub(super) fn load(file: &Path) -> anyhow::Result<Self> {
        let mut lists = WordFile::parse(BUILT_IN_WORDS).context("the built-in word lists")?;
        if !file.as_os_str().is_empty() {
            let text = std::fs::read_to_string(file).with_context(|| {
                format!(
                    "config key `replies.words_file`: cannot read {}",
                    file.display()
                )
            })?;
            let extra = WordFile::parse(&text).with_context(|| {
                format!(
                    "config key `replies.words_file`: {} is not a word list",
                    file.display()
                )
            })?;
            lists.extend(extra);
        }
        Ok(lists)
    }

    pub(super) fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    /// Adds `other`'s entries to these; a shortcut or number it names again
    /// replaces this one's.
    fn extend(&mut self, other: WordFile) {
        self.ignore.extend(other.ignore);
        self.courtesy.extend(other.courtesy);
        self.not_names.extend(other.not_names);
        self.shortcuts.extend(other.shortcuts);
        self.numbers.extend(other.numbers);
        for (name, words) in other.sets {
            self.sets.entry(name).or_default().extend(words);
        }
        if other.signals.threshold.is_some() {
            self.signals.threshold = other.signals.threshold;
        }
        self.signals.en.extend(other.signals.en);
        self.signals.es.extend(other.signals.es);
        self.keywords.opt_out.extend(other.keywords.opt_out);
        self.keywords.opt_in.extend(other.keywords.opt_in);
        self.keywords.help.extend(other.keywords.help);
        for (mine, theirs) in [
            (&mut self.crisis, other.crisis),
            (&mut self.deceased, other.deceased),
            (&mut self.opt_out, other.opt_out),
            (&mut self.wrong_number, other.wrong_number),
            (&mut self.help, other.help),
            (&mut self.opt_in, other.opt_in),
        ] {
            mine.en.extend(theirs.en);
            mine.es.extend(theirs.es);
            mine.except.extend(theirs.except);
            mine.firm.extend(theirs.firm);
        }
    }
}
