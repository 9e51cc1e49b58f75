//! The crisis model: a learned second opinion beside the rules. A logistic
//! regression over character n-grams (2 to 5, within words) and word
//! unigrams and bigrams, trained by `scripts/train-crisis-model` on the
//! labelled corpora and built into the binary from `config/crisis-model.tsv`.
//! It catches wording no rule foresaw; a crisis is what the rules or the
//! model say. Every step here mirrors scikit-learn's `TfidfVectorizer`
//! (`char_wb`, `word`, `sublinear_tf`, L2 norm) as the script uses it.

use std::collections::HashMap;

use anyhow::Context as _;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

const BUILT_IN: &str = include_str!("../../../config/crisis-model.tsv");

/// A feature's inverse document frequency and its weight in the model.
#[derive(Debug, Clone, Copy)]
struct Feature {
    idf: f64,
    weight: f64,
}

#[derive(Debug, Clone)]
pub struct Model {
    intercept: f64,
    /// A text is a crisis at this probability or more.
    threshold: f64,
    chars: HashMap<String, Feature>,
    words: HashMap<String, Feature>,
}

impl Model {
    /// The model built into reengage.
    pub fn built_in() -> anyhow::Result<Self> {
        Self::parse(BUILT_IN).context("config/crisis-model.tsv")
    }

    /// Reads the model file: `kind<TAB>n-gram<TAB>idf<TAB>weight` lines, with
    /// `intercept` and `threshold` given in the last column.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut model = Model {
            intercept: 0.0,
            threshold: 1.0,
            chars: HashMap::new(),
            words: HashMap::new(),
        };
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let [kind, gram, idf, weight] = fields[..] else {
                anyhow::bail!("line {}: expected 4 tab-separated fields", i + 1);
            };
            let number = |text: &str| {
                text.parse::<f64>()
                    .with_context(|| format!("line {}: `{text}` is not a number", i + 1))
            };
            match kind {
                "intercept" => model.intercept = number(weight)?,
                "threshold" => model.threshold = number(weight)?,
                "char" | "word" => {
                    let feature = Feature {
                        idf: number(idf)?,
                        weight: number(weight)?,
                    };
                    let table = match kind {
                        "char" => &mut model.chars,
                        _ => &mut model.words,
                    };
                    table.insert(gram.to_owned(), feature);
                }
                other => anyhow::bail!("line {}: unknown kind `{other}`", i + 1),
            }
        }
        Ok(model)
    }

    /// How likely `text` is a crisis, from 0 to 1.
    pub fn probability(&self, text: &str) -> f64 {
        let text = normalise(text);
        let mut char_counts: HashMap<&str, u32> = HashMap::new();
        let padded: Vec<String> = text.split_whitespace().map(|w| format!(" {w} ")).collect();
        for word in &padded {
            char_ngrams(word, |gram| {
                if self.chars.contains_key(gram) {
                    *char_counts.entry(gram).or_default() += 1;
                }
            });
        }
        let tokens = word_tokens(&text);
        let mut grams: Vec<String> = tokens.iter().map(|t| (*t).to_owned()).collect();
        grams.extend(tokens.windows(2).map(|pair| pair.join(" ")));
        let mut word_counts: HashMap<&str, u32> = HashMap::new();
        for gram in &grams {
            if self.words.contains_key(gram.as_str()) {
                *word_counts.entry(gram.as_str()).or_default() += 1;
            }
        }
        let score = self.intercept
            + block_score(&self.chars, &char_counts)
            + block_score(&self.words, &word_counts);
        1.0 / (1.0 + (-score).exp())
    }

    /// Whether the model holds `text` a crisis: how sure it is, and the
    /// words that weighed most towards it.
    pub fn crisis(&self, text: &str) -> Option<(f64, Vec<String>)> {
        let p = self.probability(text);
        (p >= self.threshold).then(|| (p, self.telling_words(text)))
    }

    /// Up to three of the text's words (or pairs) that weigh towards a crisis,
    /// the heaviest first.
    fn telling_words(&self, text: &str) -> Vec<String> {
        let text = normalise(text);
        let tokens = word_tokens(&text);
        let mut grams: Vec<String> = tokens.iter().map(|t| (*t).to_owned()).collect();
        grams.extend(tokens.windows(2).map(|pair| pair.join(" ")));
        let mut weighed: Vec<(f64, String)> = grams
            .into_iter()
            .filter_map(|g| {
                let feature = self.words.get(&g)?;
                let weight = feature.weight * feature.idf;
                (weight > 0.0).then_some((weight, g))
            })
            .collect();
        weighed.sort_by(|a, b| b.0.total_cmp(&a.0));
        weighed.dedup_by(|a, b| a.1 == b.1);
        weighed.into_iter().take(3).map(|(_, g)| g).collect()
    }
}

/// One block's contribution: sublinear counts times idf, L2-normalised,
/// dotted with the weights.
fn block_score(table: &HashMap<String, Feature>, counts: &HashMap<&str, u32>) -> f64 {
    let values: Vec<(f64, f64)> = counts
        .iter()
        .filter_map(|(gram, n)| {
            let feature = table.get(*gram)?;
            Some(((1.0 + f64::from(*n).ln()) * feature.idf, feature.weight))
        })
        .collect();
    let norm = values.iter().map(|(v, _)| v * v).sum::<f64>().sqrt();
    if norm == 0.0 {
        return 0.0;
    }
    values.iter().map(|(v, w)| v * w).sum::<f64>() / norm
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
fn char_ngrams<'a>(padded: &'a str, mut each: impl FnMut(&'a str)) {
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
        char_ngrams(" a ", |g| grams.push(g));
        assert_eq!(grams, [" a", "a ", " a "]);
        grams.clear();
        char_ngrams(" hey ", |g| grams.push(g));
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
        assert!(model.crisis("i dont want to be alive anymore").is_some());
        assert!(
            model
                .crisis("thanks, see you at group on tuesday")
                .is_none()
        );
    }
}
