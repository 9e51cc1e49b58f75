//! How long the reply classifier takes on the longest text an SMS provider
//! delivers (1,600 characters). The goal is under 1 ms a text. The floor,
//! measured in the same run on the same texts, is the least any classifier
//! must do: fold the text to lowercase and split it into words.
//!
//! Run with `cargo bench --bench classify`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

const LIMIT: usize = 1_600;

/// `sentences` repeated until the text is `LIMIT` characters long.
fn long_text(sentences: &[&str]) -> String {
    let mut text = String::new();
    for sentence in sentences.iter().cycle() {
        if text.chars().count() >= LIMIT {
            break;
        }
        text.push_str(sentence);
        text.push(' ');
    }
    text.chars().take(LIMIT).collect()
}

/// The mean time of `f` over enough runs to fill about half a second.
fn time(mut f: impl FnMut()) -> Duration {
    for _ in 0..50 {
        f();
    }
    let mut runs = 0u32;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(500) {
        f();
        runs += 1;
    }
    start.elapsed() / runs
}

fn main() {
    let words =
        reengage::pipeline::replies::Words::load(Path::new("")).expect("the built-in word lists");
    let cases = [
        (
            "an ordinary long reply",
            long_text(&[
                "hey coach its been a long couple of weeks, work has been crazy and my kids were sick",
                "i went to group on tuesday and it was good to see everyone again, honestly it helped",
                "my sponsor says hi, we got coffee after the meeting and talked about the holidays",
                "sorry i didnt answer sooner, my phone was dead most of the weekend lol",
            ]),
        ),
        (
            "a long crisis text",
            long_text(&[
                "i dont know why im writing this, i guess i just wanted someone to know",
                "ive been so tired of everything and i dont see the point anymore",
                "i have my moms pills lined up on the counter and i keep staring at them",
                "please tell my kids i love them, im sorry for everything",
            ]),
        ),
        (
            "a long Spanish reply",
            long_text(&[
                "hola coach perdon por no contestar, he tenido mucho trabajo y los ninos enfermos",
                "fui al grupo el martes y me ayudo mucho, gracias por estar pendiente de mi",
                "ya no aguanto el calor de esta ciudad jaja pero todo bien, nos vemos el jueves",
            ]),
        ),
    ];
    println!(
        "reply classifier, {LIMIT}-character texts ({} rules)",
        words.rule_count()
    );
    let mut worst: f64 = 0.0;
    for (name, text) in &cases {
        let classify = time(|| {
            black_box(words.classify(black_box(text)));
        });
        let floor = time(|| {
            black_box(black_box(text).to_lowercase().split_whitespace().count());
        });
        let ratio = classify.as_secs_f64() / floor.as_secs_f64();
        worst = worst.max(classify.as_secs_f64());
        println!(
            "  {name:<24} {:>8.1} µs   floor {:>6.1} µs   {ratio:>6.1}×",
            classify.as_secs_f64() * 1e6,
            floor.as_secs_f64() * 1e6
        );
    }
    println!(
        "slowest: {:.3} ms a text (goal: under 1 ms): {}",
        worst * 1e3,
        if worst < 1e-3 { "met" } else { "MISSED" }
    );
}
