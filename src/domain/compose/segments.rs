//! SMS segment counting, following docs/domain.md: GSM-7 allows 160 characters in one
//! segment and 153 per segment when split; one character outside GSM-7 switches
//! the whole message to UCS-2, which allows 70 and 67.

use serde::Serialize;

/// The GSM 03.38 basic character set.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Characters of the GSM 03.38 extension table; each takes two septets.
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SegmentCount {
    pub encoding: Encoding,
    /// Characters as the network counts them: septets for GSM-7, UTF-16 code
    /// units for UCS-2.
    pub units: usize,
    pub segments: usize,
}

pub fn is_gsm7(c: char) -> bool {
    GSM7_BASIC.contains(c) || GSM7_EXTENSION.contains(c)
}

/// Counts the segments `body` is sent in.
pub fn count(body: &str) -> SegmentCount {
    let (encoding, widths, single, multi): (_, Vec<usize>, _, _) = if body.chars().all(is_gsm7) {
        let septets = body
            .chars()
            .map(|c| if GSM7_EXTENSION.contains(c) { 2 } else { 1 })
            .collect();
        (Encoding::Gsm7, septets, 160, 153)
    } else {
        (
            Encoding::Ucs2,
            body.chars().map(char::len_utf16).collect(),
            70,
            67,
        )
    };
    let units: usize = widths.iter().sum();
    let segments = match units {
        0 => 0,
        n if n <= single => 1,
        _ => fill(&widths, multi),
    };
    SegmentCount {
        encoding,
        units,
        segments,
    }
}

/// Segments of `capacity` units filled character by character: a character
/// of two units (an extension character in GSM-7, an emoji in UCS-2) is never
/// split across two segments, so it may start a new one early.
fn fill(widths: &[usize], capacity: usize) -> usize {
    let mut segments = 1;
    let mut used = 0;
    for &width in widths {
        if used + width > capacity {
            segments += 1;
            used = 0;
        }
        used += width;
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_fits_160_in_one_segment_and_153_per_part() {
        assert_eq!(count(&"a".repeat(160)).segments, 1);
        assert_eq!(count(&"a".repeat(161)).segments, 2);
        assert_eq!(count(&"a".repeat(306)).segments, 2);
        assert_eq!(count(&"a".repeat(307)).segments, 3);
        assert_eq!(count("a€").units, 3);
    }

    #[test]
    fn a_two_unit_character_never_straddles_two_segments() {
        // 306 septets would fit two segments of 153, but the "€" would be split.
        let body = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(count(&body).units, 306);
        assert_eq!(count(&body).segments, 3);
        let body = format!("{}€{}", "a".repeat(151), "a".repeat(153));
        assert_eq!(count(&body).segments, 2);
        // In UCS-2 an emoji is a surrogate pair: the same holds.
        let body = format!("{}🙂{}", "é".repeat(66), "é".repeat(66));
        assert_eq!(count(&body).segments, 3);
    }

    #[test]
    fn one_curly_quote_or_emoji_switches_to_ucs2() {
        let body = format!("{}\u{2019}", "a".repeat(69));
        let c = count(&body);
        assert_eq!((c.encoding, c.segments), (Encoding::Ucs2, 1));
        let c = count(&format!("{}\u{2019}", "a".repeat(70)));
        assert_eq!(c.segments, 2);
        // An emoji is two UTF-16 units.
        assert_eq!(count("🙂").units, 2);
        assert_eq!(count(&"a".repeat(134)).encoding, Encoding::Gsm7);
        assert_eq!(count(&format!("{}🙂", "a".repeat(133))).segments, 3);
    }
}
