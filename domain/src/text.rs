//! The one rule for free text that arrives from outside (names, descriptions, reasons, policy
//! strings, search strings, cursors, ids given as strings), the same for both stores: no NUL and
//! no other control character, except tab, line feed and carriage return. PostgreSQL cannot
//! store NUL in `text`; SQLite can, so without this rule the two stores would answer the same
//! input differently.

/// Why a string is not acceptable text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("contains the control character U+{code:04X} at character {index}")]
pub struct TextError {
    /// The offending character's code point.
    pub code: u32,
    /// Its index in characters, from 0.
    pub index: usize,
}

/// Whether `c` is refused in text: a Unicode control character (category Cc) other than tab,
/// line feed and carriage return.
pub fn is_refused(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Checks `value` against the rule.
pub fn check(value: &str) -> Result<(), TextError> {
    match value.chars().enumerate().find(|(_, c)| is_refused(*c)) {
        Some((index, c)) => Err(TextError {
            code: c as u32,
            index,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_other_control_characters_are_refused() {
        for bad in ["a\u{0}b", "\u{1b}[31m", "x\u{7f}", "\u{85}", "\u{0}"] {
            assert!(check(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(
            check("ab\u{0}").unwrap_err(),
            TextError { code: 0, index: 2 }
        );
    }

    #[test]
    fn ordinary_text_with_tabs_and_line_breaks_is_accepted() {
        for good in ["", "Teapot", "line one\nline two\r\n", "a\tb", "Grüße 🫖"] {
            assert!(check(good).is_ok(), "{good:?} should be accepted");
        }
    }
}
