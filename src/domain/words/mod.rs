//! The reply classifier: one pure function from a client's text to what it is
//! and which rules said so. The webhook uses it, and so will email replies, so
//! nothing here knows about channels.
//!
//! A text is normalised first, then matched against the rules of
//! `config/words.toml` (extended by `replies.words_file`):
//!
//! - **Normalising.** Case and accents are folded ("Más" is "mas"),
//!   apostrophes go ("don’t", "don't" and "dont" are one word), letters
//!   repeated for emphasis are read once ("pleeease"), a number is split from
//!   its unit ("800mg"), and the `shortcuts` table expands texting forms and
//!   contractions ("kms", "wanna", "dont"). Filler words (`ignore`) are
//!   dropped from the text and the rules alike.
//! - **Word forms.** A word of a rule matches its forms through the Snowball
//!   stemmer of the rule's language: "die" matches "dying" and "died".
//! - **Rules** are phrases with a small syntax (see [`Rule`]). Each class may
//!   list `except` rules: a benign idiom ("dying to see you") that covers the
//!   words a rule matched takes that one match back, and only that one.
//! - **Keywords** (STOP, HELP, START) count when a whole message (or, for
//!   opt-outs, a whole sentence) is the keyword, give or take courtesy words.
//!
//! The classes, by precedence: crisis, opt-out, wrong number, help, opt-in,
//! reply. A text can be several ("stop texting me, I want to die"), and the
//! caller acts on each. Rules are tuned for recall where safety or consent is
//! at stake: a false alarm costs a coach a minute, a miss can cost a life.

use std::collections::{HashMap, HashSet};

use rust_stemmers::{Algorithm, Stemmer};
use serde::{Deserialize, Serialize};
use unicode_normalization::char::{decompose_canonical, is_combining_mark};

pub mod evaluate;

/// What a reply is, in order of precedence.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::AsRefStr,
    strum::Display,
    strum::EnumString,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Class {
    Crisis,
    OptOut,
    WrongNumber,
    Help,
    OptIn,
    Reply,
}

/// The languages rules are written in; each has its own stemmer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Es,
}

const LANGS: [Lang; 2] = [Lang::En, Lang::Es];

impl Lang {
    fn index(self) -> usize {
        self as usize
    }

    fn algorithm(self) -> Algorithm {
        match self {
            Lang::En => Algorithm::English,
            Lang::Es => Algorithm::Spanish,
        }
    }
}

/// One rule that matched, for the coach to see why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Match {
    pub class: Class,
    /// The rule as the word list writes it (`keyword` for a keyword).
    pub rule: String,
    /// The client's words it matched, as they wrote them.
    pub text: String,
}

/// What a text is, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// Every class the text is, by precedence; `[Reply]` when nothing matched.
    pub classes: Vec<Class>,
    /// The whole text is one keyword (STOP, HELP, START), which the SMS
    /// provider answers itself.
    pub keyword: bool,
    pub matched: Vec<Match>,
}

impl Default for Classification {
    /// A plain reply: no class matched, no keyword.
    fn default() -> Self {
        Self {
            classes: vec![Class::Reply],
            keyword: false,
            matched: Vec::new(),
        }
    }
}

impl Classification {
    /// The class that decides what the reply is called.
    pub fn primary(&self) -> Class {
        self.classes.first().copied().unwrap_or(Class::Reply)
    }

    pub fn is(&self, class: Class) -> bool {
        self.classes.contains(&class)
    }

    /// The same reading with `class` taken back, as when what it says cannot
    /// apply (a "yes" is an opt-in only from a client who opted out). What is
    /// left is no keyword the provider answers, and with nothing left it is a
    /// reply.
    pub fn without(mut self, class: Class) -> Self {
        if self.is(class) {
            self.classes.retain(|c| *c != class);
            self.matched.retain(|m| m.class != class);
            self.keyword = false;
            if self.classes.is_empty() {
                self.classes.push(Class::Reply);
            }
        }
        self
    }
}

// ---------------------------------------------------------------- word file

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ByLang {
    #[serde(default)]
    en: Vec<String>,
    #[serde(default)]
    es: Vec<String>,
}

impl ByLang {
    fn extend(&mut self, other: ByLang) {
        self.en.extend(other.en);
        self.es.extend(other.es);
    }

    fn each(&self) -> impl Iterator<Item = (Lang, &str, &'static str)> {
        self.en
            .iter()
            .map(|r| (Lang::En, r.as_str(), "en"))
            .chain(self.es.iter().map(|r| (Lang::Es, r.as_str(), "es")))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassRules {
    #[serde(default)]
    en: Vec<String>,
    #[serde(default)]
    es: Vec<String>,
    #[serde(default)]
    except: ByLang,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keywords {
    #[serde(default)]
    opt_out: Vec<String>,
    #[serde(default)]
    opt_in: Vec<String>,
    #[serde(default)]
    help: Vec<String>,
}

/// Words that together signal danger, with their weights: the crisis net
/// under the rules, for what no rule foresaw.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Signals {
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    en: HashMap<String, f64>,
    #[serde(default)]
    es: HashMap<String, f64>,
}

/// `config/words.toml`, and an agency's file of the same shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WordFile {
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    courtesy: Vec<String>,
    #[serde(default)]
    not_names: Vec<String>,
    #[serde(default)]
    shortcuts: HashMap<String, String>,
    #[serde(default)]
    numbers: HashMap<String, u32>,
    #[serde(default)]
    sets: HashMap<String, Vec<String>>,
    #[serde(default)]
    keywords: Keywords,
    #[serde(default)]
    signals: Signals,
    #[serde(default)]
    crisis: ClassRules,
    #[serde(default)]
    opt_out: ClassRules,
    #[serde(default)]
    wrong_number: ClassRules,
    #[serde(default)]
    help: ClassRules,
    #[serde(default)]
    opt_in: ClassRules,
}

impl WordFile {
    pub(super) fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    /// Adds `other`'s entries to these; a shortcut or number it names again
    /// replaces this one's.
    pub(super) fn extend(&mut self, other: WordFile) {
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
            (&mut self.opt_out, other.opt_out),
            (&mut self.wrong_number, other.wrong_number),
            (&mut self.help, other.help),
            (&mut self.opt_in, other.opt_in),
        ] {
            mine.en.extend(theirs.en);
            mine.es.extend(theirs.es);
            mine.except.extend(theirs.except);
        }
    }
}

