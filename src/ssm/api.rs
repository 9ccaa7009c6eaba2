//! The SSM API calls the client makes (StartSession, ResumeSession, TerminateSession,
//! DescribeInstanceInformation, and CreateDocument/DescribeDocument for `exec
//! --install-document`) through aws-sdk-ssm, built on the SDK configuration of [`sdk::load`].
//! Errors are turned into ones that say what to do next; tokens are never logged.

use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssm::types::InstanceInformationStringFilter;

use crate::proxy::{Proxies, ProxyError, ProxyUrl};
use crate::redact::Redacted;
use crate::ssm::credentials::{self, Problem};
use crate::ssm::dial::UpgradeSigner;
use crate::ssm::identity_cache::CredentialsCache;
use crate::ssm::sdk;
pub use crate::ssm::sdk::{AwsSettings, InlineCredentials};

mod list;
mod probe;
mod proxied;
pub use list::{ListedInstance, Listing, LIST_CAP};

/// An SSM API failure, phrased for the user.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("instance {target} is not connected to Session Manager: its SSM agent is not running or cannot reach the service. Check with `aws ssm describe-instance-information --filters Key=InstanceIds,Values={target}` (PingStatus must be Online), and that the instance role allows ssmmessages:*")]
    TargetNotConnected { target: String },
    #[error("SSM rejected the session document: {0}")]
    InvalidDocument(String),
    #[error("session {0} no longer exists (terminated or timed out)")]
    SessionGone(String),
    /// Missing, unknown, expired or refused credentials; the text says what to run.
    #[error("{0}")]
    Credentials(Problem),
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
    /// The HTTP proxy refused the call (it wants other credentials).
    #[error(transparent)]
    Proxy(ProxyError),
}

impl ApiError {
    /// True when retrying later may help (network trouble, throttling, server errors).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::TargetNotConnected { .. } => true,
            Self::Service { code, .. } => {
                code.contains("Throttl")
                    || code.contains("InternalServer")
                    || code.contains("ServiceUnavailable")
                    || code.contains("TooManyRequests")
            }
            _ => false,
        }
    }

    /// True when retrying cannot help until the user changes something (credentials, the
    /// profile, the session document, the account's permissions).
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Credentials(_) | Self::InvalidDocument(_) => true,
            Self::Proxy(p) => p.is_auth(),
            Self::Service { code, .. } => {
                code.contains("AccessDenied")
                    || code.contains("Validation")
                    || code.contains("InvalidParameters")
            }
            _ => false,
        }
    }
}

/// Service error codes that mean the credentials themselves were refused.
const CREDENTIAL_CODES: &[&str] = &[
    "ExpiredToken",
    "UnrecognizedClient",
    "InvalidClientTokenId",
    "InvalidSignature",
];

/// `err` and its causes, `Display` only: `DisplayErrorContext` appends a `Debug` dump of the
/// whole error, which must never reach a user.
pub(crate) fn display_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cause = c.source();
    }
    text
}

fn classify<E>(
    operation: &'static str,
    err: SdkError<E>,
    creds: &CredentialsDiagnosis,
    proxy: Option<&ProxyUrl>,
) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = display_chain(&err);
    if let Some(p) = proxied::refusal(&err, &text, proxy) {
        return ApiError::Proxy(p);
    }
    match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("Unknown");
            let message = e.message().unwrap_or(&text).to_owned();
            if CREDENTIAL_CODES.iter().any(|c| code.contains(c)) {
                return creds.error(&message);
            }
            ApiError::Service {
                operation,
                code: code.to_owned(),
                message,
            }
        }
        _ if looks_like_credentials(&text) => creds.error(&text),
        _ => ApiError::Transport {
            operation,
            message: proxied::transport_message(
                text.lines().next().unwrap_or_default().to_owned(),
                proxy,
            ),
        },
    }
}

fn looks_like_credentials(text: &str) -> bool {
    let l = text.to_ascii_lowercase();
    l.contains("credential") || l.contains("/sso/") || l.contains("sso token")
}

/// Where a session goes and what it runs.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    pub target: String,
    pub document: String,
    pub parameters: Vec<(String, String)>,
}

impl SessionRequest {
    /// The parameters as StartSession takes them: one list per name, values in the order
    /// given (a repeated `--parameter key=…` adds to its key's list).
    pub fn parameter_lists(&self) -> Vec<(String, Vec<String>)> {
        let mut lists: Vec<(String, Vec<String>)> = vec![];
        for (k, v) in &self.parameters {
            match lists.iter_mut().find(|(name, _)| name == k) {
                Some((_, values)) => values.push(v.clone()),
                None => lists.push((k.clone(), vec![v.clone()])),
            }
        }
        lists
    }

    /// `AWS-StartSSHSession` to `port` on the instance.
    pub fn ssh(target: &str, port: u16) -> Self {
        Self {
            target: target.to_owned(),
            document: "AWS-StartSSHSession".into(),
            parameters: vec![("portNumber".into(), port.to_string())],
        }
    }

