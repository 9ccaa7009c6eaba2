//! Check 2: the region, and who the credentials say we are. The credentials are resolved
//! through the one SDK configuration every client uses ([`crate::ssm::sdk::load`]), so doctor
//! sees exactly what `stdio` and `serve` would; the identity comes from STS
//! GetCallerIdentity, which needs no permission at all. A failure is worded by the shared
//! diagnosis ([`crate::ssm::credentials`]), so an expired SSO login names the exact
//! `aws sso login --profile X`.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::credential_feature::AwsCredentialFeature;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;

use super::report::Check;
use crate::exit::codes;
use crate::ssm::credentials::{self, Problem};

/// Hang guard for one call (the SDK's own connect timeout is a few seconds).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the region came from, for the detail line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionSource {
    /// `--region`, a `hosts:` alias or the config's `aws.region`.
    FlagOrConfig,
    Environment,
    /// The AWS profile (`region =` in ~/.aws/config).
    Profile,
}

/// The region line: a missing region fails, naming every way to set one.
pub fn region(conf: &SdkConfig, source: RegionSource) -> Check {
    const NAME: &str = "region";
    let Some(r) = conf.region() else {
        return Check::fail(
            NAME,
            "no AWS region: none given by flag, config, environment or profile",
            "pass --region REGION, set AWS_REGION, or set the config's aws.region key \
             (or `region =` in the AWS profile)",
            codes::CONFIG,
        );
    };
    let from = match source {
        RegionSource::FlagOrConfig => "from --region or the config",
        RegionSource::Environment => "from AWS_REGION",
        RegionSource::Profile => "from the AWS profile",
    };
    Check::ok(NAME, format!("{r} ({from})"))
}

/// The credentials line: which source and profile they come from, and (when a region is
/// known) which identity STS says they are. `true` when they resolved.
pub async fn credentials(conf: &SdkConfig, explicit_profile: Option<&str>) -> (Check, bool) {
    const NAME: &str = "credentials";
    let profile = credentials::profile_from_env(explicit_profile);
    let Some(provider) = conf.credentials_provider() else {
        let p = Problem::NoneFound {
            profile,
            imds: !credentials::imds_disabled(),
        };
        return (problem(NAME, &p), false);
    };
    let creds = match tokio::time::timeout(CALL_TIMEOUT, provider.provide_credentials()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let text = crate::exit::render(&anyhow::Error::new(e));
            let p = credentials::diagnose(&text, &profile, credentials::imds_disabled());
            return (problem(NAME, &p), false);
        }
        Err(_) => {
            let p = Problem::Other {
                profile,
                reason: format!("resolving them took longer than {CALL_TIMEOUT:?}"),
            };
            return (problem(NAME, &p), false);
        }
    };
    let source = source(creds.get_property::<Vec<AwsCredentialFeature>>());
    let expiry = creds.expiry().map(expires_in).unwrap_or_default();
    if conf.region().is_none() {
        let detail = format!("resolved from {source}, profile {profile}{expiry}; identity not checked without a region");
        return (Check::ok(NAME, detail), true);
    }
    match whoami(conf, &profile).await {
        Ok(arn) => {
            let detail = format!("{arn} (profile {profile}, from {source}{expiry})");
            (Check::ok(NAME, detail), true)
        }
        Err(c) => (c, false),
    }
}

/// STS GetCallerIdentity: the caller's ARN, or the failed check.
async fn whoami(conf: &SdkConfig, profile: &str) -> Result<String, Check> {
    const NAME: &str = "credentials";
    let sts = aws_sdk_sts::Client::new(conf);
    let call = sts.get_caller_identity().send();
    let out = match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(sts_failure(e, profile)),
        Err(_) => {
            return Err(Check::fail(
                NAME,
                format!("STS GetCallerIdentity did not answer within {CALL_TIMEOUT:?}"),
                "check the network path to AWS (see the endpoint check below)",
                codes::TEMP,
            ))
        }
    };
    let arn = out.arn().unwrap_or("an unnamed identity");
    Ok(match out.account() {
        Some(acct) => format!("{arn} in account {acct}"),
        None => arn.to_owned(),
    })
}

/// Codes with which STS refuses the credentials themselves.
const CREDENTIAL_CODES: &[&str] = &[
    "ExpiredToken",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClient",
];

