//! The fleet listing behind `session-proxy instances`: every managed instance
//! DescribeInstanceInformation reports for a set of filters, paged explicitly so a huge
//! account ends at a known cap with a notice instead of growing without bound.

use aws_sdk_ssm::primitives::DateTimeFormat;
use aws_sdk_ssm::types::{InstanceInformation, InstanceInformationStringFilter};

use super::{ApiError, SsmApi};

/// Page size asked for: the API's maximum, so a fleet costs as few calls as possible.
const PAGE: i32 = 50;

/// Most instances one listing collects; the answer says when it stopped there.
pub const LIST_CAP: usize = 10_000;

const OPERATION: &str = "DescribeInstanceInformation";

/// One managed instance with the fields `instances` shows (`--json` prints them as they are).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListedInstance {
    #[serde(rename = "id")]
    pub instance_id: String,
    /// The Name tag when `instances` could read it, else the `Name` field of the answer
    /// (which AWS fills for hybrid `mi-` nodes only).
    pub name: Option<String>,
    /// `Online`, `ConnectionLost` or `Inactive`.
    pub ping_status: Option<String>,
    /// The OS name when reported (`Amazon Linux`), else the platform type (`Linux`).
    pub platform: Option<String>,
    pub agent_version: Option<String>,
    pub ip_address: Option<String>,
    pub computer_name: Option<String>,
    /// RFC 3339, UTC.
    pub last_ping: Option<String>,
}

/// What a listing found, and whether it stopped at [`LIST_CAP`] with pages left.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    pub instances: Vec<ListedInstance>,
    pub truncated: bool,
}

impl SsmApi {
    /// Every instance matching all `filters` (key, values: values OR-ed, filters AND-ed, as
    /// the API does), following NextToken until the last page or [`LIST_CAP`].
    pub async fn list_instances(
        &self,
        filters: &[(String, Vec<String>)],
    ) -> Result<Listing, ApiError> {
        let filters = filters
            .iter()
            .map(|(k, v)| {
                InstanceInformationStringFilter::builder()
                    .key(k)
                    .set_values(Some(v.clone()))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::Transport {
                operation: OPERATION,
                message: e.to_string(),
            })?;
        let mut out = Listing::default();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_instance_information()
                .set_filters((!filters.is_empty()).then(|| filters.clone()))
                .max_results(PAGE)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| self.fail(OPERATION, e))?;
            out.instances
                .extend(page.instance_information_list().iter().map(listed));
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if out.instances.len() >= LIST_CAP {
                out.truncated = token.is_some() || out.instances.len() > LIST_CAP;
                out.instances.truncate(LIST_CAP);
                return Ok(out);
            }
            if token.is_none() {
                return Ok(out);
            }
        }
    }
}

fn listed(i: &InstanceInformation) -> ListedInstance {
    let owned = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
    ListedInstance {
        instance_id: i.instance_id().unwrap_or_default().to_owned(),
        name: owned(i.name()),
        ping_status: owned(i.ping_status().map(|p| p.as_str())),
        platform: owned(i.platform_name()).or_else(|| owned(i.platform_type().map(|p| p.as_str()))),
        agent_version: owned(i.agent_version()),
        ip_address: owned(i.ip_address()),
        computer_name: owned(i.computer_name()),
        last_ping: i
            .last_ping_date_time()
            .and_then(|t| t.fmt(DateTimeFormat::DateTime).ok()),
    }
}