// ---------------------------------------------------------------- text

/// One word of a text, in the forms rules compare.
#[derive(Debug, Clone)]
struct Token {
    /// Folded, with runs of three or more letters cut to two.
    raw: String,
    /// With every run of a letter cut to one ("pleeease" → "please").
    squeezed: String,
    /// Stems by language (two when the word was stretched for emphasis).
    stems: [Vec<String>; 2],
    number: Option<u32>,
    /// Written with a capital and then small letters ("Devon"), as a name is.
    capitalized: bool,
    /// The bytes of the original text it came from.
    span: (usize, usize),
    /// The clause it is in: sentences and comma-separated parts count apart.
    sentence: u32,
}

/// A word as written, before shortcuts expand it.
struct Word {
    /// Folded, apostrophes kept as `'`.
    text: String,
    capitalized: bool,
    span: (usize, usize),
    sentence: u32,
}

fn is_apostrophe(c: char) -> bool {
    matches!(
        c,
        '\'' | '\u{2019}' | '\u{2018}' | '`' | '\u{b4}' | '\u{2bc}'
    )
}

fn ends_clause(c: char) -> bool {
    matches!(
        c,
        '.' | '!' | '?' | ';' | ',' | '\n' | '\u{2026}' | '\u{a1}' | '\u{bf}'
    )
}

/// Whether a word as written looks like a name: a capital, then small letters.
fn looks_capitalized(original: &str) -> bool {
    let mut letters = original.chars().filter(|c| c.is_alphabetic());
    letters.next().is_some_and(char::is_uppercase)
        && letters.clone().count() > 0
        && letters.all(|c| !c.is_uppercase())
}

/// A character as its folded letters: lowercase, accents stripped.
fn fold(c: char, out: &mut String) {
    for lower in c.to_lowercase() {
        decompose_canonical(lower, |d| {
            if !is_combining_mark(d) {
                out.push(d);
            }
        });
    }
}

/// Runs of three or more of one letter cut to two ("killlll" → "kill").
fn collapse_runs(word: &str) -> (String, bool) {
    let mut out = String::with_capacity(word.len());
    let mut stretched = false;
    let mut last = None;
    let mut run = 0;
    for c in word.chars() {
        if Some(c) == last {
            run += 1;
        } else {
            last = Some(c);
            run = 1;
        }
        if run <= 2 {
            out.push(c);
        } else {
            stretched = true;
        }
    }
    (out, stretched)
}

fn squeeze(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

/// Splits a text into folded words with their places, keeping the single
/// symbols the shortcuts know (an emoji such as 💊, or "#").
fn words(text: &str, symbols: &HashSet<char>) -> Vec<Word> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    let mut end = 0;
    let mut digits = false;
    let mut sentence = 0;
    let mut folded = String::new();
    let flush = |current: &mut String, out: &mut Vec<Word>, start: usize, end: usize, sentence| {
        let trimmed = current.trim_matches('\'');
        if !trimmed.is_empty() {
            out.push(Word {
                text: trimmed.to_owned(),
                capitalized: looks_capitalized(text.get(start..end).unwrap_or_default()),
                span: (start, end),
                sentence,
            });
        }
        current.clear();
    };
    for (i, c) in text.char_indices() {
        if is_apostrophe(c) {
            if !current.is_empty() {
                current.push('\'');
            }
            continue;
        }
        folded.clear();
        fold(c, &mut folded);
        for f in folded.chars() {
            if f.is_alphanumeric() {
                let is_digit = f.is_ascii_digit();
                if !current.is_empty() && is_digit != digits {
                    flush(&mut current, &mut out, start, end, sentence);
                }
                if current.is_empty() {
                    start = i;
                }
                digits = is_digit;
                current.push(f);
                end = i + c.len_utf8();
            } else {
                flush(&mut current, &mut out, start, end, sentence);
                if ends_clause(f) {
                    sentence += 1;
                } else if symbols.contains(&f) {
                    out.push(Word {
                        text: f.to_string(),
                        capitalized: false,
                        span: (i, i + c.len_utf8()),
                        sentence,
                    });
                }
            }
        }
    }
    flush(&mut current, &mut out, start, end, sentence);
    out
}

/// Turns text into tokens: shortcuts, fillers, numbers and stems.
struct Normaliser {
    shortcuts: HashMap<String, Vec<String>>,
    symbols: HashSet<char>,
    ignore: HashSet<String>,
    numbers: HashMap<String, u32>,
    stemmers: [Stemmer; 2],
}

impl Normaliser {
    fn new(file: &WordFile) -> Self {
        let no_symbols = HashSet::new();
        let fold_word = |w: &str| -> Vec<String> {
            words(w, &no_symbols).into_iter().map(|w| w.text).collect()
        };
        let mut shortcuts = HashMap::new();
        let mut symbols = HashSet::new();
        for (from, to) in &file.shortcuts {
            let from = from.trim();
            let mut chars = from.chars();
            let key = match (chars.next(), chars.next()) {
                (Some(c), None) if !c.is_alphanumeric() => {
                    symbols.insert(c);
                    c.to_string()
                }
                _ => fold_word(from).join(""),
            };
            let to: Vec<String> = fold_word(to)
                .into_iter()
                .map(|w| w.replace('\'', ""))
                .collect();
            shortcuts.insert(key, to);
        }
        let ignore = file
            .ignore
            .iter()
            .flat_map(|w| fold_word(w))
            .map(|w| w.replace('\'', ""))
            .collect();
        let numbers = file
            .numbers
            .iter()
            .map(|(w, n)| (fold_word(w).join(""), *n))
            .collect();
        Self {
            shortcuts,
            symbols,
            ignore,
            numbers,
            stemmers: LANGS.map(|l| Stemmer::create(l.algorithm())),
        }
    }

