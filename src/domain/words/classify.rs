//! Classifying: the compiled word lists, indexed by where each rule can
//! start, read against a text, and what the text is found to be.

use foldhash::{HashMap, HashSet};
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::class::Class;
use super::file::{Signals, WordFile};
use super::lang::{LANGS, Lang};
use super::model::Model;
use super::normalise::{Normaliser, Token};
use super::rules::{self, Literal, Node, Rule, Starts, starts};

/// How many words the crisis net's signals must fall within.
const SIGNAL_WINDOW: usize = 15;

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
                words,
                alternatives,
                optional,
            } => {
                let word = words
                    .as_ref()
                    .is_some_and(|w| token.is_some_and(|t| w.matches(t)));
                (word && self.match_at(rest, i + 1, then))
                    || alternatives
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
    /// The learned second opinion on crisis, opt-out and wrong number (the
    /// built-in lists have it; a list compiled alone, to test its rules,
    /// does not).
    model: Option<Model>,
}

impl Words {
    /// The built-in lists, extended by the agency's `file` if it is set.
    pub fn load(file: &Path) -> anyhow::Result<Self> {
        let words = Self::compile(&WordFile::load(file)?).with_context(|| {
            format!(
                "config key `replies.words_file` ({}) or the built-in lists",
                file.display()
            )
        })?;
        Ok(Self {
            model: Some(Model::built_in()?),
            ..words
        })
    }

    /// The same lists without the reply model: the rules alone, to measure
    /// or test them.
    pub fn without_model(self) -> Self {
        Self {
            model: None,
            ..self
        }
    }

