//! [`Printable`]: peer-supplied text (a SOCKS domain name, a host a client asked for) as it may
//! appear in a log line or a message. Control characters would forge log lines, and Unicode
//! bidi controls (U+202E RIGHT-TO-LEFT OVERRIDE and friends) make a terminal show something
//! other than what was sent, so both are written as `\u{..}` escapes; everything else is
//! written as is.

use std::fmt::{self, Write};

/// Displays the wrapped text with control and bidi-control characters escaped.
#[derive(Debug, Clone, Copy)]
pub struct Printable<'a>(pub &'a str);

/// Bidi embedding, override and isolate controls, and the implicit marks (Unicode UAX #9).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() || is_bidi_control(c) || c == '\\' {
                write!(f, "{}", c.escape_unicode())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_and_control_characters_are_escaped() {
        let shown = Printable("evil\u{202E}moc.example\n\x1b[2J").to_string();
        assert_eq!(shown, "evil\\u{202e}moc.example\\u{a}\\u{1b}[2J");
    }

    #[test]
    fn ordinary_names_are_unchanged() {
        for s in [
            "db.prod.internal",
            "bücher.example",
            "xn--bcher-kva.example",
        ] {
            assert_eq!(Printable(s).to_string(), s);
        }
    }
}
