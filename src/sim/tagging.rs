//! A simulated Resource Groups Tagging API on the simulator's HTTP port (AWS JSON 1.1,
//! `X-Amz-Target: ResourceGroupsTaggingAPI_20170126.GetResources`, botocore's shapes): the Name
//! tags of the simulated instances, as `instances` reads them for EC2 instances.
//!
//! Only what the client asks is modelled: resource types `ec2:instance` and
//! `ssm:managed-instance`, tag filters on keys and values, and paging. Every simulated
//! instance carries at most a Name tag.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::sim::aws_error::{kind, ApiError};
use crate::sim::registry::Registry;

/// `X-Amz-Target` prefix of the tagging service.
pub const TARGET_PREFIX: &str = "ResourceGroupsTaggingAPI_20170126.";
/// Operations answered.
pub const OPERATIONS: [&str; 1] = ["GetResources"];
/// The account and region in the ARNs (the simulator's environment names us-east-1).
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
/// GetResources' `ResourcesPerPage` default and model limit.
const MAX_PAGE: usize = 100;
const TAG_KEY: &str = "Name";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetResources {
    pagination_token: Option<String>,
    tag_filters: Option<Vec<TagFilter>>,
    resources_per_page: Option<i64>,
    resource_type_filters: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagFilter {
    key: Option<String>,
    values: Option<Vec<String>>,
}

/// Answers one tagging operation.
pub fn dispatch(registry: &Registry, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    if op != "GetResources" {
        return Err(ApiError::new(
            kind::UNKNOWN_OPERATION,
            format!("{TARGET_PREFIX}{op} is not an operation the simulator answers"),
        ));
    }
    let req: GetResources = serde_json::from_slice(if body.is_empty() { b"{}" } else { body })
        .map_err(|e| ApiError::new(kind::SERIALIZATION, e.to_string()))?;
    get_resources(registry, &req)
}

fn get_resources(registry: &Registry, req: &GetResources) -> Result<Value, ApiError> {
    let page = match req.resources_per_page {
        None => MAX_PAGE,
        Some(n) if (1..=MAX_PAGE as i64).contains(&n) => usize::try_from(n).unwrap_or(MAX_PAGE),
        Some(n) => {
            return Err(ApiError::new(
                kind::INVALID_PARAMETER,
                format!("ResourcesPerPage must be between 1 and {MAX_PAGE}, got {n}"),
            ))
        }
    };
    let start = match req.pagination_token.as_deref() {
        None | Some("") => 0,
        Some(t) => t.parse::<usize>().map_err(|_| {
            ApiError::new(
                kind::PAGINATION_TOKEN_EXPIRED,
                "the pagination token is not one the simulator issued",
            )
        })?,
    };
    let all: Vec<Value> = registry
        .name_tags()
        .into_iter()
        .filter_map(|(id, name)| mapping(&id, &name, req))
        .collect();
    let end = start.saturating_add(page).min(all.len());
    let list = all.get(start..end).unwrap_or_default();
    let token = if end < all.len() {
        end.to_string()
    } else {
        String::new()
    };
    Ok(json!({ "PaginationToken": token, "ResourceTagMappingList": list }))
}

/// The mapping of one named instance, if it passes the request's filters.
fn mapping(id: &str, name: &str, req: &GetResources) -> Option<Value> {
    let (service, resource_type, kind) = if id.starts_with("mi-") {
        ("ssm", "ssm:managed-instance", "managed-instance")
    } else {
        ("ec2", "ec2:instance", "instance")
    };
    let types = req.resource_type_filters.as_deref().unwrap_or_default();
    let type_ok = types.is_empty()
        || types
            .iter()
            .any(|t| t == resource_type || t == service || t == "*");
    let tags_ok = req.tag_filters.iter().flatten().all(|f| {
        f.key.as_deref() == Some(TAG_KEY)
            && f.values
                .as_deref()
                .is_none_or(|v| v.is_empty() || v.iter().any(|v| v == name))
    });
    (type_ok && tags_ok).then(|| {
        json!({
            "ResourceARN": format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{kind}/{id}"),
            "Tags": [{ "Key": TAG_KEY, "Value": name }],
        })
    })
}
