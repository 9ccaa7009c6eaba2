//! The SSM API calls the client makes (StartSession, ResumeSession, TerminateSession,
//! DescribeInstanceInformation) through aws-sdk-ssm, with credentials, profile, region, SSO and
//! endpoint overrides (`AWS_ENDPOINT_URL[_SSM]`, how the simulator is reached) from aws-config.
//! Errors are turned into ones that say what to do next; tokens are never logged.

use aws_config::BehaviorVersion;
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssm::types::InstanceInformationStringFilter;

use crate::redact::Redacted;

/// An SSM API failure, phrased for the user.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("instance {target} is not connected to Session Manager: its SSM agent is not running or cannot reach the service. Check with `aws ssm describe-instance-information --filters Key=InstanceIds,Values={target}` (PingStatus must be Online), and that the instance role allows ssmmessages:*")]
    TargetNotConnected { target: String },
    #[error("SSM rejected the session document: {0}")]
    InvalidDocument(String),
    #[error("session {0} no longer exists (terminated or timed out)")]
    SessionGone(String),
    #[error("AWS credentials are not usable: {message}{hint}")]
    Credentials { message: String, hint: String },
    #[error("SSM {operation} failed: {message}")]
    Service {
        operation: &'static str,
        code: String,
        message: String,
    },
    #[error("could not reach SSM for {operation}: {message}")]
    Transport {
        operation: &'static str,
        message: String,
    },
}

impl ApiError {
    /// True when retrying later may help (network trouble, throttling, server errors).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Service { code, .. } => {
                code.contains("Throttl")
                    || code.contains("InternalServer")
                    || code.contains("ServiceUnavailable")
            }
            _ => false,
        }
    }
}

fn classify<E>(operation: &'static str, err: SdkError<E>, profile: Option<&str>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = format!("{}", aws_sdk_ssm::error::DisplayErrorContext(&err));
    match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            ApiError::Service {
                operation,
                code: e.code().unwrap_or("Unknown").to_owned(),
                message: e.message().unwrap_or(&text).to_owned(),
            }
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_)
            if !looks_like_credentials(&text) =>
        {
            ApiError::Transport {
                operation,
                message: text,
            }
        }
        _ if looks_like_credentials(&text) => {
            let lower = text.to_ascii_lowercase();
            let hint = if lower.contains("sso")
                || lower.contains("token") && lower.contains("expired")
            {
                match profile {
                    Some(p) => format!("; run `aws sso login --profile {p}`"),
                    None => "; run `aws sso login` (add --profile for a named profile)".into(),
                }
            } else {
                "; set AWS_PROFILE or --profile, or configure credentials (aws configure)".into()
            };
            ApiError::Credentials {
                message: text,
                hint,
            }
        }
        _ => ApiError::Transport {
            operation,
            message: text,
        },
    }
}

fn looks_like_credentials(text: &str) -> bool {
    let l = text.to_ascii_lowercase();
    l.contains("credential") || l.contains("sso") || l.contains("no region")
}

/// Where a session goes and what it runs.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    pub target: String,
    pub document: String,
    pub parameters: Vec<(String, String)>,
}

impl SessionRequest {
    /// `AWS-StartSSHSession` to `port` on the instance.
    pub fn ssh(target: &str, port: u16) -> Self {
        Self {
            target: target.to_owned(),
            document: "AWS-StartSSHSession".into(),
            parameters: vec![("portNumber".into(), port.to_string())],
        }
    }
}

/// StartSession / ResumeSession output.
#[derive(Debug, Clone)]
pub struct SessionTicket {
    pub session_id: String,
    pub token: Redacted<String>,
    pub stream_url: String,
}

/// A managed instance as DescribeInstanceInformation reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    pub instance_id: String,
    pub online: bool,
    pub name: Option<String>,
    pub ip_address: Option<String>,
    pub computer_name: Option<String>,
}

/// An SSM client bound to one profile/region.
#[derive(Debug, Clone)]
pub struct SsmApi {
    client: aws_sdk_ssm::Client,
    profile: Option<String>,
}

/// AWS settings chosen by config file and flags (anything unset comes from the environment).
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub credentials: Option<InlineCredentials>,
    /// Endpoint override that wins over `AWS_ENDPOINT_URL`; lets `demo` point its in-process
    /// SDK at its own simulator without touching the process environment.
    pub endpoint_url: Option<String>,
}

