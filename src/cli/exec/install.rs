//! `exec --install-document [NAME]`: creates the separate-output session document, or finds
//! it already there. Idempotent: the same content under the name is success; different content
//! (DescribeDocument's SHA-256 differs) is an error that says so, and nothing is overwritten.

use crate::exec::document::{self, CONTENT};
use crate::ssm::api::{Created, SsmApi};

use super::ExecError;

/// Creates `name` (or confirms it) and returns the line to print.
pub(super) async fn install(api: &SsmApi, name: &str) -> anyhow::Result<String> {
    document::check_name(name).map_err(crate::exit::UsageError::Usage)?;
    let created = api.create_document(name, CONTENT).await?;
    if created == Created::New {
        return Ok(format!("created session document {name}"));
    }
    let found = api.describe_document(name).await?;
    match found {
        Some(d) if d.hash == document::content_hash() && d.document_type == "Session" => {
            Ok(format!("session document {name} is already installed"))
        }
        _ => Err(ExecError::DocumentConflict {
            name: name.to_owned(),
        }
        .into()),
    }
}