    fn tokens(&self, text: &str) -> Vec<Token> {
        let mut out = Vec::new();
        let mut stems_seen = HashMap::new();
        for word in words(text, &self.symbols) {
            let plain = word.text.replace('\'', "");
            let (collapsed, stretched) = collapse_runs(&plain);
            let squeezed = squeeze(&plain);
            let expansion = self
                .shortcuts
                .get(&word.text)
                .or_else(|| self.shortcuts.get(&plain))
                .or_else(|| self.shortcuts.get(&collapsed))
                .or_else(|| stretched.then(|| self.shortcuts.get(&squeezed)).flatten());
            match expansion {
                Some(parts) => {
                    for part in parts {
                        self.push(&mut out, &mut stems_seen, part, false, &word);
                    }
                }
                None => self.push(&mut out, &mut stems_seen, &collapsed, stretched, &word),
            }
        }
        out
    }

    /// A word's stem in `lang`; a word of three letters or fewer is its own
    /// (the stemmers leave nearly all of them so, and it is the commonest
    /// kind of word in a text).
    fn stem(&self, lang: Lang, word: &str) -> String {
        if word.chars().count() <= 3 {
            word.to_owned()
        } else {
            self.stemmers[lang.index()].stem(word).into_owned()
        }
    }

    fn push(
        &self,
        out: &mut Vec<Token>,
        stems_seen: &mut HashMap<String, [Vec<String>; 2]>,
        raw: &str,
        stretched: bool,
        word: &Word,
    ) {
        if raw.is_empty() || self.ignore.contains(raw) {
            return;
        }
        let squeezed = squeeze(raw);
        // A long text says the same words again: each is stemmed once.
        let stems = match stems_seen.get(raw) {
            Some(stems) if !stretched => stems.clone(),
            _ => {
                let stems = LANGS.map(|lang| {
                    let mut stems = vec![self.stem(lang, raw)];
                    if stretched {
                        stems.push(self.stem(lang, &squeezed));
                    }
                    stems
                });
                if !stretched {
                    stems_seen.insert(raw.to_owned(), stems.clone());
                }
                stems
            }
        };
        let number = raw.parse().ok().or_else(|| self.numbers.get(raw).copied());
        out.push(Token {
            raw: raw.to_owned(),
            squeezed,
            stems,
            number,
            capitalized: word.capitalized,
            span: word.span,
            sentence: word.sentence,
        });
    }
}

// ---------------------------------------------------------------- rules

/// A word of a rule, in the forms tokens are compared in.
#[derive(Debug, Clone)]
struct Literal {
    raw: String,
    squeezed: String,
    stem: String,
    lang: Lang,
}

impl Literal {
    fn new(token: Token, normaliser: &Normaliser, lang: Lang) -> Self {
        // A Spanish verb with its pronoun ("matarme": kill myself) means what
        // the pronoun says, and the stemmer drops the pronoun: such a word
        // matches as written, never by its stem.
        let clitic = lang == Lang::Es
            && ["me", "te", "se", "nos"].iter().any(|p| {
                token.raw.strip_suffix(p).is_some_and(|verb| {
                    ["ar", "er", "ir", "ando", "iendo"]
                        .iter()
                        .any(|e| verb.ends_with(e))
                })
            });
        let stem = normaliser.stem(lang, &token.raw);
        // A stem cut down to three letters or fewer ("morir" → "mor") matches
        // words of another language and meaning ("more"): such a word matches
        // as written.
        let too_short = stem.chars().count() < 4 && stem != token.raw;
        Self {
            stem: if clitic || too_short {
                String::new()
            } else {
                stem
            },
            squeezed: token.squeezed,
            raw: token.raw,
            lang,
        }
    }

    fn matches(&self, token: &Token) -> bool {
        token.raw == self.raw
            || token.squeezed == self.squeezed
            || (!self.stem.is_empty() && token.stems[self.lang.index()].contains(&self.stem))
    }
}

/// A compiled piece of a rule.
#[derive(Debug, Clone)]
enum Node {
    Literal(Literal),
    /// `word*`: any word starting so.
    Prefix(String),
    /// `*`: any one word.
    Any,
    /// `..`: up to this many words.
    Gap(usize),
    /// `#` or `#10+`: a number (digits or a number word) of at least this.
    Number(u32),
    /// `{name}`: the client's first or preferred name, or (when the text's
    /// writer is not known) a word written as a name is.
    Name,
    /// `^`: the start of the text.
    Start,
    /// `$`: the end of a clause (or of the text).
    End,
    /// `(a|b c)`, or `[a|b c]` when it may be left out.
    Group {
        alternatives: Vec<Vec<Node>>,
        optional: bool,
    },
}

/// A rule as compiled: its class, its text as written, its pieces.
///
/// The syntax, word by word:
/// - `word`: the word or one of its forms ("die" matches "dying", "died");
/// - `word*`: any word beginning so (`suicid*`);
/// - `*`: any one word; `..`: up to three words;
/// - `#`: a number, in digits or words; `#10+`: a number of at least 10;
/// - `@name`: one of the words or phrases of the set `name`;
/// - `{name}`: the client's name (or, not knowing it, a capitalised word);
/// - `^`: the start of the text; `$`: the end of a clause or of the text;
/// - `(a|b c)`: one of these; `[a|b c]`: one of these, or nothing.
#[derive(Debug, Clone)]
struct Rule {
    class: Class,
    text: String,
    nodes: Vec<Node>,
    exception: bool,
}

