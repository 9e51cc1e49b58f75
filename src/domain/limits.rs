//! How long each text a person or a system gives may be. Every input is
//! checked against these before it is stored, so that a 100,000-character
//! name is an error that names its field, not a row that breaks a page.

/// A name: first, preferred, a coach's.
pub const NAME: usize = 100;
/// An id from the agency's own system.
pub const EXTERNAL_ID: usize = 100;
/// An email address (RFC 5321's limit on a path).
pub const EMAIL: usize = 254;
/// A phone number as written, with spaces and punctuation.
pub const PHONE: usize = 40;
/// A short code: a channel, a language, a time zone, a status, a yes or no.
pub const CODE: usize = 64;
/// A date and time as written.
pub const TIMESTAMP: usize = 64;
/// A note on an event, or a reason for a decision.
pub const NOTE: usize = 2_000;
/// An email's subject.
pub const SUBJECT: usize = 200;
/// An email's text. (An SMS has its own, smaller limit.)
pub const BODY: usize = 20_000;

/// An SMS: Twilio refuses a longer body (it is sent as up to 10 segments).
pub const SMS: usize = 1_600;

/// `None` when `value` fits in `max` characters; else the problem, as
/// "is N characters long; the most is MAX".
pub fn length_problem(value: &str, max: usize) -> Option<String> {
    let length = value.chars().count();
    (length > max).then(|| format!("is {length} characters long; the most is {max}"))
}

/// [`length_problem`], starting with the field's name.
pub fn too_long(field: &str, value: &str, max: usize) -> Option<String> {
    length_problem(value, max).map(|problem| format!("{field} {problem}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_at_the_limit_fits_and_one_more_character_is_named() {
        assert_eq!(too_long("first_name", &"é".repeat(NAME), NAME), None);
        assert_eq!(
            too_long("first_name", &"é".repeat(NAME + 1), NAME).as_deref(),
            Some("first_name is 101 characters long; the most is 100")
        );
    }
}
