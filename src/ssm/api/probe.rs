//! The cheapest SSM call there is, for `doctor`: one short DescribeInstanceInformation page.
//! Any answer from the service proves the endpoint is reachable; a successful one also proves
//! the `ssm:DescribeInstanceInformation` permission that name lookups need.

use super::{ApiError, SsmApi};

/// The smallest page the API accepts.
const PROBE_PAGE: i32 = 5;

impl SsmApi {
    /// How many instances the first (small) page lists.
    pub async fn probe(&self) -> Result<usize, ApiError> {
        let page = self
            .client
            .describe_instance_information()
            .max_results(PROBE_PAGE)
            .send()
            .await
            .map_err(|e| self.fail("DescribeInstanceInformation", e))?;
        Ok(page.instance_information_list().len())
    }
}