const GAP_WORDS: usize = 3;

/// How deep sets may name other sets.
const SET_DEPTH: usize = 4;

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    source: &'a str,
    normaliser: &'a Normaliser,
    sets: &'a HashMap<String, Vec<String>>,
    lang: Lang,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(
        source: &'a str,
        normaliser: &'a Normaliser,
        sets: &'a HashMap<String, Vec<String>>,
        lang: Lang,
        depth: usize,
    ) -> Self {
        Self {
            chars: source.char_indices().peekable(),
            source,
            normaliser,
            sets,
            lang,
            depth,
        }
    }

    /// `@name`: the set's entries as one group.
    fn set(&self, name: &str) -> Result<Node, String> {
        let entries = self
            .sets
            .get(name)
            .ok_or_else(|| format!("there is no set `@{name}` in [sets]"))?;
        if self.depth >= SET_DEPTH {
            return Err(format!("`@{name}`: sets name each other too deeply"));
        }
        let mut alternatives = Vec::new();
        for entry in entries {
            let mut inner =
                Parser::new(entry, self.normaliser, self.sets, self.lang, self.depth + 1);
            alternatives.extend(
                inner
                    .alternatives(None)
                    .map_err(|e| format!("set `@{name}`: `{entry}`: {e}"))?
                    .into_iter()
                    .map(|(nodes, _)| nodes)
                    .filter(|nodes| !nodes.is_empty()),
            );
        }
        Ok(Node::Group {
            alternatives,
            optional: false,
        })
    }

    /// Alternatives up to `close` (or the end, when `close` is `None`), each
    /// with whether anything was written in it: `(a|)` has an empty one, so
    /// the group may match nothing; `(a|lol)` does not, though the filler
    /// "lol" leaves nothing to match.
    fn alternatives(&mut self, close: Option<char>) -> Result<Vec<(Vec<Node>, bool)>, String> {
        let mut alternatives = vec![(Vec::new(), false)];
        loop {
            let last = alternatives.len() - 1;
            match self.chars.peek().map(|(_, c)| *c) {
                None => {
                    return match close {
                        None => Ok(alternatives),
                        Some(c) => Err(format!("a `{c}` is missing")),
                    };
                }
                Some(c) if Some(c) == close => {
                    self.chars.next();
                    return Ok(alternatives);
                }
                Some(')' | ']') => {
                    let (_, c) = self.chars.next().unwrap_or_default();
                    return Err(format!("a `{c}` closes nothing"));
                }
                Some('|') => {
                    self.chars.next();
                    alternatives.push((Vec::new(), false));
                }
                Some(c) if c.is_whitespace() => {
                    self.chars.next();
                }
                Some(open @ ('(' | '[')) => {
                    self.chars.next();
                    let close = if open == '(' { ')' } else { ']' };
                    let inner = self.alternatives(Some(close))?;
                    alternatives[last].1 = true;
                    if let Some(group) = group(inner, open == '[') {
                        alternatives[last].0.push(group);
                    }
                }
                Some(_) => {
                    let nodes = self.item()?;
                    alternatives[last].1 = true;
                    alternatives[last].0.extend(nodes);
                }
            }
        }
    }

    /// One item up to a space, bracket or bar.
    fn item(&mut self) -> Result<Vec<Node>, String> {
        let start = self.chars.peek().map_or(0, |(i, _)| *i);
        let mut end = start;
        while let Some((i, c)) = self.chars.peek().copied() {
            if c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '|') {
                break;
            }
            end = i + c.len_utf8();
            self.chars.next();
        }
        let item = &self.source[start..end];
        if item == "*" {
            return Ok(vec![Node::Any]);
        }
        if item == ".." {
            return Ok(vec![Node::Gap(GAP_WORDS)]);
        }
        if let Some(name) = item.strip_prefix('@') {
            return Ok(vec![self.set(name)?]);
        }
        if item == "{name}" {
            return Ok(vec![Node::Name]);
        }
        if item == "^" {
            return Ok(vec![Node::Start]);
        }
        if item == "$" {
            return Ok(vec![Node::End]);
        }
        if let Some(rest) = item.strip_prefix('#') {
            let min = match rest.strip_suffix('+') {
                Some(n) => n
                    .parse()
                    .map_err(|_| format!("`{item}` is not `#` or `#N+`"))?,
                None if rest.is_empty() => 0,
                None => return Err(format!("`{item}` is not `#` or `#N+`")),
            };
            return Ok(vec![Node::Number(min)]);
        }
        if let Some(prefix) = item.strip_suffix('*') {
            let folded: String = words(prefix, &HashSet::new())
                .into_iter()
                .map(|w| w.text.replace('\'', ""))
                .collect();
            if folded.is_empty() {
                return Err(format!("`{item}` has no letters before its `*`"));
            }
            return Ok(vec![Node::Prefix(folded)]);
        }
        Ok(self
            .normaliser
            .tokens(item)
            .into_iter()
            .map(|t| Node::Literal(Literal::new(t, self.normaliser, self.lang)))
            .collect())
    }
}

/// A group of alternatives, optional when written `[…]` or with an empty
/// alternative; `None` when nothing in it is left to match (all fillers).
fn group(alternatives: Vec<(Vec<Node>, bool)>, optional: bool) -> Option<Node> {
    let optional = optional || alternatives.iter().any(|(_, written)| !written);
    let alternatives: Vec<Vec<Node>> = alternatives
        .into_iter()
        .map(|(nodes, _)| nodes)
        .filter(|nodes| !nodes.is_empty())
        .collect();
    (!alternatives.is_empty()).then_some(Node::Group {
        alternatives,
        optional,
    })
}

