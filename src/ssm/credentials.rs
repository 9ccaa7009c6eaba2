//! [pure] What went wrong with AWS credentials, in one line a user can act on.
//!
//! The SDK reports a failed credential chain as kilobytes of text: every provider it tried,
//! then (through `DisplayErrorContext`) a `Debug` dump of the same. Users need three things
//! from it: what was tried, what failed, and the command that fixes it. [`diagnose`] reads the
//! `Display` chain (never the `Debug` form) and picks one of a few known shapes; the wording is
//! shared by `stdio`, `serve`, `connect` and `status`, since all of them get it from
//! [`super::api::ApiError`].

use std::fmt;

/// A credential failure, reduced to what the user must do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The profile named by `--profile`, the config or `AWS_PROFILE` does not exist.
    UnknownProfile { profile: String },
    /// The profile uses SSO and has no valid login (never logged in, or the token expired).
    SsoLogin { profile: String },
    /// The credentials were found but have expired or been revoked.
    Expired { profile: String },
    /// No provider of the chain had any credentials.
    NoneFound { profile: String, imds: bool },
    /// Anything else: the first line of the SDK's message, bounded.
    Other { profile: String, reason: String },
}

/// The profile the SDK uses: the explicit one, else `AWS_PROFILE`, else `default`.
pub fn effective_profile(explicit: Option<&str>, env_profile: Option<&str>) -> String {
    explicit
        .or(env_profile)
        .filter(|p| !p.is_empty())
        .unwrap_or("default")
        .to_owned()
}

/// [`effective_profile`] with `AWS_PROFILE` read from the environment, as the SDK reads it.
pub fn profile_from_env(explicit: Option<&str>) -> String {
    effective_profile(explicit, std::env::var("AWS_PROFILE").ok().as_deref())
}

