//! The rule language: a rule as written in the word file, parsed into the
//! pieces a text is matched against (see [`Rule`] for the syntax).

use std::collections::{HashMap, HashSet};

use super::class::Class;
use super::file::{ByLang, WordFile};
use super::lang::Lang;
use super::normalise::{Normaliser, Token, words};

/// A word of a rule, in the forms tokens are compared in.
#[derive(Debug, Clone)]
pub(super) struct Literal {
    pub(super) raw: String,
    pub(super) squeezed: String,
    pub(super) stem: String,
    pub(super) lang: Lang,
}

impl Literal {
    pub(super) fn new(token: Token, normaliser: &Normaliser, lang: Lang) -> Self {
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

    pub(super) fn matches(&self, token: &Token) -> bool {
        token.raw == self.raw
            || token.squeezed == self.squeezed
            || (!self.stem.is_empty() && token.stems[self.lang.index()].contains(&self.stem))
    }
}

/// A compiled piece of a rule.
#[derive(Debug, Clone)]
pub(super) enum Node {
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
    /// `(a|b c)`, or `[a|b c]` when it may be left out. Its one-word
    /// alternatives are looked up in `words` at once; the longer ones are
    /// tried in turn.
    Group {
        words: Option<WordSet>,
        alternatives: Vec<Vec<Node>>,
        optional: bool,
    },
}

impl Node {
    /// A group of these alternatives, its one-word ones gathered into a
    /// [`WordSet`] (a set such as `@drug` has a hundred).
    fn group(alternatives: Vec<Vec<Node>>, optional: bool) -> Self {
        let mut single = Vec::new();
        let mut longer = Vec::new();
        for alternative in alternatives {
            match alternative.as_slice() {
                [Node::Literal(l)] => single.push(l.clone()),
                _ => longer.push(alternative),
            }
        }
        Node::Group {
            words: (!single.is_empty()).then(|| WordSet::new(single)),
            alternatives: longer,
            optional,
        }
    }
}

/// One-word alternatives, by each form a token is compared in: a token is
/// one of them if [`Literal::matches`] would say so of any, found by hashing
/// instead of comparing with each in turn.
#[derive(Debug, Clone)]
pub(super) struct WordSet {
    pub(super) literals: Vec<Literal>,
    raw: foldhash::HashSet<String>,
    squeezed: foldhash::HashSet<String>,
    stems: [foldhash::HashSet<String>; 2],
}

impl WordSet {
    fn new(literals: Vec<Literal>) -> Self {
        let mut set = Self {
            raw: literals.iter().map(|l| l.raw.clone()).collect(),
            squeezed: literals.iter().map(|l| l.squeezed.clone()).collect(),
            stems: Default::default(),
            literals,
        };
        for l in &set.literals {
            if !l.stem.is_empty() {
                set.stems[l.lang.index()].insert(l.stem.clone());
            }
        }
        set
    }

    pub(super) fn matches(&self, token: &Token) -> bool {
        self.raw.contains(&token.raw)
            || self.squeezed.contains(&token.squeezed)
            || self
                .stems
                .iter()
                .zip(token.stems.iter())
                .any(|(set, stems)| stems.iter().any(|s| set.contains(s)))
    }
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
pub(super) struct Rule {
    pub(super) class: Class,
    pub(super) text: String,
    pub(super) nodes: Vec<Node>,
    pub(super) exception: bool,
    /// No exception takes it back (a class's `firm` list).
    pub(super) firm: bool,
    /// Words one of which any text it matches must hold: its most selective
    /// word or one-word group that cannot be left out (empty if it has none).
    /// A text without any of them is not tried against the rule at all.
    pub(super) required: Vec<Literal>,
}

/// The most selective node a match of `nodes` cannot do without: a word, or
/// a group of single words that is not optional (the one with the fewest).
fn required(nodes: &[Node]) -> Vec<Literal> {
    nodes
        .iter()
        .filter_map(|node| match node {
            Node::Literal(l) => Some(vec![l.clone()]),
            Node::Group {
                words: Some(words),
                alternatives,
                optional: false,
            } if alternatives.is_empty() => Some(words.literals.clone()),
            _ => None,
        })
        .min_by_key(Vec::len)
        .unwrap_or_default()
}

/// Compiles every class's rules and exceptions. An error names the list and
/// the rule.
pub(super) fn compile(file: &WordFile, normaliser: &Normaliser) -> anyhow::Result<Vec<Rule>> {
    let mut rules = Vec::new();
    for (class, lists) in [
        (Class::Crisis, &file.crisis),
        (Class::Deceased, &file.deceased),
        (Class::OptOut, &file.opt_out),
        (Class::WrongNumber, &file.wrong_number),
        (Class::Help, &file.help),
        (Class::OptIn, &file.opt_in),
    ] {
        // The list's name in the word file is the class's own.
        let name = class.as_ref();
        let plain = ByLang {
            en: lists.en.clone(),
            es: lists.es.clone(),
        };
        let lists = [
            ("", false, false, &plain),
            ("firm.", false, true, &lists.firm),
            ("except.", true, false, &lists.except),
        ];
        for (prefix, exception, firm, list) in lists {
            for (lang, text, lang_name) in list.each() {
                let mut parser = Parser::new(text, normaliser, &file.sets, lang, 0);
                let place = format!("{name}.{prefix}{lang_name}");
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
                    required: required(&nodes),
                    nodes,
                    exception,
                    firm,
                });
            }
        }
    }
    Ok(rules)
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
        Ok(Node::group(alternatives, false))
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
    (!alternatives.is_empty()).then(|| Node::group(alternatives, optional))
}

/// Where a rule can start: the words it can begin with, or anywhere.
#[derive(Default)]
pub(super) struct Starts<'a> {
    pub(super) literals: Vec<&'a Literal>,
    pub(super) prefixes: Vec<&'a str>,
    pub(super) number: bool,
    pub(super) anywhere: bool,
}

/// Adds where `nodes` can start to `starts`; returns whether they can match
/// no words at all.
pub(super) fn starts<'a>(nodes: &'a [Node], into: &mut Starts<'a>) -> bool {
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
                words,
                alternatives,
                optional,
            } => {
                into.literals.extend(words.iter().flat_map(|w| &w.literals));
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

#[cfg(test)]
mod tests {
    use crate::domain::words::fixtures::{SMALL, classes, words};
    use crate::domain::words::{Class, Words, file::WordFile};

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
