//! The reply model: a learned second opinion beside the rules on crisis,
//! opt-out and wrong number. For each, a logistic regression over character
//! n-grams (2 to 5, within words) and word unigrams and bigrams, trained by
//! `scripts/train-reply-model` on the labelled corpora and built into the
//! binary from `config/reply-model.tsv`. It hears wording no rule foresaw; a
//! text is of a class if the rules or the model say so. Every step here
//! mirrors scikit-learn's `TfidfVectorizer` (`char_wb`, `word`,
//! `sublinear_tf`, L2 norm) as the script uses it.

use std::collections::HashMap;

use anyhow::Context as _;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::class::Class;

const BUILT_IN: &str = include_str!("../../../config/reply-model.tsv");

/// The classes the model has an opinion on, in the file's column order.
const CLASSES: [Class; 3] = [Class::Crisis, Class::OptOut, Class::WrongNumber];

/// A feature's inverse document frequency and its weight for each class.
#[derive(Debug, Clone, Copy)]
struct Feature {
    idf: f64,
    weights: [f64; CLASSES.len()],
}

/// An n-gram's feature, by the n-gram. foldhash: a text looks up a few
/// thousand short n-grams, and the default hasher made that most of the cost.
type Index = HashMap<String, Feature, foldhash::fast::FixedState>;

#[derive(Debug, Clone)]
pub struct Model {
    intercepts: [f64; CLASSES.len()],
    /// A text is of a class at this probability or more.
    thresholds: [f64; CLASSES.len()],
    chars: Index,
    words: Index,
}

/// What the model holds a text to be: the class, how sure it is, and the
/// words that weighed most towards it.
#[derive(Debug, Clone, PartialEq)]
pub struct Opinion {
    pub class: Class,
    pub probability: f64,
    pub words: Vec<String>,
}

impl Model {
    /// The model built into reengage.
    pub fn built_in() -> anyhow::Result<Self> {
        Self::parse(BUILT_IN).context("config/reply-model.tsv")
    }

    /// Reads the model file: `class<TAB>name<TAB>intercept<TAB>threshold`
    /// lines in column order, then `kind<TAB>n-gram<TAB>idf<TAB>weight…`
    /// with a weight for each class.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut model = Model {
            intercepts: [0.0; CLASSES.len()],
            thresholds: [1.0; CLASSES.len()],
            chars: Index::default(),
            words: Index::default(),
        };
        let mut classes = 0;
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let number = |text: &str| {
                text.parse::<f64>()
                    .with_context(|| format!("line {}: `{text}` is not a number", i + 1))
            };
            match fields[..] {
                ["class", name, intercept, threshold] => {
                    anyhow::ensure!(
                        CLASSES.get(classes).is_some_and(|c| c.as_ref() == name),
                        "line {}: class `{name}` out of order",
                        i + 1
                    );
                    model.intercepts[classes] = number(intercept)?;
                    model.thresholds[classes] = number(threshold)?;
                    classes += 1;
                }
                [kind @ ("char" | "word"), gram, idf, ref weights @ ..] => {
                    anyhow::ensure!(
                        weights.len() == CLASSES.len(),
                        "line {}: expected a weight for each of {} classes",
                        i + 1,
                        CLASSES.len()
                    );
                    let mut feature = Feature {
                        idf: number(idf)?,
                        weights: [0.0; CLASSES.len()],
                    };
                    for (slot, weight) in feature.weights.iter_mut().zip(weights) {
                        *slot = number(weight)?;
                    }
                    let table = match kind {
                        "char" => &mut model.chars,
                        _ => &mut model.words,
                    };
                    table.insert(gram.to_owned(), feature);
                }
                _ => anyhow::bail!("line {}: not a class or a feature", i + 1),
            }
        }
        anyhow::ensure!(classes == CLASSES.len(), "a `class` line is missing");
        Ok(model)
    }

    /// How likely `text` is of each class, from 0 to 1, in [`CLASSES`] order.
    fn probabilities(&self, text: &str) -> [f64; CLASSES.len()] {
        let text = normalise(text);
        let mut chars: Vec<&Feature> = Vec::new();
        let mut padded = String::new();
        for word in text.split_whitespace() {
            padded.clear();
            padded.push(' ');
            padded.push_str(word);
            padded.push(' ');
            char_ngrams(&padded, |gram| chars.extend(self.chars.get(gram)));
        }
        let mut words: Vec<&Feature> = Vec::new();
        let tokens = word_tokens(&text);
        let mut pair = String::new();
        for (i, token) in tokens.iter().enumerate() {
            words.extend(self.words.get(*token));
            if let Some(next) = tokens.get(i + 1) {
                pair.clear();
                pair.push_str(token);
                pair.push(' ');
                pair.push_str(next);
                words.extend(self.words.get(pair.as_str()));
            }
        }
        let chars = block_scores(chars);
        let words = block_scores(words);
        std::array::from_fn(|c| {
            let score = self.intercepts[c] + chars[c] + words[c];
            1.0 / (1.0 + (-score).exp())
        })
    }

    /// Every class the model holds `text` to be.
    pub fn opinions(&self, text: &str) -> Vec<Opinion> {
        let probabilities = self.probabilities(text);
        CLASSES
            .iter()
            .enumerate()
            .filter(|(c, _)| probabilities[*c] >= self.thresholds[*c])
            .map(|(c, class)| Opinion {
                class: *class,
                probability: probabilities[c],
                words: self.telling_words(text, c),
            })
            .collect()
    }

    /// Up to three of the text's words (or pairs) that weigh most towards
    /// class `c`, the heaviest first.
    fn telling_words(&self, text: &str, c: usize) -> Vec<String> {
        let mut weighed: Vec<(f64, String)> = word_grams(&normalise(text))
            .into_iter()
            .filter_map(|g| {
                let feature = self.words.get(&g)?;
                let weight = feature.weights[c] * feature.idf;
                (weight > 0.0).then_some((weight, g))
            })
            .collect();
        weighed.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        weighed.dedup_by(|a, b| a.1 == b.1);
        weighed.into_iter().take(3).map(|(_, g)| g).collect()
    }
}

