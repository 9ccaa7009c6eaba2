//! [`Redacted<T>`]: a wrapper for secrets (passwords, AWS secret keys, session tokens) whose
//! `Debug` and `Display` print `<redacted>`, so a secret cannot reach a log line, an error
//! message or a `{:?}` dump by accident. The value is read only through an explicit
//! [`Redacted::expose`]. It deserializes transparently (a `password: s3cret` YAML scalar becomes
//! `Redacted("s3cret")`) and deliberately does not implement `Serialize`: anything that wants to
//! write a secret out has to call `expose()` and say so.

use std::fmt;

use serde::Deserialize;

/// What [`Redacted`] prints instead of its value.
pub const REDACTED: &str = "<redacted>";

/// A secret value. Equality compares the values (config reload needs it); this is not a
/// constant-time comparison, so authentication code should compare `expose()`d bytes itself.
#[derive(Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(transparent)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    /// Wraps a secret.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// Borrows the secret. Every call site is a place where the secret leaves its wrapper;
    /// keep them few and never pass the result to a log macro.
    pub const fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Redacted<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Redacted::new(String::from("hunter2"));
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{s:#?}"), "<redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn redacted_inside_a_derived_debug_struct_stays_hidden() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Creds {
            user: String,
            password: Redacted<String>,
        }
        let c = Creds {
            user: "alice".into(),
            password: "s3cret".to_owned().into(),
        };
        let dbg = format!("{c:?}");
        assert!(dbg.contains("alice"));
        assert!(!dbg.contains("s3cret"), "{dbg}");
    }

    #[test]
    fn deserializes_transparently() {
        #[derive(Deserialize)]
        struct W {
            password: Redacted<String>,
        }
        let w: W = serde_yaml_ng::from_str("password: s3cret\n").unwrap();
        assert_eq!(w.password.expose(), "s3cret");
        assert_eq!(w.password.clone().into_inner(), "s3cret");
        assert_eq!(w.password, Redacted::new("s3cret".to_owned()));
    }
}