/// `AWS_EC2_METADATA_DISABLED=true` takes instance metadata out of the SDK's chain.
pub fn imds_disabled() -> bool {
    std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// [`diagnose`] with the profile and the metadata setting read from the environment.
pub fn diagnose_env(text: &str, explicit_profile: Option<&str>) -> Problem {
    diagnose(text, &profile_from_env(explicit_profile), imds_disabled())
}

/// Longest reason kept from an unrecognised SDK message.
const MAX_REASON: usize = 200;

/// Classifies the SDK's message (its `Display` chain) for `profile`.
pub fn diagnose(text: &str, profile: &str, imds_disabled: bool) -> Problem {
    let lower = text.to_ascii_lowercase();
    let profile = profile.to_owned();
    if lower.contains("was not defined") && lower.contains("profile") {
        return Problem::UnknownProfile { profile };
    }
    let sso = ["/sso/", "sso token", "sso session", "sso login", "sso oidc"];
    if sso.iter().any(|w| lower.contains(w)) {
        return Problem::SsoLogin { profile };
    }
    if lower.contains("expired")
        || lower.contains("security token included in the request is invalid")
    {
        return Problem::Expired { profile };
    }
    if lower.contains("no credentials found") || lower.contains("credentials not loaded") {
        return Problem::NoneFound {
            profile,
            imds: !imds_disabled,
        };
    }
    let first = text.lines().next().unwrap_or_default().trim();
    let reason: String = first.chars().take(MAX_REASON).collect();
    Problem::Other { profile, reason }
}

impl Problem {
    /// True when the profile itself is missing: a configuration error rather than a login.
    pub fn is_config(&self) -> bool {
        matches!(self, Self::UnknownProfile { .. })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownProfile { profile } => write!(
                f,
                "AWS profile \"{profile}\" is not defined (see `aws configure list-profiles`); \
                 fix --profile, AWS_PROFILE or the config's profile: key"
            ),
            Self::SsoLogin { profile } => write!(
                f,
                "AWS profile \"{profile}\" uses SSO and has no valid login (never logged in, or \
                 expired); run `aws sso login --profile {profile}`"
            ),
            Self::Expired { profile } => write!(
                f,
                "the AWS credentials of profile \"{profile}\" have expired or are invalid; run \
                 `aws sso login --profile {profile}`, or set fresh keys in the environment"
            ),
            Self::NoneFound { profile, imds } => write!(
                f,
                "no AWS credentials found (tried env, profile \"{profile}\", SSO{}); run `aws sso \
                 login --profile {profile}` or `aws configure`, or set AWS_PROFILE",
                if *imds { ", IMDS" } else { "; IMDS off" }
            ),
            Self::Other { profile, reason } => write!(
                f,
                "AWS credentials of profile \"{profile}\" are not usable: {reason}; check them \
                 with `aws sts get-caller-identity --profile {profile}`"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What aws-config 1.x prints for `AWS_PROFILE=nosuch` with a config file lacking it.
    const NOSUCH: &str = "dispatch failure: other: the credential provider was not enabled: no credentials found in chain. Attempted:
  Environment: the credential provider was not enabled: environment variable not set
  Profile: the credential provider was not enabled: profile `nosuch` was not defined: could not find source profile nosuch referenced from the root profile
  WebIdentityToken: the credential provider was not enabled: $AWS_WEB_IDENTITY_TOKEN_FILE was not set
  EcsContainer: the credential provider was not enabled: ECS provider not configured
  Ec2InstanceMetadata: the credential provider was not enabled: IMDS disabled by AWS_EC2_METADATA_DISABLED env var set to `true`";

    /// ... and with no profile and no credentials anywhere.
    const NONE: &str = "dispatch failure: other: the credential provider was not enabled: no credentials found in chain. Attempted:
  Environment: the credential provider was not enabled: environment variable not set
  Profile: the credential provider was not enabled
  Ec2InstanceMetadata: the credential provider was not enabled: IMDS disabled by AWS_EC2_METADATA_DISABLED env var set to `true`";

    /// ... and for an SSO profile that was never logged in.
    const SSO: &str = "dispatch failure: other: an error occurred while loading credentials: an error occurred while loading credentials: failed to read `/h/.aws/sso/cache/3947de8b.json`: No such file or directory (os error 2)";

    #[test]
    fn sdk_messages_map_to_the_problem_the_user_can_fix() {
        let cases = [
            (
                NOSUCH,
                Problem::UnknownProfile {
                    profile: "nosuch".into(),
                },
            ),
            (
                SSO,
                Problem::SsoLogin {
                    profile: "p".into(),
                },
            ),
            (
                "the security token included in the request is expired",
                Problem::Expired {
                    profile: "p".into(),
                },
            ),
            (
                NONE,
                Problem::NoneFound {
                    profile: "p".into(),
                    imds: false,
                },
            ),
        ];
        for (text, want) in cases {
            let profile = match &want {
                Problem::UnknownProfile { .. } => "nosuch",
                _ => "p",
            };
            assert_eq!(diagnose(text, profile, true), want, "{text}");
        }
    }

    #[test]
    fn every_message_is_one_line_names_the_profile_and_the_command_to_run() {
        for text in [NOSUCH, NONE, SSO, "something new\nsecond line"] {
            let m = diagnose(text, "prod", true).to_string();
            assert!(!m.contains('\n'), "{m}");
            assert!(m.len() < 300, "{} bytes: {m}", m.len());
            assert!(m.contains("\"prod\""), "{m}");
            assert!(m.contains('`'), "names a command: {m}");
        }
        let none = diagnose(NONE, "prod", true).to_string();
        assert!(none.contains("aws sso login --profile prod"), "{none}");
        assert!(none.contains("AWS_PROFILE"), "{none}");
    }

    #[test]
    fn the_profile_in_force_is_the_flag_then_aws_profile_then_default() {
        assert_eq!(effective_profile(Some("a"), Some("b")), "a");
        assert_eq!(effective_profile(None, Some("b")), "b");
        assert_eq!(effective_profile(None, Some("")), "default");
        assert_eq!(effective_profile(None, None), "default");
    }
}
