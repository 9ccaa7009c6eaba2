//! `instances`: the managed instances Session Manager can reach, as an aligned table or one
//! JSON array, with the config's `hosts:` aliases and `upstreams:` that point at each one, so
//! a user can see which names work before typing `ssh`.
//!
//! Name source: the instance's Name tag from the Resource Groups Tagging API
//! ([`NameTags`]), else DescribeInstanceInformation's `Name` field (which AWS fills for hybrid
//! `mi-` nodes only). Without `tag:GetResources` the listing still succeeds, with SSM's names
//! and a notice saying which permission shows the rest.

mod render;

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use globset::{Glob, GlobMatcher};

use super::GlobalArgs;
use crate::config::Config;
use crate::exit::StdoutError;
use crate::ssm::api::{AwsSettings, ListedInstance, Listing, SsmApi, LIST_CAP};
use crate::ssm::name_tags::NameTags;

/// Shown under `instances --help`: where the NAME column comes from.
const NAME_NOTE: &str = "NAME is the instance's Name tag (read with tag:GetResources), else the Name SSM \
reports for hybrid (mi-) nodes. Without that permission EC2 instances show -, with a notice; select them \
by tag with --filter tag:Name=VALUE.";

#[derive(Debug, Clone, Args)]
#[command(after_help = NAME_NOTE)]
pub struct InstancesArgs {
    /// Only instances whose Name, id or computer name matches this glob (`web-*`, `i-0abc*`),
    /// matched locally after the service's filters.
    pub pattern: Option<String>,
    /// A DescribeInstanceInformation filter KEY=VALUE[,VALUE...], e.g. `tag:Env=prod`,
    /// `tag-key=Team`, `PlatformTypes=Linux` (repeatable: all must match, values are OR-ed).
    #[arg(long = "filter", value_name = "KEY=VALUES", value_parser = parse_filter)]
    pub filters: Vec<(String, Vec<String>)>,
    /// Only instances whose agent is connected (PingStatus Online).
    #[arg(long)]
    pub online: bool,
    /// Print one JSON array (fields: id, name, ping_status, platform, agent_version,
    /// ip_address, computer_name, last_ping, aliases, upstreams) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// AWS profile (default: the config's `aws.profile`, else AWS_PROFILE or the default).
    #[arg(long)]
    pub profile: Option<String>,
    /// AWS region (default: the config's `aws.region`, else AWS_REGION or the profile's).
    #[arg(long)]
    pub region: Option<String>,
}

fn parse_filter(s: &str) -> Result<(String, Vec<String>), String> {
    let bad = || format!("expected KEY=VALUE[,VALUE...] (e.g. tag:Env=prod), got `{s}`");
    let (key, values) = s.split_once('=').ok_or_else(bad)?;
    let values: Vec<String> = values.split(',').map(str::to_owned).collect();
    if key.is_empty() || values.iter().any(String::is_empty) {
        return Err(bad());
    }
    Ok((key.to_owned(), values))
}

/// One listed instance and the config names that point at it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub instance: ListedInstance,
    /// `hosts:` aliases whose target is this instance (by id, Name, IP or computer name).
    pub aliases: Vec<String>,
    /// `upstreams:` with this instance among their targets.
    pub upstreams: Vec<String>,
}

pub async fn run(g: &GlobalArgs, a: InstancesArgs) -> anyhow::Result<ExitCode> {
    let glob = a
        .pattern
        .as_deref()
        .map(|p| Glob::new(p).map(|g| g.compile_matcher()))
        .transpose()
        .context("the name pattern is not a valid glob (use * ? [..])")?;
    let cfg = super::load::optional(g)?;
    let aws = cfg.as_ref().map(|c| c.aws.clone()).unwrap_or_default();
    let settings = AwsSettings {
        profile: a.profile.clone().or(aws.profile),
        region: a.region.clone().or(aws.region),
        credentials: None,
        endpoint_url: None,
        proxy: cfg.as_ref().map(|c| c.proxy.clone()).unwrap_or_default(),
    };
    let listing = list(&settings, &a.filters).await?;
    if listing.truncated {
        eprintln!(
            "session-proxy: stopped after {LIST_CAP} instances; narrow the list with --filter"
        );
    }
    let rows: Vec<Row> = listing
        .instances
        .into_iter()
        .filter(|i| !a.online || i.ping_status.as_deref() == Some("Online"))
        .filter(|i| glob.as_ref().is_none_or(|m| matches(m, i)))
        .map(|i| row(i, cfg.as_ref()))
        .collect();
    let text = if a.json {
        let mut s = serde_json::to_string_pretty(&rows).context("encoding JSON")?;
        s.push('\n');
        s
    } else {
        render::table(&rows)
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(StdoutError::from)?;
    Ok(ExitCode::SUCCESS)
}

/// The fleet with Name tags filled in; the tags are read alongside the listing and only
/// cost a notice when they cannot be (the listing itself is what the user asked for).
async fn list(
    settings: &AwsSettings,
    filters: &[(String, Vec<String>)],
) -> anyhow::Result<Listing> {
    let (api, conf) = SsmApi::load(settings).await;
    let tags = NameTags::new(&conf);
    let (listing, names) = tokio::join!(api.list_instances(filters), tags.fetch(LIST_CAP));
    let mut listing = listing.context("listing managed instances")?;
    match names {
        Ok(names) => {
            for i in &mut listing.instances {
                if let Some(n) = names.get(&i.instance_id) {
                    i.name = Some(n.clone());
                }
            }
        }
        Err(e) => eprintln!("session-proxy: {e}; NAME shows only the names SSM reports"),
    }
    Ok(listing)
}

fn matches(m: &GlobMatcher, i: &ListedInstance) -> bool {
    [
        Some(&i.instance_id),
        i.name.as_ref(),
        i.computer_name.as_ref(),
    ]
    .into_iter()
    .flatten()
    .any(|s| m.is_match(s))
}

/// Whether a config target (an id, or a name `ssm::target::resolve` looks up by Name tag, IP
/// address or computer name) designates `i`.
fn designates(target: &str, i: &ListedInstance) -> bool {
    [
        Some(&i.instance_id),
        i.name.as_ref(),
        i.ip_address.as_ref(),
        i.computer_name.as_ref(),
    ]
    .into_iter()
    .flatten()
    .any(|s| s == target)
}

fn row(i: ListedInstance, cfg: Option<&Config>) -> Row {
    let aliases = cfg
        .iter()
        .flat_map(|c| c.hosts.iter())
        .filter(|(_, h)| designates(h.target.as_str(), &i))
        .map(|(name, _)| name.clone())
        .collect();
    let upstreams = cfg
        .iter()
        .flat_map(|c| c.upstreams.iter())
        .filter(|u| u.targets.iter().any(|t| designates(t.as_str(), &i)))
        .map(|u| u.name.clone())
        .collect();
    Row {
        instance: i,
        aliases,
        upstreams,
    }
}
