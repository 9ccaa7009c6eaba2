//! Finding and loading the configuration file for a command (`--config` > `./config.yaml` >
//! the XDG config dir). Commands that can run without one get `None` when none exists.

use crate::config::{self, Config};

use super::GlobalArgs;

/// Loads the discovered config file, if any; a file that exists but is invalid is an error.
pub fn optional(g: &GlobalArgs) -> Result<Option<Config>, config::ConfigError> {
    match config::discover(g.config.as_deref())? {
        Some(path) => config::load(&path).map(Some),
        None => Ok(None),
    }
}