/// Static AWS credentials given in the config file instead of a profile.
///
/// The one declaration: serde reads the `credentials:` mapping straight into it (the config
/// validator then checks the values in place) and [`SsmApi::new`] hands it to the SDK. The
/// secrets are [`Redacted`], so `Debug` and error messages never show them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct InlineCredentials {
    /// Not secret on its own (it identifies the key), so it is not redacted.
    pub access_key_id: String,
    pub secret_access_key: Redacted<String>,
    pub session_token: Option<Redacted<String>>,
}

impl SsmApi {
    /// Loads configuration the way the AWS CLI does (env, profile, SSO, IMDS) plus overrides.
    pub async fn new(s: &AwsSettings) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(p) = &s.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &s.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if let Some(c) = &s.credentials {
            loader = loader.credentials_provider(aws_sdk_ssm::config::Credentials::new(
                c.access_key_id.clone(),
                c.secret_access_key.expose().clone(),
                c.session_token.as_ref().map(|t| t.expose().clone()),
                None,
                "session-proxy-config",
            ));
        }
        if let Some(u) = &s.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        let conf = loader.load().await;
        Self {
            client: aws_sdk_ssm::Client::new(&conf),
            profile: s.profile.clone(),
        }
    }

    pub async fn start_session(&self, req: &SessionRequest) -> Result<SessionTicket, ApiError> {
        let mut b = self
            .client
            .start_session()
            .target(&req.target)
            .document_name(&req.document);
        for (k, v) in &req.parameters {
            b = b.parameters(k, vec![v.clone()]);
        }
        let out = match b.send().await {
            Ok(o) => o,
            Err(e) => {
                if let SdkError::ServiceError(se) = &e {
                    if se.err().is_target_not_connected() {
                        return Err(ApiError::TargetNotConnected {
                            target: req.target.clone(),
                        });
                    }
                    if se.err().is_invalid_document() {
                        return Err(ApiError::InvalidDocument(
                            se.err().message().unwrap_or_default().to_owned(),
                        ));
                    }
                }
                return Err(classify("StartSession", e, self.profile.as_deref()));
            }
        };
        Ok(SessionTicket {
            session_id: out.session_id().unwrap_or_default().to_owned(),
            token: Redacted::new(out.token_value().unwrap_or_default().to_owned()),
            stream_url: out.stream_url().unwrap_or_default().to_owned(),
        })
    }

    /// A fresh token for a dropped session; `SessionGone` when it is over (§1.2).
    pub async fn resume_session(&self, session_id: &str) -> Result<SessionTicket, ApiError> {
        match self
            .client
            .resume_session()
            .session_id(session_id)
            .send()
            .await
        {
            Ok(out) => {
                let token = out.token_value().unwrap_or_default();
                if token.is_empty() {
                    return Err(ApiError::SessionGone(session_id.to_owned()));
                }
                Ok(SessionTicket {
                    session_id: session_id.to_owned(),
                    token: Redacted::new(token.to_owned()),
                    stream_url: out.stream_url().unwrap_or_default().to_owned(),
                })
            }
            Err(SdkError::ServiceError(se)) if se.err().is_does_not_exist_exception() => {
                Err(ApiError::SessionGone(session_id.to_owned()))
            }
            Err(e) => Err(classify("ResumeSession", e, self.profile.as_deref())),
        }
    }

    pub async fn terminate_session(&self, session_id: &str) -> Result<(), ApiError> {
        self.client
            .terminate_session()
            .session_id(session_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("TerminateSession", e, self.profile.as_deref()))
    }

    /// Managed instances matching one DescribeInstanceInformation filter (`tag:Name`, ...).
    pub async fn describe_instances(
        &self,
        key: &str,
        values: &[String],
    ) -> Result<Vec<InstanceInfo>, ApiError> {
        let filter = InstanceInformationStringFilter::builder()
            .key(key)
            .set_values(Some(values.to_vec()))
            .build()
            .map_err(|e| ApiError::Transport {
                operation: "DescribeInstanceInformation",
                message: e.to_string(),
            })?;
        let mut pages = self
            .client
            .describe_instance_information()
            .filters(filter)
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(item) = pages.next().await {
            let i = item
                .map_err(|e| classify("DescribeInstanceInformation", e, self.profile.as_deref()))?;
            out.push(InstanceInfo {
                instance_id: i.instance_id().unwrap_or_default().to_owned(),
                online: i.ping_status().is_some_and(|p| p.as_str() == "Online"),
                name: i.name().map(str::to_owned),
                ip_address: i.ip_address().map(str::to_owned),
                computer_name: i.computer_name().map(str::to_owned),
            });
            if out.len() >= 10_000 {
                break;
            }
        }
        Ok(out)
    }
}