    /// Compiles a word file. An error names the list and the rule.
    pub(super) fn compile(file: &WordFile) -> anyhow::Result<Self> {
        let normaliser = Normaliser::new(file);
        let rules = rules::compile(file, &normaliser)?;
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
            rules,
            by_raw: HashMap::default(),
            by_squeezed: HashMap::default(),
            by_stem: [HashMap::default(), HashMap::default()],
            by_prefix: Vec::new(),
            by_number: Vec::new(),
            anywhere: Vec::new(),
            signals: Vec::new(),
            signal_threshold: file.signals.threshold.unwrap_or(0.0),
            signals_by: HashMap::default(),
            model: None,
        };
        words.add_signals(&file.signals)?;
        words.index_rules();
        Ok(words)
    }

    /// Compiles the crisis signals, each one word, and indexes them by its
    /// forms.
    fn add_signals(&mut self, signals: &Signals) -> anyhow::Result<()> {
        for (lang, list, name) in [(Lang::En, &signals.en, "en"), (Lang::Es, &signals.es, "es")] {
            let mut entries: Vec<(&String, &f64)> = list.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (word, weight) in entries {
                let mut tokens = self.normaliser.tokens(word);
                if tokens.len() != 1 {
                    anyhow::bail!(
                        "word list `signals.{name}`: `{word}` must be one word (not a filler)"
                    );
                }
                let literal = Literal::new(tokens.remove(0), &self.normaliser, lang);
                let index = self.signals.len();
                for key in [&literal.raw, &literal.squeezed, &literal.stem] {
                    if !key.is_empty() {
                        let entry = self.signals_by.entry(key.clone()).or_default();
                        if !entry.contains(&index) {
                            entry.push(index);
                        }
                    }
                }
                self.signals.push((literal, *weight));
            }
        }
        Ok(())
    }

    /// Indexes the rules by where they can start, so that a token is tried
    /// only against the rules that can start with it.
    fn index_rules(&mut self) {
        for (index, rule) in self.rules.iter().enumerate() {
            let mut s = Starts::default();
            starts(&rule.nodes, &mut s);
            if s.anywhere {
                self.anywhere.push(index);
                continue;
            }
            for l in s.literals {
                self.by_raw.entry(l.raw.clone()).or_default().push(index);
                self.by_squeezed
                    .entry(l.squeezed.clone())
                    .or_default()
                    .push(index);
                self.by_stem[l.lang.index()]
                    .entry(l.stem.clone())
                    .or_default()
                    .push(index);
            }
            self.by_prefix
                .extend(s.prefixes.into_iter().map(|p| (p.to_owned(), index)));
            if s.number {
                self.by_number.push(index);
            }
        }
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
        let found = self.find(&subject);
        self.rule_matches(text, &tokens, &found, &mut classes, &mut matched);
        // A death report reads as loss: the net and the model, which were
        // not taught to tell it from danger, keep out of it; the crisis rules
        // still speak for the writer ("I can't live without him").
        let death = classes.contains(&Class::Deceased);
        // A benign idiom the crisis exceptions know ("won't be around next
        // week, going to a wedding") is the agency's word against the
        // model's guess: the model's crisis opinion is not taken then.
        let benign_idiom = found.iter().any(|&(r, ..)| {
            let rule = &self.rules[r];
            rule.exception && rule.class == Class::Crisis
        });
        if !classes.contains(&Class::Crisis)
            && !death
            && let Some(signal) = self.signal_match(text, &tokens, &found)
        {
            matched.push(signal);
            classes.push(Class::Crisis);
        }
        // The model's opinion where the rules found nothing of its classes.
        // A bare keyword (STOP, HELP) is what it says.
        let opinions = match &self.model {
            Some(model) if !keyword => model.opinions(text),
            _ => Vec::new(),
        };
        for opinion in opinions {
            let beside_death = !death || opinion.class == Class::OptOut;
            let idiom = benign_idiom && opinion.class == Class::Crisis;
            // "Who is this?" the rules read as a question; the model, having
            // seen strangers ask it, would mark a client's own phone wrong.
            let question = opinion.class == Class::WrongNumber && classes.contains(&Class::Help);
            if !classes.contains(&opinion.class) && beside_death && !idiom && !question {
                matched.push(Match {
                    class: opinion.class,
                    rule: format!("the reply model, {:.0}% sure", opinion.probability * 100.0),
                    text: opinion.words.join(", "),
                });
                classes.push(opinion.class);
            }
        }
        // "Who is this?" from a stranger is part of saying the number is
        // wrong, not a question about the program: wrong number comes first.
        if classes.contains(&Class::WrongNumber) {
            classes.retain(|c| *c != Class::Help);
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

    /// Every match of every rule: (rule, first token, end), in order. All of
    /// them, since an exception may take back one place a rule matched but
    /// not another.
    fn find(&self, subject: &Subject) -> Vec<(usize, usize, usize)> {
        let mut found = Vec::new();
        let mut tried = vec![usize::MAX; self.rules.len()];
        let mut candidates = Vec::new();
        // Every form of every word in the text: a rule one of whose required
        // words is not among them cannot match, and is never tried.
        let forms: HashSet<&str> = subject
            .tokens
            .iter()
            .flat_map(|t| {
                [t.raw.as_str(), t.squeezed.as_str()]
                    .into_iter()
                    .chain(t.stems.iter().flatten().map(String::as_str))
            })
            .collect();
        let mut possible: Vec<Option<bool>> = vec![None; self.rules.len()];
        for (i, token) in subject.tokens.iter().enumerate() {
            self.candidates(token, &mut candidates);
            for &r in &candidates {
                if tried[r] == i {
                    continue;
                }
                tried[r] = i;
                let required = &self.rules[r].required;
                let possible = *possible[r].get_or_insert_with(|| {
                    required.is_empty()
                        || required.iter().any(|l| {
                            forms.contains(l.raw.as_str())
                                || forms.contains(l.squeezed.as_str())
                                || (!l.stem.is_empty() && forms.contains(l.stem.as_str()))
                        })
                });
                if !possible {
                    continue;
                }
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
        found
    }

    /// Fills `into` with the rules that may match from `token`: those that
    /// can start anywhere, and those that start with one of its forms.
    fn candidates(&self, token: &Token, into: &mut Vec<usize>) {
        into.clear();
        into.extend_from_slice(&self.anywhere);
        for hit in [
            self.by_raw.get(&token.raw),
            self.by_squeezed.get(&token.squeezed),
        ]
        .into_iter()
        .flatten()
        {
            into.extend_from_slice(hit);
        }
        for lang in LANGS {
            for stem in &token.stems[lang.index()] {
                if let Some(hit) = self.by_stem[lang.index()].get(stem) {
                    into.extend_from_slice(hit);
                }
            }
        }
        into.extend(
            self.by_prefix
                .iter()
                .filter(|(p, _)| token.raw.starts_with(p.as_str()))
                .map(|(_, r)| *r),
        );
        if token.number.is_some() {
            into.extend_from_slice(&self.by_number);
        }
    }

    /// Notes each rule of `found` that matched where no exception of its
    /// class takes it back: once, with the words of its first such match.
    fn rule_matches(
        &self,
        text: &str,
        tokens: &[Token],
        found: &[(usize, usize, usize)],
        classes: &mut Vec<Class>,
        matched: &mut Vec<Match>,
    ) {
        // An exception takes back the matches of its own class it overlaps,
        // but not a firm rule's ("I write to tell you my father died" is
        // news, though "my father died" alone is the writer's own loss).
        let excepted = |r: usize, start: usize, end: usize| {
            let rule = &self.rules[r];
            !rule.firm
                && found.iter().any(|&(x, s, e)| {
                    let other = &self.rules[x];
                    other.exception && other.class == rule.class && s < end && start < e
                })
        };
        let deaths: Vec<(usize, usize)> = found
            .iter()
            .filter(|&&(r, s, e)| {
                let rule = &self.rules[r];
                rule.class == Class::Deceased && !rule.exception && !excepted(r, s, e)
            })
            .map(|&(_, s, e)| (s, e))
            .collect();
        // Beside a reported death, crisis words inside the report, or a
        // single word of them ("overdose", "fentanyl"), tell how the client
        // died; a phrase ("I can't go on without him") still speaks for the
        // writer.
        let of_the_death = |start: usize, end: usize| {
            !deaths.is_empty()
                && (end - start == 1 || deaths.iter().any(|&(s, e)| s < end && start < e))
        };
        let mut shown = HashSet::default();
        for &(r, start, end) in found {
            let rule = &self.rules[r];
            if rule.exception || shown.contains(&r) || excepted(r, start, end) {
                continue;
            }
            if rule.class == Class::Crisis && of_the_death(start, end) {
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
        // Each word's signals: (token, the signals it is a form of).
        let hits: Vec<(usize, Vec<usize>)> = tokens
            .iter()
            .enumerate()
            .filter(|&(i, _)| !excused(i))
            .filter_map(|(i, token)| {
                let keys = std::iter::once(&token.raw)
                    .chain(std::iter::once(&token.squeezed))
                    .chain(token.stems.iter().flatten());
                let mut signals: Vec<usize> = keys
                    .flat_map(|key| self.signals_by.get(key).into_iter().flatten().copied())
                    .filter(|&s| self.signals[s].0.matches(token))
                    .collect();
                signals.sort_unstable();
                signals.dedup();
                (!signals.is_empty()).then_some((i, signals))
            })
            .collect();
        // The words must come together: within SIGNAL_WINDOW words of the
        // first, each signal counting once, and a word once, as its heaviest
        // signal not yet counted ("muerto" is also a form of "muerte"). A
        // long letter about an ordinary week holds many such words, apart.
        let mut best: Option<(f64, Vec<usize>)> = None;
        for (a, &(first, _)) in hits.iter().enumerate() {
            let mut counted = HashSet::default();
            let mut score = 0.0;
            let mut words = Vec::new();
            for (i, signals) in hits[a..]
                .iter()
                .take_while(|(i, _)| *i < first + SIGNAL_WINDOW)
            {
                let heaviest = signals
                    .iter()
                    .filter(|s| !counted.contains(*s))
                    .map(|&s| self.signals[s].1)
                    .reduce(f64::max);
                if let Some(weight) = heaviest {
                    counted.extend(signals.iter().copied());
                    score += weight;
                    words.push(*i);
                }
            }
            if best.as_ref().is_none_or(|(b, _)| score > *b) {
                best = Some((score, words));
            }
        }
        let (score, words) = best?;
        (score >= self.signal_threshold).then(|| Match {
            class: Class::Crisis,
            rule: format!("signals {score:.1} of {}", self.signal_threshold),
            text: words
                .iter()
                .map(|&i| excerpt(text, std::slice::from_ref(&tokens[i])))
                .collect::<Vec<_>>()
                .join(", "),
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
    use super::Class;
    use crate::domain::words::fixtures::{SMALL, SYNTAX, classes, words};

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
}
