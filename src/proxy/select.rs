//! Which proxy a connection takes: the config file's `proxy:` key wins over the environment
//! (`HTTPS_PROXY`/`https_proxy` for https:// and wss:// endpoints, `HTTP_PROXY`/`http_proxy`
//! for http:// and ws:// ones such as the simulator, as curl does); `NO_PROXY`/`no_proxy`
//! applies either way. Pure: the environment is passed in.

use super::{NoProxy, ProxyUrl};

/// What the config file says about proxies (`proxy:`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProxySetting {
    /// No `proxy:` key: the environment decides.
    #[default]
    Environment,
    /// `proxy: none` or an empty value: direct connections, whatever the environment says.
    Disabled,
    /// `proxy: http://…`: every connection (http and https) goes through it.
    Url(ProxyUrl),
}

impl ProxySetting {
    /// The setting for a `proxy:` value: empty or `none` disable proxies.
    pub fn parse(value: Option<&str>) -> Result<Self, super::ProxyError> {
        match value.map(str::trim) {
            None | Some("") => Ok(Self::Disabled),
            Some(v) if v.eq_ignore_ascii_case("none") => Ok(Self::Disabled),
            Some(v) => ProxyUrl::parse("proxy", v).map(Self::Url),
        }
    }
}

/// The proxies in force for this process: one decision for SDK calls and data channels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    http: Option<ProxyUrl>,
    https: Option<ProxyUrl>,
    no_proxy: NoProxy,
}

impl Proxies {
    /// Resolves `setting` against this process's environment.
    pub fn from_env(setting: &ProxySetting) -> Self {
        Self::resolve(setting, |k| std::env::var(k).ok())
    }

    /// Resolves `setting` against `env`. An environment value that is not a usable proxy URL
    /// is skipped with a warning, as the SDK's matcher skips it, so both paths agree.
    pub fn resolve(setting: &ProxySetting, env: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|n| env(n).filter(|v| !v.trim().is_empty()).map(|v| (n, v)))
        };
        let no_proxy = first(["NO_PROXY", "no_proxy"])
            .map(|(_, v)| NoProxy::parse(&v))
            .unwrap_or_default();
        let from_env = |names: [&'static str; 2]| {
            let (name, value) = first(names)?;
            ProxyUrl::parse(name, &value)
                .map_err(|e| tracing::warn!("{e}; connecting without it"))
                .ok()
        };
        match setting {
            ProxySetting::Disabled => Self::default(),
            ProxySetting::Url(u) => Self {
                http: Some(u.clone()),
                https: Some(u.clone()),
                no_proxy,
            },
            ProxySetting::Environment => Self {
                http: from_env(["HTTP_PROXY", "http_proxy"]),
                https: from_env(["HTTPS_PROXY", "https_proxy"]),
                no_proxy,
            },
        }
    }

    /// The proxy for a connection to `host` over TLS (`https`, `wss`) or not; `None` = direct.
    pub fn for_target(&self, tls: bool, host: &str) -> Option<&ProxyUrl> {
        let p = if tls { &self.https } else { &self.http };
        p.as_ref().filter(|_| !self.no_proxy.matches(host))
    }

    /// The proxy for `url` (`scheme://host[:port]/…`), judged by its scheme and host.
    pub fn for_url(&self, url: &str) -> Option<&ProxyUrl> {
        let (scheme, rest) = url.split_once("://")?;
        let tls = matches!(scheme.to_ascii_lowercase().as_str(), "https" | "wss");
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match hostport.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => hostport.split(':').next().unwrap_or_default(),
        };
        self.for_target(tls, host)
    }

    /// The proxy for http:// and for https:// targets (before `NO_PROXY`).
    pub fn http(&self) -> Option<&ProxyUrl> {
        self.http.as_ref()
    }

    pub fn https(&self) -> Option<&ProxyUrl> {
        self.https.as_ref()
    }

    pub fn no_proxy(&self) -> &NoProxy {
        &self.no_proxy
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    const CORP: &[(&str, &str)] = &[
        ("https_proxy", "http://secure:3128"),
        ("HTTP_PROXY", "http://plain:8080"),
        ("NO_PROXY", "internal.example,10.0.0.0/8"),
    ];

    #[test]
    fn environment_picks_the_proxy_by_scheme_and_honours_no_proxy() {
        let p = Proxies::resolve(&ProxySetting::Environment, env(CORP));
        let at = |url| p.for_url(url).map(ToString::to_string);
        assert_eq!(
            at("wss://ssmmessages.eu-west-1.amazonaws.com/v1/x").as_deref(),
            Some("http://secure:3128")
        );
        assert_eq!(
            at("https://ssm.eu-west-1.amazonaws.com").as_deref(),
            Some("http://secure:3128")
        );
        assert_eq!(
            at("http://127.0.0.1:4566/").as_deref(),
            Some("http://plain:8080")
        );
        assert_eq!(at("ws://sim.internal.example:80/v1/data-channel/s"), None);
        assert_eq!(at("https://10.1.2.3/"), None);
    }

    #[test]
    fn config_url_wins_over_the_environment_for_both_schemes() {
        let mine = ProxySetting::parse(Some("http://u:pw@mine:3128")).unwrap();
        let p = Proxies::resolve(&mine, env(CORP));
        assert_eq!(p.for_url("http://a/").unwrap().host(), "mine");
        assert_eq!(p.for_url("wss://a/").unwrap().host(), "mine");
        // NO_PROXY still applies to the config's proxy.
        assert_eq!(p.for_url("https://x.internal.example/"), None);
    }

    #[test]
    fn proxy_none_or_empty_disables_the_environment() {
        for v in [None, Some(""), Some("none"), Some(" NONE ")] {
            let s = ProxySetting::parse(v).unwrap();
            assert_eq!(s, ProxySetting::Disabled);
            let p = Proxies::resolve(&s, env(CORP));
            assert_eq!(p.for_url("https://ssm.us-east-1.amazonaws.com"), None);
        }
    }

    #[test]
    fn unusable_environment_values_are_skipped() {
        let p = Proxies::resolve(
            &ProxySetting::Environment,
            env(&[("HTTPS_PROXY", "socks5://x:1080"), ("http_proxy", "  ")]),
        );
        assert_eq!(p, Proxies::default());
    }
}
