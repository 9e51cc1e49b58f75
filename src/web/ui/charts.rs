//! Charts for the reports page: plain SVG drawn on the server, with no
//! JavaScript and no plotting crate (a few bars and whiskers are less code
//! than a plotting library's setup, and the markup stays escaped by maud).
//! Each chart is a `figure` with a title, a one-line summary a screen reader
//! reads, and the table of its data, for reading and for copying.

use maud::{Markup, html};

/// One bar: a label, a share (0–1) and, for a rate, its 95% interval.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub interval: Option<(f64, f64)>,
    /// What the bar's value is, as the table and the bar's end say it.
    pub text: String,
}

const LABEL_WIDTH: f64 = 130.0;
const BAR_WIDTH: f64 = 220.0;
const ROW: f64 = 26.0;

/// A horizontal bar chart, scaled to 100%, readable at 375 px (the SVG
/// scales to its container).
pub fn bars(id: &str, title: &str, summary: &str, columns: [&str; 2], bars: &[Bar]) -> Markup {
    let height = ROW * bars.len().max(1) as f64 + 8.0;
    html! {
        figure.chart aria-labelledby={ (id) "-title" } {
            h3.minor #{ (id) "-title" } { (title) }
            svg role="img" aria-labelledby={ (id) "-title " (id) "-summary" }
                viewBox={ "0 0 " (LABEL_WIDTH + BAR_WIDTH + 60.0) " " (height) }
                width="100%" class="chart" {
                title { (title) }
                @for (i, bar) in bars.iter().enumerate() {
                    @let y = 4.0 + ROW * i as f64;
                    text x="0" y=(y + 16.0) font-size="12" fill="#1f2933" { (bar.label) }
                    rect x=(LABEL_WIDTH) y=(y + 4.0) height="14" rx="2"
                        width=(BAR_WIDTH * bar.value.clamp(0.0, 1.0)) fill="#2f6f73" {}
                    @if let Some((low, high)) = bar.interval {
                        line x1=(LABEL_WIDTH + BAR_WIDTH * low) x2=(LABEL_WIDTH + BAR_WIDTH * high)
                            y1=(y + 11.0) y2=(y + 11.0) stroke="#8d2b0b" stroke-width="2" {}
                        line x1=(LABEL_WIDTH + BAR_WIDTH * low) x2=(LABEL_WIDTH + BAR_WIDTH * low)
                            y1=(y + 6.0) y2=(y + 16.0) stroke="#8d2b0b" stroke-width="2" {}
                        line x1=(LABEL_WIDTH + BAR_WIDTH * high) x2=(LABEL_WIDTH + BAR_WIDTH * high)
                            y1=(y + 6.0) y2=(y + 16.0) stroke="#8d2b0b" stroke-width="2" {}
                    }
                    text x=(LABEL_WIDTH + BAR_WIDTH + 6.0) y=(y + 16.0) font-size="12" fill="#52606d" { (bar.text) }
                }
            }
            figcaption #{ (id) "-summary" } .meta { (summary) }
            table {
                thead { tr { th { (columns[0]) } th { (columns[1]) } } }
                tbody {
                    @for bar in bars {
                        tr { td { (bar.label) } td { (bar.text) } }
                    }
                }
            }
        }
    }
}

/// A share as a percentage, with its interval when it has one.
pub fn percent(value: f64, interval: Option<(f64, f64)>) -> String {
    match interval {
        Some((low, high)) => format!(
            "{:.0}% ({:.0}–{:.0}%)",
            value * 100.0,
            low * 100.0,
            high * 100.0
        ),
        None => format!("{:.0}%", value * 100.0),
    }
}
