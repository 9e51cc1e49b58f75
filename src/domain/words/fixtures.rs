//! The word lists the unit tests compile: small, so that a test shows the
//! rule it means.

use super::class::Class;
use super::classify::Words;
use super::file::WordFile;

pub(super) fn words(file: &str) -> Words {
    Words::compile(&WordFile::parse(file).unwrap()).unwrap()
}

pub(super) fn classes(w: &Words, text: &str) -> Vec<Class> {
    w.classify(text).classes
}

/// Normalising, word forms, an exception, keywords and fillers.
pub(super) const SMALL: &str = r##"
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

/// The rest of the syntax: sets, names, anchors and the signals net.
pub(super) const SYNTAX: &str = r##"
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
