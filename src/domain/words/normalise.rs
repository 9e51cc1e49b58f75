//! Normalising: a text, or a word of a rule, as tokens in the forms rules
//! compare, folded, squeezed, expanded by the shortcuts and stemmed.

use std::collections::HashSet;
use std::rc::Rc;

use rust_stemmers::Stemmer;

use super::lang::{LANGS, Lang};
use unicode_normalization::char::{decompose_canonical, is_combining_mark};

use super::file::WordFile;

/// One word of a text, in the forms rules compare.
#[derive(Debug, Clone)]
pub(super) struct Token {
    /// Folded, with runs of three or more letters cut to two.
    pub(super) raw: String,
    /// With every run of a letter cut to one ("pleeease" → "please").
    pub(super) squeezed: String,
    /// Stems by language (two when the word was stretched for emphasis),
    /// shared by every token of the same word.
    pub(super) stems: Rc<[Vec<String>; 2]>,
    pub(super) number: Option<u32>,
    /// Written with a capital and then small letters ("Devon"), as a name is.
    pub(super) capitalized: bool,
    /// The bytes of the original text it came from.
    pub(super) span: (usize, usize),
    /// The clause it is in: sentences and comma-separated parts count apart.
    pub(super) sentence: u32,
}

/// A word as written, before shortcuts expand it.
pub(super) struct Word {
    /// Folded, apostrophes kept as `'`.
    pub(super) text: String,
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
pub(super) fn words(text: &str, symbols: &HashSet<char>) -> Vec<Word> {
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
pub(super) struct Normaliser {
    shortcuts: foldhash::HashMap<String, Vec<String>>,
    symbols: HashSet<char>,
    ignore: foldhash::HashSet<String>,
    numbers: foldhash::HashMap<String, u32>,
    stemmers: [Stemmer; 2],
}

impl Normaliser {
    pub(super) fn new(file: &WordFile) -> Self {
        let no_symbols = HashSet::new();
        let fold_word = |w: &str| -> Vec<String> {
            words(w, &no_symbols).into_iter().map(|w| w.text).collect()
        };
        let mut shortcuts = foldhash::HashMap::default();
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

    pub(super) fn tokens(&self, text: &str) -> Vec<Token> {
        let mut out = Vec::new();
        let mut stems_seen = foldhash::HashMap::default();
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
    pub(super) fn stem(&self, lang: Lang, word: &str) -> String {
        if word.chars().count() <= 3 {
            word.to_owned()
        } else {
            self.stemmers[lang.index()].stem(word).into_owned()
        }
    }

    fn push(
        &self,
        out: &mut Vec<Token>,
        stems_seen: &mut foldhash::HashMap<String, Rc<[Vec<String>; 2]>>,
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
            Some(stems) if !stretched => Rc::clone(stems),
            _ => {
                let stems = Rc::new(LANGS.map(|lang| {
                    let mut stems = vec![self.stem(lang, raw)];
                    if stretched {
                        stems.push(self.stem(lang, &squeezed));
                    }
                    stems
                }));
                if !stretched {
                    stems_seen.insert(raw.to_owned(), Rc::clone(&stems));
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

#[cfg(test)]
mod tests {
    use crate::domain::words::Class;
    use crate::domain::words::fixtures::{SMALL, classes, words};

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
}