    /// A port-forwarding session to `host:port` as the instance sees it: `localhost` is the
    /// instance itself (`AWS-StartPortForwardingSession`), anything else goes through
    /// `AWS-StartPortForwardingSessionToRemoteHost` (§7).
    pub fn port_forward(target: &str, host: &str, port: u16) -> Self {
        let port_param = ("portNumber".to_owned(), port.to_string());
        if host.eq_ignore_ascii_case("localhost") {
            return Self {
                target: target.to_owned(),
                document: "AWS-StartPortForwardingSession".into(),
                parameters: vec![port_param],
            };
        }
        Self {
            target: target.to_owned(),
            document: "AWS-StartPortForwardingSessionToRemoteHost".into(),
            parameters: vec![("host".to_owned(), host.to_owned()), port_param],
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

/// A session document as DescribeDocument reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentInfo {
    /// SHA-256 of the content (lowercase hex), DescribeDocument's default `HashType`.
    pub hash: String,
    /// `Session`, `Command`, ...
    pub document_type: String,
}

/// What CreateDocument did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    /// A document of that name exists already (its content may differ).
    AlreadyExists,
}

/// An SSM client bound to one profile/region.
#[derive(Debug, Clone)]
pub struct SsmApi {
    client: aws_sdk_ssm::Client,
    /// KMS with the same settings, for the data keys of encrypted sessions.
    kms: aws_sdk_kms::Client,
    credentials: CredentialsDiagnosis,
    /// Signs data-channel upgrades with the config's credentials; `None` leaves them unsigned.
    signer: Option<UpgradeSigner>,
    /// The proxies the SDK was given; data channels are dialled through the same.
    proxies: Proxies,
    /// The SSM endpoint URL (override or regional): which proxy API calls take, for errors.
    endpoint: String,
}

/// Remembers the first credential problem of a client. The SDK's profile provider reports
/// why it failed only once; every later call says "initialization error already taken",
/// which would hide "profile not defined" from all but the first connection.
#[derive(Debug, Clone, Default)]
struct CredentialsDiagnosis {
    profile: Option<String>,
    first: std::sync::Arc<std::sync::Mutex<Option<Problem>>>,
}

impl CredentialsDiagnosis {
    fn error(&self, text: &str) -> ApiError {
        let found = credentials::diagnose_env(text, self.profile.as_deref());
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        let problem = match (&found, first.as_ref()) {
            (Problem::Other { .. }, Some(known)) => known.clone(),
            _ => {
                *first = Some(found.clone());
                found
            }
        };
        ApiError::Credentials(problem)
    }
}

impl SsmApi {
    /// Loads configuration the way the AWS CLI does (env, profile, SSO, IMDS) plus overrides.
    pub async fn new(s: &AwsSettings) -> Self {
        Self::load(s).await.0
    }

    /// [`Self::new`], also returning the SDK configuration, so another client (the tagging
    /// API of `instances`) shares its credentials cache, proxies and endpoint.
    pub async fn load(s: &AwsSettings) -> (Self, aws_config::SdkConfig) {
        let proxies = Proxies::from_env(&s.proxy);
        let (conf, cache) = sdk::load_with_cache(s, &proxies).await;
        let api = Self::from_config(&conf, cache, s.profile.clone(), proxies);
        (api, conf)
    }

    /// Clients on `conf`; `cache` is the credentials cache `sdk::load_with_cache` returned
    /// with it (the upgrade signer refreshes through it), `profile` the one it was loaded
    /// for (named in credential errors), `proxies` the ones it was loaded with (data channels
    /// go through them and errors name them).
    fn from_config(
        conf: &aws_config::SdkConfig,
        cache: CredentialsCache,
        profile: Option<String>,
        proxies: Proxies,
    ) -> Self {
        Self {
            proxies,
            endpoint: proxied::ssm_endpoint(conf),
            client: aws_sdk_ssm::Client::new(conf),
            kms: aws_sdk_kms::Client::new(conf),
            signer: UpgradeSigner::new(
                conf.credentials_provider(),
                cache,
                conf.region().map(|r| r.as_ref()),
            ),
            credentials: CredentialsDiagnosis {
                profile,
                first: Default::default(),
            },
        }
    }

    /// The KMS client built from the same settings (and endpoint override) as SSM's.
    pub fn kms_client(&self) -> aws_sdk_kms::Client {
        self.kms.clone()
    }

    /// `err` of `operation` phrased for the user.
    fn fail<E>(&self, operation: &'static str, err: SdkError<E>) -> ApiError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        classify(operation, err, &self.credentials, self.ssm_proxy())
    }

    /// The proxy SSM API calls go through (`None`: directly).
    pub fn ssm_proxy(&self) -> Option<&crate::proxy::ProxyUrl> {
        self.proxies.for_url(&self.endpoint)
    }

    /// The proxies data channels are dialled through (the SDK's own).
    pub fn proxies(&self) -> &Proxies {
        &self.proxies
    }

    /// The signer of data-channel upgrades (same credentials provider and region as SSM's).
    pub fn upgrade_signer(&self) -> Option<&UpgradeSigner> {
        self.signer.as_ref()
    }

