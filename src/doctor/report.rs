//! [pure] What `doctor` found: one [`Check`] per line, in the order they ran, and the two
//! renderings of it (aligned text for people, one JSON object for scripts). Both come from the
//! same [`Report`], so `--json` never says something the text does not.

use std::fmt::Write as _;

use serde::Serialize;

use crate::exit::codes;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Works, but something is degraded or optional is missing; does not fail the run.
    Warn,
    /// Something a command needs is broken; the run exits non-zero.
    Fail,
    /// Not checked: an earlier check it needs failed, nothing was asked of it, or it cannot be
    /// checked without side effects (StartSession has no dry run).
    Skip,
}

impl Status {
    /// The word in the text rendering; `FAIL` is shouted so it stands out in a column of `ok`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "FAIL",
            Self::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short and stable (scripts match on it): `config`, `region`, `credentials`, ...
    pub name: &'static str,
    pub status: Status,
    /// What was found, in one line (a config error may add indented lines of its issues).
    pub detail: String,
    /// What to do about a `fail` or `warn`, in one or two lines.
    pub fix: Option<String>,
    /// The exit code a failure of this check stands for (the table in `exit.rs`).
    #[serde(skip)]
    pub code: u8,
}

impl Check {
    pub fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Ok, detail, None, codes::OK)
    }

    pub fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Warn, detail, Some(fix.into()), codes::OK)
    }

    pub fn skip(name: &'static str, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Skip, detail, None, codes::OK)
    }

    /// A failure whose exit code is `code` (one of [`codes`]).
    pub fn fail(
        name: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
        code: u8,
    ) -> Self {
        Self::new(name, Status::Fail, detail, Some(fix.into()), code)
    }

    fn new(
        name: &'static str,
        status: Status,
        detail: impl Into<String>,
        fix: Option<String>,
        code: u8,
    ) -> Self {
        Self {
            name,
            status,
            detail: detail.into(),
            fix,
            code,
        }
    }
}

/// Every check of one run, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

/// The `--json` form: `{"ok": bool, "checks": [{name, status, detail, fix}, ...]}`.
#[derive(Serialize)]
struct Json<'a> {
    ok: bool,
    checks: &'a [Check],
}

impl Report {
    pub fn push(&mut self, c: Check) {
        self.checks.push(c);
    }

    /// The failed checks, in order.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }

    /// The exit code: 0 when nothing failed (warnings allowed), else the first failure's.
    pub fn exit_code(&self) -> u8 {
        self.failures().next().map_or(codes::OK, |c| c.code)
    }

    /// Aligned text: `name  status  detail`, then `fix:` indented under a failure or warning.
    pub fn to_text(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            let mut lines = c.detail.lines();
            let first = lines.next().unwrap_or_default();
            let _ = writeln!(out, "{:<width$}  {:<4}  {first}", c.name, c.status.label());
            let indent = " ".repeat(width + 8);
            for more in lines {
                let _ = writeln!(out, "{indent}{}", more.trim_start());
            }
            if let Some(fix) = &c.fix {
                for (i, line) in fix.lines().enumerate() {
                    let head = if i == 0 { "fix: " } else { "     " };
                    let _ = writeln!(out, "{indent}{head}{line}");
                }
            }
        }
        let failed = self.failures().count();
        let warned = self.count(Status::Warn);
        let _ = match failed {
            0 => writeln!(out, "no failures ({warned} warnings)"),
            n => writeln!(out, "{n} failed, {warned} warnings"),
        };
        out
    }

    fn count(&self, s: Status) -> usize {
        self.checks.iter().filter(|c| c.status == s).count()
    }

    /// One JSON object (pretty-printed, newline-terminated).
    pub fn to_json(&self) -> String {
        let j = Json {
            ok: self.failures().next().is_none(),
            checks: &self.checks,
        };
        let mut s = serde_json::to_string_pretty(&j).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            checks: vec![
                Check::ok("config", "none: defaults"),
                Check::fail("region", "no region", "pass --region", codes::CONFIG),
                Check::warn("master", "not running", "start `session-proxy serve`"),
                Check::fail("target", "offline", "start it", codes::NO_HOST),
                Check::skip("sessions", "not checked"),
            ],
        }
    }

    #[test]
    fn the_first_failure_decides_the_exit_code_and_warnings_alone_exit_zero() {
        assert_eq!(sample().exit_code(), codes::CONFIG);
        let warn_only = Report {
            checks: vec![Check::warn("ssh", "old", "upgrade"), Check::ok("x", "y")],
        };
        assert_eq!(warn_only.exit_code(), codes::OK);
    }

    #[test]
    fn text_has_one_line_per_check_with_the_fix_under_it() {
        let t = sample().to_text();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines.first().copied(),
            Some("config    ok    none: defaults")
        );
        assert_eq!(lines.get(1).copied(), Some("region    FAIL  no region"));
        assert_eq!(
            lines.get(2).copied(),
            Some("                fix: pass --region")
        );
        assert!(t.ends_with("2 failed, 1 warnings\n"), "{t}");
    }

    #[test]
    fn json_carries_name_status_detail_and_fix_of_every_check() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(v["ok"], false);
        let checks = v["checks"].as_array().unwrap();
        assert_eq!(checks.len(), 5);
        assert_eq!(checks[1]["name"], "region");
        assert_eq!(checks[1]["status"], "fail");
        assert_eq!(checks[1]["fix"], "pass --region");
        assert_eq!(checks[0]["fix"], serde_json::Value::Null);
        assert!(checks[0].get("code").is_none());
    }
}