/// Where a rule can start: the words it can begin with, or anywhere.
#[derive(Default)]
struct Starts<'a> {
    literals: Vec<&'a Literal>,
    prefixes: Vec<&'a str>,
    number: bool,
    anywhere: bool,
}

/// Adds where `nodes` can start to `starts`; returns whether they can match
/// no words at all.
fn starts<'a>(nodes: &'a [Node], into: &mut Starts<'a>) -> bool {
    for node in nodes {
        let nullable = match node {
            Node::Literal(l) => {
                into.literals.push(l);
                false
            }
            Node::Prefix(p) => {
                into.prefixes.push(p);
                false
            }
            Node::Any | Node::Name => {
                into.anywhere = true;
                false
            }
            Node::Start | Node::End => {
                into.anywhere = true;
                true
            }
            Node::Gap(_) => {
                into.anywhere = true;
                true
            }
            Node::Number(_) => {
                into.number = true;
                false
            }
            Node::Group {
                alternatives,
                optional,
            } => {
                let mut nullable = *optional;
                for alternative in alternatives {
                    nullable |= starts(alternative, into);
                }
                nullable
            }
        };
        if !nullable {
            return false;
        }
    }
    true
}

/// The text being matched, and what is known of who wrote it.
struct Subject<'a> {
    tokens: &'a [Token],
    /// The client's names, folded.
    names: &'a [String],
    /// Capitalised words that are not names ("Monday", "OK").
    not_names: &'a HashSet<String>,
}

impl Subject<'_> {
    fn is_name(&self, token: &Token) -> bool {
        self.names.contains(&token.raw)
            || (token.capitalized && !self.not_names.contains(&token.raw))
    }

    /// Matches `nodes` at token `i`, then hands the end to `then`.
    fn match_at(&self, nodes: &[Node], i: usize, then: &mut dyn FnMut(usize) -> bool) -> bool {
        let Some((node, rest)) = nodes.split_first() else {
            return then(i);
        };
        let token = self.tokens.get(i);
        let next =
            |ok: bool, then: &mut dyn FnMut(usize) -> bool| ok && self.match_at(rest, i + 1, then);
        match node {
            Node::Literal(l) => next(token.is_some_and(|t| l.matches(t)), then),
            Node::Prefix(p) => next(token.is_some_and(|t| t.raw.starts_with(p.as_str())), then),
            Node::Any => next(token.is_some(), then),
            Node::Name => next(token.is_some_and(|t| self.is_name(t)), then),
            Node::Number(min) => next(
                token.is_some_and(|t| t.number.is_some_and(|n| n >= *min)),
                then,
            ),
            Node::Start => i == 0 && self.match_at(rest, i, then),
            Node::End => {
                let ends = match (i.checked_sub(1).and_then(|p| self.tokens.get(p)), token) {
                    (_, None) => true,
                    (Some(before), Some(next)) => before.sentence != next.sentence,
                    (None, Some(_)) => false,
                };
                ends && self.match_at(rest, i, then)
            }
            Node::Gap(n) => (0..=*n)
                .filter(|g| i + g <= self.tokens.len())
                .any(|g| self.match_at(rest, i + g, then)),
            Node::Group {
                alternatives,
                optional,
            } => {
                alternatives
                    .iter()
                    .any(|a| self.match_at(a, i, &mut |j| self.match_at(rest, j, then)))
                    || (*optional && self.match_at(rest, i, then))
            }
        }
    }
}

/// The compiled word lists.
pub struct Words {
    normaliser: Normaliser,
    rules: Vec<Rule>,
    /// Rules by a word they can start with, in each form a token is looked up by.
    by_raw: HashMap<String, Vec<usize>>,
    by_squeezed: HashMap<String, Vec<usize>>,
    by_stem: [HashMap<String, Vec<usize>>; 2],
    by_prefix: Vec<(String, usize)>,
    by_number: Vec<usize>,
    anywhere: Vec<usize>,
    courtesy: HashSet<String>,
    not_names: HashSet<String>,
    opt_out_keywords: HashSet<String>,
    opt_in_keywords: HashSet<String>,
    help_keywords: HashSet<String>,
    /// The crisis signals, their weights, and where to find them by word.
    signals: Vec<(Literal, f64)>,
    signal_threshold: f64,
    signals_by: HashMap<String, Vec<usize>>,
}

const BUILT_IN_WORDS: &str = include_str!("../../../config/words.toml");

impl Words {
    /// The built-in lists, extended by the agency's `file` if it is set.
    pub fn load(file: &std::path::Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
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
        Self::compile(&lists).with_context(|| {
            format!(
                "config key `replies.words_file` ({}) or the built-in lists",
                file.display()
            )
        })
    }