/// One block's contribution to each class: sublinear counts times idf,
/// L2-normalised, dotted with the class's weights. `found` holds a feature
/// once for each time the text has it.
fn block_scores(mut found: Vec<&Feature>) -> [f64; CLASSES.len()] {
    found.sort_unstable_by_key(|f| std::ptr::from_ref(*f));
    let mut values: Vec<(f64, &Feature)> = Vec::new();
    for run in found.chunk_by(|a, b| std::ptr::eq(*a, *b)) {
        let n = run.len() as f64;
        values.push(((1.0 + n.ln()) * run[0].idf, run[0]));
    }
    let norm = values.iter().map(|(v, _)| v * v).sum::<f64>().sqrt();
    std::array::from_fn(|c| {
        if norm == 0.0 {
            return 0.0;
        }
        values.iter().map(|(v, f)| v * f.weights[c]).sum::<f64>() / norm
    })
}

/// A text's words and pairs of words, as the model's word features are.
fn word_grams(text: &str) -> Vec<String> {
    let tokens = word_tokens(text);
    let mut grams: Vec<String> = tokens.iter().map(|t| (*t).to_owned()).collect();
    grams.extend(tokens.windows(2).map(|pair| pair.join(" ")));
    grams
}

/// Lower case, accents and apostrophes dropped, a character repeated three
/// or more times read once.
fn normalise(text: &str) -> String {
    let folded: String = text
        .to_lowercase()
        .nfd()
        .filter(|c| !is_combining_mark(*c) && *c != '\'' && *c != '\u{2019}')
        .collect();
    let chars: Vec<char> = folded.chars().collect();
    let mut out = String::with_capacity(folded.len());
    let mut i = 0;
    while i < chars.len() {
        let mut run = 1;
        while i + run < chars.len() && chars[i + run] == chars[i] {
            run += 1;
        }
        let keep = if run >= 3 { 1 } else { run };
        out.extend(std::iter::repeat_n(chars[i], keep));
        i += run;
    }
    out
}

/// The n-grams (2 to 5 characters) of one space-padded word, as
/// scikit-learn's `char_wb` takes them: a word shorter than `n` gives
/// itself once, and no longer n-grams.
fn char_ngrams(padded: &str, mut each: impl FnMut(&str)) {
    let bounds: Vec<usize> = padded
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(padded.len()))
        .collect();
    let len = bounds.len() - 1;
    for n in 2..=5 {
        if len <= n {
            each(padded);
            break;
        }
        for start in 0..=len - n {
            each(&padded[bounds[start]..bounds[start + n]]);
        }
    }
}

/// Words of two or more word characters (scikit-learn's `\b\w\w+\b`).
fn word_tokens(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.chars().count() >= 2)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_cut_into_ngrams_as_scikit_learn_cuts_them() {
        let mut grams = Vec::new();
        char_ngrams(" a ", |g| grams.push(g.to_owned()));
        assert_eq!(grams, [" a", "a ", " a "]);
        grams.clear();
        char_ngrams(" hey ", |g| grams.push(g.to_owned()));
        assert_eq!(
            grams,
            [
                " h", "he", "ey", "y ", " he", "hey", "ey ", " hey", "hey ", " hey "
            ]
        );
        assert_eq!(word_tokens("i can't do, this"), ["can", "do", "this"]);
        assert_eq!(normalise("Sooooo CANSADA’s"), "so cansadas");
    }

    #[test]
    fn the_built_in_model_reads_and_leans_the_right_way() {
        let model = Model::built_in().unwrap();
        let classes = |text: &str| -> Vec<Class> {
            model.opinions(text).into_iter().map(|o| o.class).collect()
        };
        assert_eq!(classes("i dont want to be alive anymore"), [Class::Crisis]);
        assert_eq!(
            classes("please stop sending me these messages"),
            [Class::OptOut]
        );
        assert_eq!(
            classes("i think you have the wrong number"),
            [Class::WrongNumber]
        );
        assert!(classes("thanks, see you at group on tuesday").is_empty());
    }

    #[test]
    fn a_damaged_model_file_is_an_error_that_says_where() {
        let error = Model::parse("class\tcrisis\t0\t0.7\nchar\tab\t1.0\t0.5\n").unwrap_err();
        assert!(format!("{error:#}").contains("line 2"), "{error:#}");
    }

    /// The probabilities `scripts/train-reply-model --sample TEXT` prints
    /// for the model it wrote: the two read a text alike.
    #[test]
    fn the_model_reads_a_text_as_scikit_learn_does() {
        let model = Model::built_in().unwrap();
        for (text, expected) in [
            (
                "Sooo tired of everything, I can't keep going 😔",
                [0.9998, 0.0027, 0.0031],
            ),
            (
                "please STOP texting me, wrong number",
                [0.001, 0.9999, 0.9868],
            ),
            (
                "Ya no quiero vivir, gracias por todo",
                [0.9892, 0.1834, 0.001],
            ),
            ("see you tuesday at group", [0.0069, 0.0038, 0.0039]),
        ] {
            let got = model.probabilities(text);
            for (g, e) in got.iter().zip(expected) {
                assert!(
                    (g - e).abs() < 0.002,
                    "{text}: {got:?} against {expected:?}"
                );
            }
        }
    }
}
