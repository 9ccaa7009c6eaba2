//! Finding the config file: `--config PATH` (which must exist), else `./config.yaml`, else the
//! per-user file (`$XDG_CONFIG_HOME/session-proxy/config.yaml` on Linux, via
//! `directories::ProjectDirs`), else none. The chosen path is returned so the caller can say
//! which file it used; reading and parsing it is [`super::load`]'s job.

use std::io;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// The file looked for in the working directory.
const LOCAL_FILE: &str = "config.yaml";

/// Returns the config file to use, or `None` when there is none (the caller then runs on
/// defaults or flags). An explicit path that is missing or not a regular file is an error.
pub fn discover(explicit: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
    let cwd = std::env::current_dir().ok();
    let found = discover_in(explicit, cwd.as_deref(), user_config_file().as_deref())?;
    match &found {
        Some(path) => tracing::debug!(path = %path.display(), "using config file"),
        None => tracing::debug!(searched = %describe_search(), "no config file found"),
    }
    Ok(found)
}

/// The places searched when `--config` is not given, in order (for help and error texts).
pub fn search_paths() -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from(".").join(LOCAL_FILE)];
    paths.extend(user_config_file());
    paths
}

/// `./config.yaml or /home/me/.config/session-proxy/config.yaml`.
pub(super) fn describe_search() -> String {
    let paths: Vec<String> = search_paths()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    paths.join(" or ")
}

fn user_config_file() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "session-proxy")
        .map(|d| d.config_dir().join("config.yaml"))
}

fn discover_in(
    explicit: Option<&Path>,
    cwd: Option<&Path>,
    user_file: Option<&Path>,
) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(path) = explicit {
        return match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(Some(path.to_path_buf())),
            Ok(_) => Err(ConfigError::NotAFile {
                path: path.to_path_buf(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ConfigError::NotFound {
                path: path.to_path_buf(),
            }),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        };
    }
    let local = cwd.map_or_else(|| PathBuf::from(LOCAL_FILE), |dir| dir.join(LOCAL_FILE));
    if local.is_file() {
        return Ok(Some(local));
    }
    Ok(user_file.filter(|f| f.is_file()).map(Path::to_path_buf))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    struct Dirs {
        _tmp: tempfile::TempDir,
        cwd: PathBuf,
        user: PathBuf,
    }

    fn dirs() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let cwd = tmp.path().join("cwd");
        let user_dir = tmp.path().join("xdg/session-proxy");
        fs::create_dir_all(&cwd).unwrap();
        fs::create_dir_all(&user_dir).unwrap();
        Dirs {
            cwd,
            user: user_dir.join("config.yaml"),
            _tmp: tmp,
        }
    }

    fn run(d: &Dirs, explicit: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
        discover_in(explicit, Some(&d.cwd), Some(&d.user))
    }

    #[test]
    fn nothing_found_is_none() {
        let d = dirs();
        assert_eq!(run(&d, None).unwrap(), None);
    }

    #[test]
    fn user_file_is_used_when_no_local_file() {
        let d = dirs();
        fs::write(&d.user, "").unwrap();
        assert_eq!(run(&d, None).unwrap(), Some(d.user.clone()));
    }

    #[test]
    fn local_file_beats_user_file() {
        let d = dirs();
        fs::write(&d.user, "").unwrap();
        fs::write(d.cwd.join("config.yaml"), "").unwrap();
        assert_eq!(run(&d, None).unwrap(), Some(d.cwd.join("config.yaml")));
    }

    #[test]
    fn a_directory_named_config_yaml_is_skipped() {
        let d = dirs();
        fs::create_dir(d.cwd.join("config.yaml")).unwrap();
        assert_eq!(run(&d, None).unwrap(), None);
    }

    #[test]
    fn explicit_path_beats_everything() {
        let d = dirs();
        fs::write(&d.user, "").unwrap();
        fs::write(d.cwd.join("config.yaml"), "").unwrap();
        let explicit = d.cwd.join("other.yaml");
        fs::write(&explicit, "").unwrap();
        assert_eq!(run(&d, Some(&explicit)).unwrap(), Some(explicit));
    }

    #[test]
    fn explicit_path_must_exist() {
        let d = dirs();
        fs::write(d.cwd.join("config.yaml"), "").unwrap();
        let missing = d.cwd.join("missing.yaml");
        let err = run(&d, Some(&missing)).unwrap_err();
        assert!(
            matches!(&err, ConfigError::NotFound { path } if *path == missing),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("missing.yaml") && msg.contains("does not exist"),
            "{msg}"
        );
    }

    #[test]
    fn explicit_path_must_be_a_file() {
        let d = dirs();
        let err = run(&d, Some(&d.cwd)).unwrap_err();
        assert!(matches!(err, ConfigError::NotAFile { .. }), "{err:?}");
    }

    #[test]
    fn search_paths_start_with_the_local_file() {
        let paths = search_paths();
        assert_eq!(paths.first().unwrap(), &Path::new(".").join("config.yaml"));
        assert!(describe_search().starts_with("./config.yaml"));
    }
}
