//! The Name tags of managed instances, for `instances`' NAME column and name glob.
//!
//! DescribeInstanceInformation reports a `Name` for hybrid (`mi-`) nodes only; an EC2
//! instance's Name tag lives in EC2. The Resource Groups Tagging API returns the tags of both
//! kinds in one paged call (GetResources with resource types `ec2:instance` and
//! `ssm:managed-instance`, tag key `Name`), through a client a fraction of the EC2 SDK's size.
//! It needs `tag:GetResources`; without it the caller keeps the names SSM gave and says why.

use std::collections::HashMap;

use aws_sdk_resourcegroupstagging::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_resourcegroupstagging::types::TagFilter;

/// The API's largest page.
const PAGE: i32 = 100;
/// Resource types whose Name tags are fetched: EC2 instances and hybrid nodes.
const RESOURCE_TYPES: [&str; 2] = ["ec2:instance", "ssm:managed-instance"];
const NAME: &str = "Name";
/// Longest service message kept in an error.
const MAX_MESSAGE: usize = 200;

/// Why the Name tags could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NameTagError {
    /// The service's message is left out: it repeats the action and the caller's ARN.
    #[error("reading Name tags was refused ({code}); grant tag:GetResources to see EC2 instances' names")]
    Denied { code: String },
    #[error("reading Name tags failed: {0}")]
    Failed(String),
}

/// A Resource Groups Tagging API client on the shared SDK configuration.
#[derive(Debug, Clone)]
pub struct NameTags {
    client: aws_sdk_resourcegroupstagging::Client,
}

impl NameTags {
    pub fn new(conf: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_resourcegroupstagging::Client::new(conf),
        }
    }

    /// Instance id → Name tag for every named instance of the region, up to `cap` entries.
    pub async fn fetch(&self, cap: usize) -> Result<HashMap<String, String>, NameTagError> {
        let mut names = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_resources()
                .set_resource_type_filters(Some(RESOURCE_TYPES.map(str::to_owned).to_vec()))
                .tag_filters(TagFilter::builder().key(NAME).build())
                .resources_per_page(PAGE)
                .set_pagination_token(token.take())
                .send()
                .await
                .map_err(classify)?;
            for m in page.resource_tag_mapping_list() {
                let id = m.resource_arn().and_then(instance_id);
                let name = m.tags().iter().find(|t| t.key() == NAME);
                if let (Some(id), Some(tag)) = (id, name) {
                    names.insert(id.to_owned(), tag.value().to_owned());
                }
            }
            token = page
                .pagination_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if token.is_none() || names.len() >= cap {
                return Ok(names);
            }
        }
    }
}

/// The instance id an instance ARN ends with: `arn:aws:ec2:r:a:instance/i-…` or
/// `arn:aws:ssm:r:a:managed-instance/mi-…`; `None` for any other resource.
pub fn instance_id(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let (kind, id) = resource.split_once('/')?;
    matches!(kind, "instance" | "managed-instance")
        .then_some(id)
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

fn classify<E>(err: SdkError<E>) -> NameTagError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let bounded = |s: &str| s.chars().take(MAX_MESSAGE).collect::<String>();
    if let SdkError::ServiceError(se) = &err {
        let code = se.err().code().unwrap_or("Unknown");
        if code.contains("AccessDenied") || code.contains("UnauthorizedOperation") {
            return NameTagError::Denied {
                code: code.to_owned(),
            };
        }
        let message = bounded(se.err().message().unwrap_or_default());
        return NameTagError::Failed(format!("{code}: {message}"));
    }
    let text = err.to_string();
    NameTagError::Failed(bounded(text.lines().next().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_arns_yield_their_ids_and_other_resources_none() {
        let cases = [
            (
                "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0",
                Some("i-0123456789abcdef0"),
            ),
            (
                "arn:aws:ssm:eu-west-1:123456789012:managed-instance/mi-0123456789abcdef0",
                Some("mi-0123456789abcdef0"),
            ),
            ("arn:aws:ec2:us-east-1:123456789012:volume/vol-1", None),
            ("arn:aws:ec2:us-east-1:123456789012:instance/", None),
            ("arn:aws:ec2:us-east-1:123456789012:instance/a/b", None),
            ("not an arn", None),
            ("", None),
        ];
        for (arn, want) in cases {
            assert_eq!(instance_id(arn), want, "{arn}");
        }
    }
}
