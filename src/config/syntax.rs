//! serde_yaml_ng's syntax and type errors, rewritten for people who edit YAML by hand.
//!
//! The parser's words are precise but name its internals: "while scanning an alias" is what an
//! unquoted `*.internal` glob produces, "expected u64" means a whole number, and an unknown key
//! lists every known one without saying which was probably meant. Each rewrite keeps the
//! position (printed compiler-style in front by [`super::ConfigError::Syntax`]) and names the fix.

use super::ConfigError;

/// Builds the [`ConfigError::Syntax`] for a parse failure of the file `origin`.
pub(super) fn error(e: &serde_yaml_ng::Error, origin: &str) -> ConfigError {
    let location = e.location();
    ConfigError::Syntax {
        origin: origin.to_owned(),
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
        message: humanize(&e.to_string()),
    }
}

/// The readable form of one serde_yaml_ng message.
pub(super) fn humanize(message: &str) -> String {
    let message = strip_positions(message);
    if message.contains("while scanning an alias") {
        return "a value that starts with `*` is read as a YAML alias; quote globs that start \
                with *, as in match: \"*.internal\""
            .to_owned();
    }
    if let Some(better) = unknown_field(&message) {
        return better;
    }
    whole_numbers(&message)
}

/// serde_yaml_ng puts " at line L column C" inside the text (sometimes twice, for the scanner's
/// own mark); the position is printed in front instead.
fn strip_positions(message: &str) -> String {
    let mut out = message.to_owned();
    while let Some(start) = out.find(" at line ") {
        let rest = out.get(start + " at line ".len()..).unwrap_or_default();
        let Some(len) = position_len(rest) else { break };
        out.replace_range(start..start + " at line ".len() + len, "");
    }
    out
}

/// Length of "L column C" at the start of `s`, if that is what it holds.
fn position_len(s: &str) -> Option<usize> {
    let digits = |t: &str| t.bytes().take_while(u8::is_ascii_digit).count();
    let line = digits(s);
    let rest = s.get(line..)?.strip_prefix(" column ")?;
    let column = digits(rest);
    (line > 0 && column > 0).then_some(line + " column ".len() + column)
}

/// "unknown field `pool_sise`, expected one of `a`, `b`" → a did-you-mean for the closest key.
fn unknown_field(message: &str) -> Option<String> {
    let (head, known) = message.split_once(", expected one of ")?;
    let (prefix, field) = head.split_once("unknown field `")?;
    let field = field.strip_suffix('`')?;
    let names: Vec<&str> = known
        .split(", ")
        .map(|k| k.trim_matches('`'))
        .filter(|k| !k.is_empty())
        .collect();
    let closest = closest(field, names.iter().copied(), |k| 2.max(k.len() / 3));
    let list = names.join(", ");
    Some(match closest {
        Some(k) => {
            format!("{prefix}unknown key `{field}`; did you mean `{k}`? (known keys: {list})")
        }
        None => format!("{prefix}unknown key `{field}` (known keys: {list})"),
    })
}

/// The name in `names` fewest edits away from `word`, if within `max(name)` edits: what a
/// did-you-mean offers.
pub(super) fn closest<'a>(
    word: &str,
    names: impl Iterator<Item = &'a str>,
    max: impl Fn(&str) -> usize,
) -> Option<&'a str> {
    names
        .map(|k| (strsim::damerau_levenshtein(word, k), k))
        .filter(|(d, k)| *d <= max(k))
        .min()
        .map(|(_, k)| k)
}

/// Rust integer type names in "expected u64" and friends become words.
fn whole_numbers(message: &str) -> String {
    let mut out = message.to_owned();
    for ty in ["usize", "u64", "u32", "u16", "u8", "i64", "i32"] {
        let from = format!("expected {ty}");
        let mut at = 0;
        while let Some(found) = out.get(at..).and_then(|s| s.find(&from)) {
            let start = at + found;
            let end = start + from.len();
            let next = out.get(end..).and_then(|s| s.chars().next());
            if next.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                at = end;
                continue;
            }
            out.replace_range(start..end, "expected a whole number");
            at = start + "expected a whole number".len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquoted_star_glob_says_to_quote_it() {
        let e = crate::config::from_yaml_str(
            "routes:\n  - match: *.internal\n    via: reject\n",
            "c.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("c.yaml:2:"), "{e}");
        assert!(e.contains("quote globs that start with *"), "{e}");
        assert!(!e.contains("alias at line"), "{e}");
    }

    #[test]
    fn integer_type_names_read_as_whole_number() {
        let yaml = "upstreams:\n  b:\n    targets: [i-0123456789abcdef0]\n    pool_size: two\n";
        let e = crate::config::from_yaml_str(yaml, "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a whole number"), "{e}");
        assert!(!e.contains("u64"), "{e}");
    }

    #[test]
    fn unknown_key_suggests_the_closest_known_one() {
        let yaml = "upstreams:\n  b:\n    targets: [i-0123456789abcdef0]\n    pool_sise: 3\n";
        let e = crate::config::from_yaml_str(yaml, "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown key `pool_sise`; did you mean `pool_size`?"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_far_from_every_known_one_suggests_nothing() {
        let m = humanize("unknown field `zzzzzzzz`, expected one of `targets`, `port`");
        assert_eq!(m, "unknown key `zzzzzzzz` (known keys: targets, port)");
    }

    #[test]
    fn positions_inside_the_text_are_removed() {
        assert_eq!(
            strip_positions("bad thing at line 2 column 12, more at line 3 column 4"),
            "bad thing, more"
        );
        assert_eq!(strip_positions("at line x"), "at line x");
    }

    #[test]
    fn only_whole_type_names_are_replaced() {
        assert_eq!(whole_numbers("expected u64"), "expected a whole number");
        assert_eq!(
            whole_numbers("expected u16, got x"),
            "expected a whole number, got x"
        );
        assert_eq!(whole_numbers("expected u8x"), "expected u8x");
    }
}