    /// Compiles a word file. An error names the list and the rule.
    pub(super) fn compile(file: &WordFile) -> anyhow::Result<Self> {
        let normaliser = Normaliser::new(file);
        let mut rules = Vec::new();
        for (class, name, lists) in [
            (Class::Crisis, "crisis", &file.crisis),
            (Class::OptOut, "opt_out", &file.opt_out),
            (Class::WrongNumber, "wrong_number", &file.wrong_number),
            (Class::Help, "help", &file.help),
            (Class::OptIn, "opt_in", &file.opt_in),
        ] {
            let plain = ByLang {
                en: lists.en.clone(),
                es: lists.es.clone(),
            };
            for (exception, list) in [(false, &plain), (true, &lists.except)] {
                for (lang, text, lang_name) in list.each() {
                    let mut parser = Parser::new(text, &normaliser, &file.sets, lang, 0);
                    let place = if exception {
                        format!("{name}.except.{lang_name}")
                    } else {
                        format!("{name}.{lang_name}")
                    };
                    let alternatives = parser
                        .alternatives(None)
                        .map_err(|e| anyhow::anyhow!("word list `{place}`: `{text}`: {e}"))?;
                    let nodes = match alternatives.len() {
                        1 => alternatives
                            .into_iter()
                            .next()
                            .map(|(nodes, _)| nodes)
                            .unwrap_or_default(),
                        _ => group(alternatives, false).into_iter().collect(),
                    };
                    if starts(&nodes, &mut Starts::default()) {
                        anyhow::bail!(
                            "word list `{place}`: `{text}` can match no words at all \
                             (every word in it is optional or a filler)"
                        );
                    }
                    rules.push(Rule {
                        class,
                        text: text.trim().to_owned(),
                        nodes,
                        exception,
                    });
                }
            }
        }
        let keywords = |list: &[String]| -> HashSet<String> {
            list.iter()
                .flat_map(|k| normaliser.tokens(k))
                .map(|t| t.raw)
                .collect()
        };
        let mut words = Self {
            courtesy: keywords(&file.courtesy),
            not_names: keywords(&file.not_names),
            opt_out_keywords: keywords(&file.keywords.opt_out),
            opt_in_keywords: keywords(&file.keywords.opt_in),
            help_keywords: keywords(&file.keywords.help),
            normaliser,
            rules: Vec::new(),
            by_raw: HashMap::new(),
            by_squeezed: HashMap::new(),
            by_stem: [HashMap::new(), HashMap::new()],
            by_prefix: Vec::new(),
            by_number: Vec::new(),
            anywhere: Vec::new(),
            signals: Vec::new(),
            signal_threshold: file.signals.threshold.unwrap_or(0.0),
            signals_by: HashMap::new(),
        };
        for (lang, list, name) in [
            (Lang::En, &file.signals.en, "en"),
            (Lang::Es, &file.signals.es, "es"),
        ] {
            let mut entries: Vec<(&String, &f64)> = list.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (word, weight) in entries {
                let mut tokens = words.normaliser.tokens(word);
                if tokens.len() != 1 {
                    anyhow::bail!(
                        "word list `signals.{name}`: `{word}` must be one word (not a filler)"
                    );
                }
                let literal = Literal::new(tokens.remove(0), &words.normaliser, lang);
                let index = words.signals.len();
                for key in [&literal.raw, &literal.squeezed, &literal.stem] {
                    if !key.is_empty() {
                        let entry = words.signals_by.entry(key.clone()).or_default();
                        if !entry.contains(&index) {
                            entry.push(index);
                        }
                    }
                }
                words.signals.push((literal, *weight));
            }
        }
        for (index, rule) in rules.iter().enumerate() {
            let mut s = Starts::default();
            starts(&rule.nodes, &mut s);
            if s.anywhere {
                words.anywhere.push(index);
                continue;
            }
            for l in s.literals {
                words.by_raw.entry(l.raw.clone()).or_default().push(index);
                words
                    .by_squeezed
                    .entry(l.squeezed.clone())
                    .or_default()
                    .push(index);
                words.by_stem[l.lang.index()]
                    .entry(l.stem.clone())
                    .or_default()
                    .push(index);
            }
            words
                .by_prefix
                .extend(s.prefixes.into_iter().map(|p| (p.to_owned(), index)));
            if s.number {
                words.by_number.push(index);
            }
        }
        words.rules = rules;
        Ok(words)
    }

    /// How many rules the lists hold.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// What `text` is, and which rules said so, not knowing who wrote it.
    pub fn classify(&self, text: &str) -> Classification {
        self.classify_from(text, &[])
    }

