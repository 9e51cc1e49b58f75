//! The languages rules are written in.

use rust_stemmers::Algorithm;

/// The languages rules are written in; each has its own stemmer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lang {
    En,
    Es,
}

pub(super) const LANGS: [Lang; 2] = [Lang::En, Lang::Es];

impl Lang {
    pub(super) fn index(self) -> usize {
        self as usize
    }

    pub(super) fn algorithm(self) -> Algorithm {
        match self {
            Lang::En => Algorithm::English,
            Lang::Es => Algorithm::Spanish,
        }
    }
}
