//! Measuring the word lists against a labelled corpus: recall and precision
//! for each class, and how many benign look-alikes were held as crisis. The
//! corpus test and `reengage replies eval FILE` both use it, so an agency can
//! check its own `replies.words_file` against its own texts.
//!
//! A corpus is a CSV with a header `text,classes,lang,lookalike`: `classes`
//! is `;`-separated (`crisis;opt_out`), `lookalike` is `yes` for a benign
//! text that looks alarming.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use anyhow::Context as _;
use serde::Deserialize;

use super::class::Class;
use super::classify::Words;

const CLASSES: [Class; 7] = [
    Class::Crisis,
    Class::Deceased,
    Class::OptOut,
    Class::WrongNumber,
    Class::Help,
    Class::OptIn,
    Class::Reply,
];

#[derive(Debug, Deserialize)]
struct Row {
    text: String,
    classes: String,
    #[serde(default)]
    lookalike: String,
}

/// Counts for one class.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub true_positive: u32,
    pub false_positive: u32,
    pub false_negative: u32,
}

impl Counts {
    pub fn recall(&self) -> f64 {
        ratio(self.true_positive, self.true_positive + self.false_negative)
    }

    pub fn precision(&self) -> f64 {
        ratio(self.true_positive, self.true_positive + self.false_positive)
    }
}

fn ratio(n: u32, d: u32) -> f64 {
    if d == 0 {
        1.0
    } else {
        f64::from(n) / f64::from(d)
    }
}

/// A text the lists got wrong.
#[derive(Debug, Clone)]
pub struct Miss {
    pub line: usize,
    pub text: String,
    pub expected: Vec<Class>,
    pub got: Vec<Class>,
}

/// What a corpus run found.
#[derive(Debug, Default)]
pub struct Report {
    pub texts: usize,
    pub by_class: BTreeMap<Class, Counts>,
    pub lookalikes: u32,
    pub lookalikes_held: u32,
    pub misses: Vec<Miss>,
}

impl Report {
    pub fn counts(&self, class: Class) -> Counts {
        self.by_class.get(&class).copied().unwrap_or_default()
    }

    /// The share of benign look-alikes classified as crisis.
    pub fn lookalike_crisis_rate(&self) -> f64 {
        if self.lookalikes == 0 {
            0.0
        } else {
            f64::from(self.lookalikes_held) / f64::from(self.lookalikes)
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} texts", self.texts)?;
        writeln!(
            f,
            "{:<13} {:>7} {:>9}   TP  FP  FN",
            "class", "recall", "precision"
        )?;
        for class in CLASSES {
            let c = self.counts(class);
            writeln!(
                f,
                "{:<13} {:>7.3} {:>9.3} {:>4} {:>3} {:>3}",
                class.as_ref(),
                c.recall(),
                c.precision(),
                c.true_positive,
                c.false_positive,
                c.false_negative
            )?;
        }
        write!(
            f,
            "benign look-alikes held as crisis: {} of {} ({:.1}%)",
            self.lookalikes_held,
            self.lookalikes,
            100.0 * self.lookalike_crisis_rate()
        )
    }
}

/// Classifies every text of the corpus and counts. A row that does not parse
/// is an error naming its line.
pub fn evaluate(words: &Words, corpus: impl Read) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut reader = csv::Reader::from_reader(corpus);
    for (i, row) in reader.deserialize::<Row>().enumerate() {
        let line = i + 2;
        let row = row.with_context(|| format!("corpus line {line}"))?;
        let expected: Vec<Class> = row
            .classes
            .split(';')
            .map(|c| {
                c.trim()
                    .parse::<Class>()
                    .map_err(|_| anyhow::anyhow!("corpus line {line}: `{c}` is not a class"))
            })
            .collect::<anyhow::Result<_>>()?;
        let got = words.classify(&row.text).classes;
        for class in CLASSES {
            let (want, have) = (expected.contains(&class), got.contains(&class));
            let counts = report.by_class.entry(class).or_default();
            match (want, have) {
                (true, true) => counts.true_positive += 1,
                (false, true) => counts.false_positive += 1,
                (true, false) => counts.false_negative += 1,
                (false, false) => {}
            }
        }
        if row.lookalike.trim().eq_ignore_ascii_case("yes") {
            report.lookalikes += 1;
            if got.contains(&Class::Crisis) {
                report.lookalikes_held += 1;
            }
        }
        let mut want_sorted = expected.clone();
        want_sorted.sort_unstable();
        if want_sorted != got {
            report.misses.push(Miss {
                line,
                text: row.text,
                expected: want_sorted,
                got,
            });
        }
        report.texts += 1;
    }
    Ok(report)
}
