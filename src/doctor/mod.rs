//! `session-proxy doctor`: checks, in order, everything a command needs, and names the fix for
//! each failure. One check per concern, each in its own file:
//!
//! 1. `config` ([`config`]): found and valid;
//! 2. `region`, `credentials` ([`identity`]): which identity (STS), profile and source;
//! 3. `endpoint` ([`endpoint`]): SSM answers, timed, directly or through a proxy;
//! 4. `perm-describe`, `documents`, `perm-sessions` ([`endpoint`]): the permissions, by cheap
//!    calls (session calls cannot be dry-run and say so);
//! 5. `target`, `agent` ([`target`]): for `doctor <target>`, online, agent version, platform;
//! 6. `master`, `upstreams` ([`master`]): the control socket and the master's upstreams;
//! 7. `ssh` ([`ssh`]): the local OpenSSH client.
//!
//! Every check runs whatever failed before it, unless it needs what failed: a bad config file
//! fails `config` and the rest run as if there were none (environment and flags); checks that
//! need AWS are skipped when no region or credentials resolve. [`Report`] holds the result.

pub mod config;
pub mod endpoint;
pub mod identity;
pub mod master;
mod report;
pub mod ssh;
pub mod target;

use std::path::PathBuf;

use self::identity::RegionSource;
pub use self::report::{Check, Report, Status};
use crate::config::Config;
use crate::ssm::api::{ApiError, AwsSettings, SsmApi};

/// What the command line asks of `doctor`.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--control-socket`.
    pub control_socket: Option<PathBuf>,
    pub profile: Option<String>,
    pub region: Option<String>,
    /// `doctor <target>`: resolved as `stdio` resolves it (a `hosts:` alias first).
    pub target: Option<String>,
}

/// The run ended with failed checks; the first one's code is the exit code.
#[derive(Debug, thiserror::Error)]
#[error("{count} doctor check(s) failed (first: {first}); see the fix under each FAIL")]
pub struct Failed {
    pub first: &'static str,
    pub count: usize,
    /// One of [`crate::exit::codes`].
    pub code: u8,
}

impl Report {
    /// `Err` when any check failed.
    pub fn into_result(&self) -> Result<(), Failed> {
        match self.failures().next() {
            None => Ok(()),
            Some(first) => Err(Failed {
                first: first.name,
                count: self.failures().count(),
                code: self.exit_code(),
            }),
        }
    }
}

/// Runs every check in order.
pub async fn run(i: &Inputs) -> Report {
    let mut r = Report::default();
    let (c, cfg) = config::check(i.config.as_deref());
    r.push(c);
    let cfg = cfg.as_ref();
    let target = i.target.as_deref().unwrap_or_default();
    let dest =
        crate::cli::alias::destination(cfg, target, i.profile.as_deref(), i.region.as_deref());
    let settings = with_defaults(dest.settings, cfg);
    let conf = crate::ssm::sdk::load(&settings).await;
    r.push(identity::region(&conf, region_source(&settings)));
    let (c, creds_ok) = identity::credentials(&conf, settings.profile.as_deref()).await;
    r.push(c);
    if creds_ok && conf.region().is_some() {
        let url = std::env::var("AWS_ENDPOINT_URL_SSM")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| conf.endpoint_url().map(str::to_owned))
            .unwrap_or_else(|| {
                let region = conf.region().map(|r| r.as_ref()).unwrap_or_default();
                format!("https://ssm.{region}.amazonaws.com")
            });
        let api = SsmApi::new(&settings).await;
        let target = i.target.as_deref().map(|t| (t, dest.name.as_str()));
        aws_checks(&mut r, &api, &url, cfg, target).await;
    } else {
        for name in [
            "endpoint",
            "perm-describe",
            "documents",
            "perm-sessions",
            "target",
            "agent",
        ] {
            r.push(Check::skip(name, "needs a region and working credentials"));
        }
    }
    let socket = crate::control::socket_path(
        i.control_socket.as_deref(),
        cfg.and_then(|c| c.control_socket.as_deref()),
    );
    r.checks.extend(master::check(&socket).await);
    r.push(ssh::check(std::env::var("PATH").ok().as_deref()).await);
    r
}

/// Checks 3 to 5, which talk to SSM.
async fn aws_checks(
    r: &mut Report,
    api: &SsmApi,
    url: &str,
    cfg: Option<&Config>,
    target: Option<(&str, &str)>,
) {
    let probe = endpoint::probe(api).await;
    let proxies = endpoint::proxy_env(|k| std::env::var(k).ok());
    r.push(endpoint::endpoint(&probe, url, api.ssm_proxy(), &proxies));
    r.push(endpoint::describe_permission(&probe));
    let reached = matches!(probe.result, Ok(_) | Err(ApiError::Service { .. }));
    if reached {
        r.push(endpoint::documents(api, &documents_in_use(cfg)).await);
    } else {
        r.push(Check::skip("documents", "the endpoint was not reached"));
    }
    r.push(endpoint::sessions_not_checked());
    match target {
        Some((asked, name)) if reached => r.checks.extend(target::check(api, asked, name).await),
        Some(_) => {
            r.push(Check::skip("target", "the endpoint was not reached"));
            r.push(Check::skip("agent", "the endpoint was not reached"));
        }
        None => {
            r.push(Check::skip(
                "target",
                "no target given (`session-proxy doctor <target>` checks one)",
            ));
            r.push(Check::skip("agent", "no target given"));
        }
    }
}

/// The shell-kind session documents the commands use, and who uses each. The port documents
/// (AWS-StartSSHSession, AWS-StartPortForwardingSession*) are AWS's own in every account and
/// take no settings, so reading them would prove nothing.
fn documents_in_use(cfg: Option<&Config>) -> Vec<(String, &'static str)> {
    // `exec` without exec.document uses AWS's non-interactive document, wrapped.
    let exec = cfg
        .and_then(|c| c.exec_document.clone())
        .unwrap_or_else(|| "AWS-StartNonInteractiveCommand".to_owned());
    vec![
        (crate::cli::shell::DEFAULT_DOCUMENT.to_owned(), "shell"),
        (exec, "exec"),
    ]
}

/// Flags and alias first, then the config's `aws:` section (as `instances` does).
fn with_defaults(mut s: AwsSettings, cfg: Option<&Config>) -> AwsSettings {
    if let Some(c) = cfg {
        s.profile = s.profile.or_else(|| c.aws.profile.clone());
        s.region = s.region.or_else(|| c.aws.region.clone());
    }
    s
}

fn region_source(s: &AwsSettings) -> RegionSource {
    let env = |k| std::env::var(k).is_ok_and(|v: String| !v.is_empty());
    if s.region.is_some() {
        RegionSource::FlagOrConfig
    } else if env("AWS_REGION") || env("AWS_DEFAULT_REGION") {
        RegionSource::Environment
    } else {
        RegionSource::Profile
    }
}