    pub async fn start_session(&self, req: &SessionRequest) -> Result<SessionTicket, ApiError> {
        let mut b = self
            .client
            .start_session()
            .target(&req.target)
            .document_name(&req.document);
        for (k, values) in req.parameter_lists() {
            b = b.parameters(k, values);
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
                return Err(self.fail("StartSession", e));
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
            Err(e) => Err(self.fail("ResumeSession", e)),
        }
    }

    pub async fn terminate_session(&self, session_id: &str) -> Result<(), ApiError> {
        self.client
            .terminate_session()
            .session_id(session_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.fail("TerminateSession", e))
    }

    /// Creates the Session document `name` with JSON `content`; an existing name is
    /// [`Created::AlreadyExists`], not an error.
    pub async fn create_document(&self, name: &str, content: &str) -> Result<Created, ApiError> {
        use aws_sdk_ssm::types::{DocumentFormat, DocumentType};
        let r = self
            .client
            .create_document()
            .name(name)
            .content(content)
            .document_type(DocumentType::Session)
            .document_format(DocumentFormat::Json)
            .send()
            .await;
        match r {
            Ok(_) => Ok(Created::New),
            Err(SdkError::ServiceError(se)) if se.err().is_document_already_exists() => {
                Ok(Created::AlreadyExists)
            }
            Err(e) => Err(self.fail("CreateDocument", e)),
        }
    }

    /// The document `name`; `None` when the account has none of that name.
    pub async fn describe_document(&self, name: &str) -> Result<Option<DocumentInfo>, ApiError> {
        match self.client.describe_document().name(name).send().await {
            Ok(out) => Ok(out.document().map(|d| DocumentInfo {
                hash: d.hash().unwrap_or_default().to_ascii_lowercase(),
                document_type: d
                    .document_type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
            })),
            Err(SdkError::ServiceError(se)) if se.err().is_invalid_document() => Ok(None),
            Err(e) => Err(self.fail("DescribeDocument", e)),
        }
    }

    /// The platform (`Linux`, `Windows`, `MacOS`) DescribeInstanceInformation reports for
    /// `instance_id`; `None` when it reports none.
    pub async fn platform(&self, instance_id: &str) -> Result<Option<String>, ApiError> {
        let filter = InstanceInformationStringFilter::builder()
            .key("InstanceIds")
            .values(instance_id)
            .build()
            .map_err(|e| ApiError::Transport {
                operation: "DescribeInstanceInformation",
                message: e.to_string(),
            })?;
        let out = self
            .client
            .describe_instance_information()
            .filters(filter)
            .send()
            .await
            .map_err(|e| self.fail("DescribeInstanceInformation", e))?;
        Ok(out
            .instance_information_list()
            .iter()
            .find(|i| i.instance_id() == Some(instance_id))
            .and_then(|i| i.platform_type())
            .map(|p| p.as_str().to_owned()))
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
            let i = item.map_err(|e| self.fail("DescribeInstanceInformation", e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_become_one_list_per_name_in_order() {
        let req = SessionRequest {
            target: "i-1".into(),
            document: "D".into(),
            parameters: vec![
                ("a".into(), "1".into()),
                ("b".into(), "x".into()),
                ("a".into(), "2".into()),
            ],
        };
        assert_eq!(
            req.parameter_lists(),
            vec![
                ("a".to_owned(), vec!["1".to_owned(), "2".to_owned()]),
                ("b".to_owned(), vec!["x".to_owned()]),
            ]
        );
    }

    fn service(code: &str) -> ApiError {
        ApiError::Service {
            operation: "StartSession",
            code: code.into(),
            message: String::new(),
        }
    }

    #[test]
    fn throttling_network_and_offline_are_transient_credentials_and_documents_permanent() {
        let transient = [
            service("ThrottlingException"),
            service("InternalServerError"),
            ApiError::Transport {
                operation: "StartSession",
                message: "connection refused".into(),
            },
            ApiError::TargetNotConnected {
                target: "i-0123456789abcdef0".into(),
            },
        ];
        for e in transient {
            assert!(e.is_transient() && !e.is_permanent(), "{e}");
        }
        let permanent = [
            ApiError::Credentials(Problem::NoneFound {
                profile: "default".into(),
                imds: true,
            }),
            ApiError::InvalidDocument("AWS-Nope".into()),
            service("AccessDeniedException"),
        ];
        for e in permanent {
            assert!(e.is_permanent() && !e.is_transient(), "{e}");
        }
    }

    #[test]
    fn a_profile_error_reported_once_by_the_sdk_is_remembered_for_later_calls() {
        let d = CredentialsDiagnosis {
            profile: Some("nosuch".into()),
            first: Default::default(),
        };
        let first = d.error("profile `nosuch` was not defined");
        let later = d.error("unexpected credentials error: initialization error already taken");
        assert_eq!(first.to_string(), later.to_string());
        assert!(
            later.to_string().contains("\"nosuch\" is not defined"),
            "{later}"
        );
    }
}