fn sts_failure(e: SdkError<GetCallerIdentityError>, profile: &str) -> Check {
    let code = e.code().unwrap_or_default().to_owned();
    let message = e.message().unwrap_or_default().to_owned();
    let service = matches!(e, SdkError::ServiceError(_));
    let text = crate::exit::render(&anyhow::Error::new(e));
    if CREDENTIAL_CODES.iter().any(|c| code.contains(c)) {
        let p = Problem::Expired {
            profile: profile.to_owned(),
        };
        return problem("credentials", &p);
    }
    if service {
        return Check::fail(
            "credentials",
            format!("STS GetCallerIdentity refused: {code}: {message}"),
            format!("check the credentials with `aws sts get-caller-identity --profile {profile}`"),
            codes::NO_PERM,
        );
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("credential") || lower.contains("sso") {
        return problem(
            "credentials",
            &credentials::diagnose(&text, profile, credentials::imds_disabled()),
        );
    }
    let first = text.lines().next().unwrap_or_default();
    Check::fail(
        "credentials",
        format!("could not reach STS: {first}"),
        "check the network path to AWS (proxy, firewall, AWS_ENDPOINT_URL)",
        codes::UNAVAILABLE,
    )
}

/// A credential problem as a failed check: the shared diagnosis is the detail, and the command
/// it names is the fix.
fn problem(name: &'static str, p: &Problem) -> Check {
    let fix = match p {
        Problem::UnknownProfile { .. } => {
            "fix --profile, AWS_PROFILE or the config's aws.profile (`aws configure list-profiles`)"
                .to_owned()
        }
        Problem::SsoLogin { profile } | Problem::Expired { profile } => {
            format!("aws sso login --profile {profile}")
        }
        Problem::NoneFound { profile, .. } => {
            format!("aws sso login --profile {profile}, or `aws configure`, or set AWS_PROFILE")
        }
        Problem::Other { profile, .. } => {
            format!("aws sts get-caller-identity --profile {profile}")
        }
    };
    let code = if p.is_config() {
        codes::CONFIG
    } else {
        codes::NO_PERM
    };
    Check::fail(name, p.to_string(), fix, code)
}

/// The providers that produced the credentials, as the SDK records them.
fn source(features: Option<&Vec<AwsCredentialFeature>>) -> String {
    use AwsCredentialFeature as F;
    let names: Vec<&str> = features
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some(match f {
                F::CredentialsCode => "the config file's inline keys",
                F::CredentialsEnvVars => "environment variables",
                F::CredentialsEnvVarsStsWebIdToken | F::CredentialsProfileStsWebIdToken => {
                    "a web identity token"
                }
                F::CredentialsStsAssumeRole | F::CredentialsStsAssumeRoleWebId => "an assumed role",
                F::CredentialsProfile | F::CredentialsProfileSourceProfile => "the profile's keys",
                F::CredentialsProfileSso | F::CredentialsSso => "SSO",
                F::CredentialsProfileProcess | F::CredentialsProcess => "credential_process",
                F::CredentialsHttp => "the container credentials endpoint",
                F::CredentialsImds => "instance metadata (IMDS)",
                _ => return None,
            })
        })
        .collect();
    if names.is_empty() {
        "the SDK's provider chain".to_owned()
    } else {
        names.join(" via ")
    }
}

/// `, expire in 42 min` (or `, expired`) for temporary credentials.
fn expires_in(at: SystemTime) -> String {
    match at.duration_since(SystemTime::now()) {
        Ok(left) => format!(", expire in {} min", left.as_secs() / 60),
        Err(_) => ", expired".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_sources_read_as_words_in_provider_order() {
        use AwsCredentialFeature as F;
        let chain = vec![F::CredentialsProfileSso, F::CredentialsStsAssumeRole];
        assert_eq!(source(Some(&chain)), "SSO via an assumed role");
        assert_eq!(source(None), "the SDK's provider chain");
    }

    #[test]
    fn an_expired_sso_login_fails_with_the_exact_login_command_as_fix() {
        let c = problem(
            "credentials",
            &Problem::SsoLogin {
                profile: "prod".into(),
            },
        );
        assert_eq!(c.fix.as_deref(), Some("aws sso login --profile prod"));
        assert_eq!(c.code, codes::NO_PERM);
        let unknown = problem(
            "credentials",
            &Problem::UnknownProfile {
                profile: "nosuch".into(),
            },
        );
        assert_eq!(unknown.code, codes::CONFIG);
    }
}