    /// What `text` is, written to the client with these names (first and
    /// preferred), for rules that say `{name}`.
    pub fn classify_from(&self, text: &str, names: &[&str]) -> Classification {
        let names: Vec<String> = names
            .iter()
            .flat_map(|n| self.normaliser.tokens(n))
            .map(|t| t.raw)
            .collect();
        let tokens = self.normaliser.tokens(text);
        let subject = Subject {
            tokens: &tokens,
            names: &names,
            not_names: &self.not_names,
        };
        let mut matched = Vec::new();
        let mut classes = Vec::new();
        let keyword = self.keywords(text, &tokens, &mut classes, &mut matched);

        // Every match of every rule: (rule, first token, end). All of them,
        // since an exception may take back one place a rule matched but not
        // another.
        let mut found: Vec<(usize, usize, usize)> = Vec::new();
        let mut tried = vec![usize::MAX; self.rules.len()];
        let mut candidates = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            candidates.clear();
            candidates.extend_from_slice(&self.anywhere);
            for hit in [
                self.by_raw.get(&token.raw),
                self.by_squeezed.get(&token.squeezed),
            ]
            .into_iter()
            .flatten()
            {
                candidates.extend_from_slice(hit);
            }
            for lang in LANGS {
                for stem in &token.stems[lang.index()] {
                    if let Some(hit) = self.by_stem[lang.index()].get(stem) {
                        candidates.extend_from_slice(hit);
                    }
                }
            }
            candidates.extend(
                self.by_prefix
                    .iter()
                    .filter(|(p, _)| token.raw.starts_with(p.as_str()))
                    .map(|(_, r)| *r),
            );
            if token.number.is_some() {
                candidates.extend_from_slice(&self.by_number);
            }
            for &r in &candidates {
                if tried[r] == i {
                    continue;
                }
                tried[r] = i;
                let mut end = None;
                if subject.match_at(&self.rules[r].nodes, i, &mut |j| {
                    end = Some(j);
                    j > i
                }) {
                    found.push((r, i, end.unwrap_or(i)));
                }
            }
        }
        found.sort_unstable();
        let mut shown = HashSet::new();
        for &(r, start, end) in &found {
            let rule = &self.rules[r];
            if rule.exception || shown.contains(&r) {
                continue;
            }
            let excused = found.iter().any(|&(x, s, e)| {
                let other = &self.rules[x];
                other.exception && other.class == rule.class && s < end && start < e
            });
            if excused {
                continue;
            }
            shown.insert(r);
            matched.push(Match {
                class: rule.class,
                rule: rule.text.clone(),
                text: excerpt(text, &tokens[start..end]),
            });
            classes.push(rule.class);
        }
        if !classes.contains(&Class::Crisis)
            && let Some(signal) = self.signal_match(text, &tokens, &found)
        {
            matched.push(signal);
            classes.push(Class::Crisis);
        }
        classes.sort_unstable();
        classes.dedup();
        if classes.is_empty() {
            classes.push(Class::Reply);
        }
        Classification {
            classes,
            keyword,
            matched,
        }
    }

    /// The crisis net: the weights of the distinct signal words in the text
    /// (outside benign idioms the crisis exceptions cover), when they reach
    /// the threshold.
    fn signal_match(
        &self,
        text: &str,
        tokens: &[Token],
        found: &[(usize, usize, usize)],
    ) -> Option<Match> {
        if self.signal_threshold <= 0.0 {
            return None;
        }
        let excused = |i: usize| {
            found.iter().any(|&(r, s, e)| {
                let rule = &self.rules[r];
                rule.exception && rule.class == Class::Crisis && s <= i && i < e
            })
        };
        let mut hit = vec![false; self.signals.len()];
        let mut score = 0.0;
        let mut words = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            if excused(i) {
                continue;
            }
            let keys = std::iter::once(&token.raw)
                .chain(std::iter::once(&token.squeezed))
                .chain(token.stems.iter().flatten());
            for key in keys {
                for &s in self.signals_by.get(key).into_iter().flatten() {
                    let (literal, weight) = &self.signals[s];
                    if !hit[s] && literal.matches(token) {
                        hit[s] = true;
                        score += weight;
                        words.push(excerpt(text, std::slice::from_ref(token)));
                    }
                }
            }
        }
        (score >= self.signal_threshold).then(|| Match {
            class: Class::Crisis,
            rule: format!("signals {score:.1} of {}", self.signal_threshold),
            text: words.join(", "),
        })
    }

    /// Keywords: a whole message of HELP or START (courtesy words aside), a
    /// whole sentence of STOP. Returns whether the text is one bare keyword.
    fn keywords(
        &self,
        text: &str,
        tokens: &[Token],
        classes: &mut Vec<Class>,
        matched: &mut Vec<Match>,
    ) -> bool {
        let meaningful: Vec<&Token> = tokens
            .iter()
            .filter(|t| !self.courtesy.contains(&t.raw) && !self.courtesy.contains(&t.squeezed))
            .collect();
        let all_in = |set: &HashSet<String>, words: &[&Token]| {
            !words.is_empty()
                && words
                    .iter()
                    .all(|t| set.contains(&t.raw) || set.contains(&t.squeezed))
        };
        let mut note = |class: Class, words: &[&Token]| {
            classes.push(class);
            let spans: Vec<Token> = words.iter().map(|t| (*t).clone()).collect();
            matched.push(Match {
                class,
                rule: "keyword".into(),
                text: excerpt(text, &spans),
            });
        };
        let sentences = tokens.last().map_or(0, |t| t.sentence + 1);
        for sentence in 0..sentences {
            let words: Vec<&Token> = meaningful
                .iter()
                .copied()
                .filter(|t| t.sentence == sentence)
                .collect();
            if all_in(&self.opt_out_keywords, &words) {
                note(Class::OptOut, &words);
                break;
            }
        }
        if all_in(&self.help_keywords, &meaningful) {
            note(Class::Help, &meaningful);
        }
        if all_in(&self.opt_in_keywords, &meaningful) {
            note(Class::OptIn, &meaningful);
        }
        tokens.len() == 1 && meaningful.len() == 1 && !classes.is_empty()
    }
}

