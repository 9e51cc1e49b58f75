//! `reengage replies`: the reply classifier on a text or a labelled corpus.
//! It needs the word lists only, not a database.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum RepliesCommand {
    /// Print what a text is and which rule said so.
    Test {
        text: String,
        /// The word lists alone, without the reply model's opinion.
        #[arg(long)]
        rules_only: bool,
    },
    /// Classify a labelled corpus (CSV: text,classes,lang,lookalike) and print
    /// recall and precision for each class.
    Eval {
        file: PathBuf,
        /// Also print every text classified differently from its label.
        #[arg(long)]
        misses: bool,
        /// The word lists alone, without the reply model's opinion.
        #[arg(long)]
        rules_only: bool,
    },
}

/// `replies test` and `replies eval`.
pub fn run(
    words: crate::pipeline::replies::Words,
    command: &RepliesCommand,
) -> anyhow::Result<ExitCode> {
    let (RepliesCommand::Test { rules_only, .. } | RepliesCommand::Eval { rules_only, .. }) =
        command;
    let words = if *rules_only {
        words.without_model()
    } else {
        words
    };
    match command {
        RepliesCommand::Test { text, .. } => {
            let class = words.classify(text);
            let classes: Vec<&str> = class.classes.iter().map(|c| c.as_ref()).collect();
            say!("{}", classes.join(", "));
            if class.keyword {
                say!("  the whole text is a keyword");
            }
            for m in &class.matched {
                say!("  {}: \"{}\" matched `{}`", m.class, m.text, m.rule);
            }
        }
        RepliesCommand::Eval { file, misses, .. } => {
            let corpus = std::fs::File::open(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let report = crate::domain::words::evaluate::evaluate(&words, corpus)?;
            if *misses {
                for miss in &report.misses {
                    let names = |c: &[crate::pipeline::replies::Class]| {
                        c.iter().map(|c| c.as_ref()).collect::<Vec<_>>().join(";")
                    };
                    say!(
                        "line {}: expected {}, got {}: {}",
                        miss.line,
                        names(&miss.expected),
                        names(&miss.got),
                        miss.text
                    );
                }
            }
            say!("{report}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
