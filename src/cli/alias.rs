//! The target a direct-session command names (`stdio`, `shell`): an instance id, Name tag,
//! IP or computer name, or a `hosts:` alias from the config, which also supplies the profile,
//! region and port. Flags always win over the alias. Shared so every command reads aliases
//! the same way.

use crate::config::Config;
use crate::ssm::api::AwsSettings;

/// What a command line and the config say about where to connect.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The name to resolve with `ssm::target::resolve` (the alias's target, or as given).
    pub name: String,
    /// The alias's port, if it has one (a command's own flag is applied by the command).
    pub alias_port: Option<u16>,
    pub settings: AwsSettings,
}

/// Looks `target` up among the config's `hosts:`; `profile`/`region` are the command's flags.
pub fn destination(
    cfg: Option<&Config>,
    target: &str,
    profile: Option<&str>,
    region: Option<&str>,
) -> Destination {
    let alias = cfg.and_then(|c| c.hosts.get(target));
    let name = alias.map_or_else(|| target.to_owned(), |h| h.target.as_str().to_owned());
    Destination {
        name,
        alias_port: alias.and_then(|h| h.port),
        settings: AwsSettings {
            profile: profile
                .map(str::to_owned)
                .or_else(|| alias.and_then(|h| h.profile.clone())),
            region: region
                .map(str::to_owned)
                .or_else(|| alias.and_then(|h| h.region.clone())),
            credentials: None,
            endpoint_url: None,
            proxy: cfg.map(|c| c.proxy.clone()).unwrap_or_default(),
        },
    }
}