/// The original words under these tokens.
fn excerpt(text: &str, tokens: &[Token]) -> String {
    match (tokens.first(), tokens.last()) {
        (Some(first), Some(last)) => text
            .get(first.span.0..last.span.1.max(first.span.0))
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(file: &str) -> Words {
        Words::compile(&WordFile::parse(file).unwrap()).unwrap()
    }

    const SMALL: &str = r##"
        ignore = ["just", "really"]
        courtesy = ["please", "now"]
        [shortcuts]
        kms = "kill myself"
        dont = "do not"
        wanna = "want to"
        "💊" = "pill"
        [numbers]
        forty = 40
        [keywords]
        opt_out = ["stop"]
        help = ["help"]
        [crisis]
        en = ["kill myself", "want to (die|be dead)", "(do not|never) want to be (here|alive) [anymore]", "took #10+ .. pill", "# mg", "suicid*"]
        es = ["me quiero matar"]
        except = { en = ["dying to"] }
        [opt_out]
        en = ["stop (texting|messaging) me"]
    "##;

    fn classes(w: &Words, text: &str) -> Vec<Class> {
        w.classify(text).classes
    }

    #[test]
    fn normalising_folds_case_accents_apostrophes_and_stretched_letters() {
        let w = words(SMALL);
        for text in [
            "I don't want to be here anymore",
            "i dont wanna be here",
            "I DON’T WANT TO BE HERE ANYMORE",
            "i just dont want to be alive",
            "i dont wanna be heeeere",
        ] {
            assert_eq!(classes(&w, text), [Class::Crisis], "{text}");
        }
        assert_eq!(classes(&w, "ME QUIERO MATÁR"), [Class::Crisis]);
        assert_eq!(classes(&w, "kmsss"), [Class::Crisis]);
    }

    #[test]
    fn word_forms_numbers_units_and_emoji_match() {
        let w = words(SMALL);
        assert_eq!(classes(&w, "I want to die"), [Class::Crisis]);
        assert_eq!(classes(&w, "wanting to die"), [Class::Crisis]);
        assert_eq!(classes(&w, "took forty of my pills"), [Class::Crisis]);
        assert_eq!(classes(&w, "took 40 💊"), [Class::Crisis]);
        assert_eq!(classes(&w, "took 2 pills for my head"), [Class::Reply]);
        assert_eq!(classes(&w, "800mg"), [Class::Crisis]);
        assert_eq!(classes(&w, "thinking about suicide"), [Class::Crisis]);
        assert_eq!(classes(&w, "feeling suicidal"), [Class::Crisis]);
    }

    #[test]
    fn an_exception_takes_back_only_the_match_it_covers() {
        let w = words(&SMALL.replace(
            "\"want to (die|be dead)\"",
            "\"want to (die|be dead)\", \"dying\"",
        ));
        assert_eq!(classes(&w, "dying to see you"), [Class::Reply]);
        assert_eq!(
            classes(&w, "dying to see you, but i am dying"),
            [Class::Crisis]
        );
    }

    #[test]
    fn keywords_are_whole_messages_or_for_stop_whole_sentences() {
        let w = words(SMALL);
        let stop = w.classify("STOP!!");
        assert_eq!(stop.classes, [Class::OptOut]);
        assert!(stop.keyword);
        let polite = w.classify("stop please");
        assert_eq!(polite.classes, [Class::OptOut]);
        assert!(!polite.keyword);
        assert_eq!(classes(&w, "ok. Stop now."), [Class::OptOut]);
        assert_eq!(classes(&w, "i cant stop thinking about it"), [Class::Reply]);
        assert_eq!(classes(&w, "Help"), [Class::Help]);
        assert_eq!(classes(&w, "help me with my resume"), [Class::Reply]);
        let both = w.classify("stop texting me i want to die");
        assert_eq!(both.classes, [Class::Crisis, Class::OptOut]);
        assert_eq!(both.primary(), Class::Crisis);
        assert!(both.matched.iter().any(|m| m.text == "want to die"));
        assert!(both.matched.iter().any(|m| m.text == "stop texting me"));
    }

    #[test]
    fn a_filler_in_a_choice_does_not_make_the_choice_optional() {
        let w = words(&SMALL.replace(
            "en = [\"stop (texting|messaging) me\"]",
            "en = [\"stop (texting|messaging) me\", \"quit (just|texting)\", \"end (it|)\"]",
        ));
        assert_eq!(classes(&w, "i quit texting him"), [Class::OptOut]);
        assert_eq!(
            classes(&w, "i quit"),
            [Class::Reply],
            "`just` is a filler, not nothing"
        );
        assert_eq!(
            classes(&w, "the end"),
            [Class::OptOut],
            "`(it|)` may be nothing"
        );
    }

    const SYNTAX: &str = r##"
        not_names = ["sorry"]
        [sets]
        drug = ["pills", "sleeping meds"]
        [keywords]
        opt_in = ["yes"]
        [signals]
        threshold = 4.0
        [signals.en]
        tired = 2.0
        goodbye = 2.0
        burden = 3.0
        [crisis]
        en = ["took [all] the @drug", "^ done $"]
        [wrong_number]
        en = ["(this is not|not) {name}"]
    "##;

    #[test]
    fn sets_names_anchors_and_the_signals_net_match_as_written() {
        let w = words(SYNTAX);
        // `@drug`: any word or phrase of the set.
        assert_eq!(classes(&w, "I took all the sleeping meds"), [Class::Crisis]);
        assert_eq!(classes(&w, "took the pills"), [Class::Crisis]);
        assert_eq!(classes(&w, "took the bus"), [Class::Reply]);
        // `^` and `$`: the clause starts and ends with it.
        assert_eq!(classes(&w, "done. bye"), [Class::Crisis]);
        assert_eq!(classes(&w, "I'm done with work today"), [Class::Reply]);
        // `{name}`: the client's own name, or any capitalised word but the
        // listed ones.
        assert_eq!(
            w.classify_from("this is not maria", &["Maria"]).classes,
            [Class::WrongNumber]
        );
        assert_eq!(classes(&w, "This is not Jorge"), [Class::WrongNumber]);
        assert_eq!(classes(&w, "this is not Sorry"), [Class::Reply]);
        // Signals: each word counts once; together they reach the threshold.
        assert_eq!(classes(&w, "so tired. tired tired"), [Class::Reply]);
        assert_eq!(classes(&w, "so tired, goodbye"), [Class::Crisis]);
        let why = w.classify("I'm a burden and so tired");
        assert_eq!(why.classes, [Class::Crisis]);
        assert!(
            why.matched.iter().all(|m| m.class == Class::Crisis),
            "{why:?}"
        );
    }

    #[test]
    fn taking_a_class_back_leaves_what_else_the_text_is() {
        let w = words(SYNTAX);
        let yes = w.classify("yes");
        assert_eq!(yes.classes, [Class::OptIn]);
        assert!(yes.keyword);
        let reply = yes.without(Class::OptIn);
        assert_eq!(reply.classes, [Class::Reply]);
        assert!(
            !reply.keyword,
            "a yes that is not an opt-in waits for a person"
        );
        assert!(reply.matched.is_empty());
        let both = w.classify("yes I took the pills").without(Class::OptIn);
        assert_eq!(both.classes, [Class::Crisis]);
        assert_eq!(both.matched.len(), 1);
    }

    #[test]
    fn a_bad_rule_is_an_error_that_names_it() {
        for (rule, problem) in [
            ("want to (die", "`)` is missing"),
            ("want to die)", "closes nothing"),
            ("[just]", "can match no words"),
            ("took #x", "`#N+`"),
        ] {
            let file = format!("ignore = [\"just\"]\n[crisis]\nen = [\"{rule}\"]\n");
            let error = Words::compile(&WordFile::parse(&file).unwrap())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains("crisis.en") && error.contains(problem),
                "{rule}: {error}"
            );
        }
    }
}
