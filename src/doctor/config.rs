//! Check 1: the config file is found (`--config`, `./config.yaml`, the XDG file, or none) and
//! valid, with the loader's own errors (they name the key path and the fix).
//!
//! A bad file fails this check only: the caller runs the later checks as if there were no
//! file (environment and flags alone), so one run shows everything that is wrong.

use std::path::Path;

use super::report::Check;
use crate::config::{self, Config};
use crate::exit::codes;

const NAME: &str = "config";

/// The check, and the config to run the later checks with (`None`: defaults).
pub fn check(explicit: Option<&Path>) -> (Check, Option<Config>) {
    let path = match config::discover(explicit) {
        Ok(Some(p)) => p,
        Ok(None) => {
            let searched: Vec<String> = config::search_paths()
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            let detail = format!("none: defaults (looked for {})", searched.join(", "));
            return (Check::ok(NAME, detail), None);
        }
        Err(e) => return (fail(&e), None),
    };
    match config::load(&path) {
        Ok(cfg) => {
            let detail = format!(
                "{}: valid ({} upstreams, {} hosts, {} forwards)",
                path.display(),
                cfg.upstreams.len(),
                cfg.hosts.len(),
                cfg.forwards.len()
            );
            (Check::ok(NAME, detail), Some(cfg))
        }
        Err(e) => (fail(&e), None),
    }
}

fn fail(e: &config::ConfigError) -> Check {
    Check::fail(
        NAME,
        e.to_string(),
        "correct the file where the message points (config.example.yaml documents every key), \
         or pick another with --config; later checks ran without it",
        codes::CONFIG,
    )
}
