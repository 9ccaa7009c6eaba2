//! The SSM API subset the simulator answers, in AWS JSON 1.1: pure request → response, no IO
//! ([`http`](crate::sim::http) carries it). The operation comes from
//! `X-Amz-Target: AmazonSSM.<Operation>`; errors are `{"__type","message"}` bodies whose name is
//! also sent as `x-amzn-ErrorType`, which is what aws-sdk-ssm and botocore read.
//!
//! Checks run in the service's order: routing (target and content type,
//! `UnknownOperationException`), then authentication, then decoding (`SerializationException`
//! for malformed JSON or wrong member types), then the model's field limits
//! (`ValidationException`, worded like the service: "1 validation error detected: Value null
//! at 'target' failed to satisfy constraint: Member must not be null"), then the operation.
//!
//! Authentication: SigV4 signatures are not verified (the simulator has no secrets), but an
//! `Authorization` header must be present so that an unsigned client fails here as it would
//! against AWS. A missing header is HTTP 403 `MissingAuthenticationTokenException` (AWS's
//! common-errors table gives 403 for MissingAuthenticationToken); one that is not SigV4-shaped
//! is HTTP 400 `IncompleteSignatureException`.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::sim::aws_error::{kind, ApiError};
use crate::sim::documents::store::MAX_CONTENT;
use crate::sim::documents::CreateDocument;
use crate::sim::kms;
use crate::sim::registry::{Filter, Registry, StartSessionRequest, StartSessionResponse};
use crate::sim::tagging;
use crate::ssm::target::is_instance_id;

/// The only request content type of AWS JSON 1.1, also used for every response.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// `X-Amz-Target` prefix of the SSM service.
pub const TARGET_PREFIX: &str = "AmazonSSM.";
/// Operations answered (anything else is `UnknownOperationException`).
#[rustfmt::skip]
pub const OPERATIONS: [&str; 7] = [
    "StartSession", "ResumeSession", "TerminateSession", "DescribeInstanceInformation",
    "CreateDocument", "DescribeDocument", "GetDocument",
];

/// DescribeInstanceInformation page size when `MaxResults` is absent, and its model limits.
const DEFAULT_PAGE: usize = 50;
const MIN_PAGE: usize = 5;

/// Filter keys DescribeInstanceInformation accepts besides `tag:<key>` and `tag-key`.
#[rustfmt::skip]
const FILTER_KEYS: [&str; 8] = [
    "InstanceIds", "AgentVersion", "PingStatus", "PlatformTypes",
    "ActivationIds", "IamRole", "ResourceType", "AssociationStatus",
];

/// What to send back: status, optional error name for `x-amzn-ErrorType`, JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    /// AWS error name for the `x-amzn-ErrorType` header, if this is an error.
    pub error_type: Option<&'static str>,
    pub body: Vec<u8>,
}

impl ApiResponse {
    fn ok(v: &Value) -> Self {
        Self {
            status: 200,
            error_type: None,
            body: v.to_string().into_bytes(),
        }
    }

    /// The AWS JSON 1.1 error shape for `e`.
    pub fn error(e: &ApiError) -> Self {
        Self {
            status: e.status,
            error_type: Some(e.kind),
            body: json!({ "__type": e.kind, "message": e.message })
                .to_string()
                .into_bytes(),
        }
    }
}

/// Handles one API request (the HTTP layer has already checked method, path and framing).
pub fn handle(
    registry: &Registry,
    target_header: Option<&str>,
    content_type: Option<&str>,
    authorization: Option<&str>,
    body: &[u8],
) -> ApiResponse {
    // KMS (`sim::kms`: the data keys of encrypted sessions) and the tagging API
    // (`sim::tagging`: EC2 Name tags) share the port.
    let target = target_header.map(str::trim).unwrap_or_default();
    let kms_op = target.strip_prefix(kms::TARGET_PREFIX);
    let tagging_op = target.strip_prefix(tagging::TARGET_PREFIX);
    let op = target
        .strip_prefix(TARGET_PREFIX)
        .or(kms_op)
        .or(tagging_op)
        .unwrap_or_default();
    let service = match (kms_op, tagging_op) {
        (Some(_), _) => "kms",
        (_, Some(_)) => "tag",
        _ => "ssm",
    };
    let checked = match service {
        "ssm" => route(op, content_type),
        _ => content_type_ok(content_type),
    };
    let result = checked
        .and_then(|()| authenticate(authorization))
        .and_then(|()| allowed(registry, service, op))
        .and_then(|()| match service {
            "kms" => kms::dispatch(&registry.kms(), op, body),
            "tag" => tagging::dispatch(registry, op, body),
            _ => dispatch(registry, op, body),
        });
    let response = match result {
        Ok(v) => ApiResponse::ok(&v),
        Err(e) => ApiResponse::error(&e),
    };
    tracing::debug!(
        operation = op,
        status = response.status,
        error = response.error_type,
        "sim: api request"
    );
    response
}

/// AccessDenied for the actions `sim --deny` names, in the words IAM uses.
fn allowed(registry: &Registry, service: &str, op: &str) -> Result<(), ApiError> {
    let action = format!("{service}:{op}");
    if !registry.denies(&action) {
        return Ok(());
    }
    Err(ApiError::new(
        kind::ACCESS_DENIED,
        format!(
            "User: arn:aws:iam::123456789012:user/sim is not authorized to perform: {action} \
             because no identity-based policy allows the {action} action"
        ),
    ))
}

fn route(op: &str, content_type: Option<&str>) -> Result<(), ApiError> {
    content_type_ok(content_type)?;
    if !OPERATIONS.contains(&op) {
        return Err(ApiError::new(
            kind::UNKNOWN_OPERATION,
            format!(
                "X-Amz-Target {TARGET_PREFIX}{op} is not an operation the simulator answers; it answers {TARGET_PREFIX}{{{}}}",
                OPERATIONS.join(",")
            ),
        ));
    }
    Ok(())
}

fn content_type_ok(content_type: Option<&str>) -> Result<(), ApiError> {
    let essence = content_type
        .and_then(|c| c.split(';').next())
        .map(str::trim)
        .unwrap_or_default();
    if !essence.eq_ignore_ascii_case(CONTENT_TYPE) {
        return Err(ApiError::new(
            kind::UNKNOWN_OPERATION,
            format!(
                "Content-Type must be {CONTENT_TYPE}, got {:?}",
                content_type.unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn authenticate(authorization: Option<&str>) -> Result<(), ApiError> {
    let Some(auth) = authorization.map(str::trim).filter(|a| !a.is_empty()) else {
        let mut e = ApiError::new(kind::MISSING_AUTH_TOKEN, "Missing Authentication Token");
        e.status = 403;
        return Err(e);
    };
    let sigv4 = auth.strip_prefix("AWS4-HMAC-SHA256 ").is_some_and(|rest| {
        ["Credential=", "SignedHeaders=", "Signature="]
            .iter()
            .all(|part| rest.contains(part))
    });
    if sigv4 {
        Ok(())
    } else {
        Err(ApiError::new(
            kind::INCOMPLETE_SIGNATURE,
            "Authorization header requires AWS4-HMAC-SHA256 with 'Credential', 'SignedHeaders' and 'Signature' parameters.",
        ))
    }
}

fn dispatch(registry: &Registry, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    match op {
        "StartSession" => start_session(registry, decode(body)?),
        "ResumeSession" => {
            let id = session_id(decode(body)?)?;
            Ok(session_json(&registry.resume_session(&id)?))
        }
        "TerminateSession" => {
            let id = session_id(decode(body)?)?;
            registry.terminate_session(&id);
            Ok(json!({ "SessionId": id }))
        }
        "CreateDocument" => {
            let description = registry.create_document(create_document(decode(body)?)?)?;
            Ok(json!({ "DocumentDescription": description }))
        }
        "DescribeDocument" => {
            let name = document_name(decode(body)?)?;
            Ok(json!({ "Document": registry.describe_document(&name)? }))
        }
        "GetDocument" => registry.get_document(&document_name(decode(body)?)?),
        _ => describe(registry, decode(body)?),
    }
}

/// An empty body is read as `{}`, like the service does for operations without required input.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            kind::SERIALIZATION,
            format!("Could not parse request body: {e}"),
        )
    })
}

fn session_json(s: &StartSessionResponse) -> Value {
    json!({ "SessionId": s.session_id, "TokenValue": s.token, "StreamUrl": s.stream_url })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartIn {
    target: Option<String>,
    document_name: Option<String>,
    parameters: Option<HashMap<String, Vec<String>>>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SessionIn {
    session_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateDocumentIn {
    name: Option<String>,
    content: Option<String>,
    document_type: Option<String>,
    document_format: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DocumentIn {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeIn {
    filters: Option<Vec<FilterIn>>,
    instance_information_filter_list: Option<Vec<LegacyFilterIn>>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FilterIn {
    key: Option<String>,
    values: Option<Vec<String>>,
}

/// The legacy `InstanceInformationFilterList` form (lower-case members in the model).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyFilterIn {
    key: Option<String>,
    value_set: Option<Vec<String>>,
}

/// Collects the model's constraint violations in the service's wording.
#[derive(Default)]
struct Violations(Vec<String>);

impl Violations {
    fn push(&mut self, field: &str, value: &str, constraint: &str) {
        let shown: String = value.chars().take(64).collect();
        let more = if shown.len() < value.len() { "…" } else { "" };
        self.0.push(format!(
            "Value '{shown}{more}' at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    fn required<T>(&mut self, field: &str, value: &Option<T>) {
        if value.is_none() {
            self.0.push(format!(
                "Value null at '{field}' failed to satisfy constraint: Member must not be null"
            ));
        }
    }

    fn length(&mut self, field: &str, value: Option<&str>, min: usize, max: usize) {
        let Some(v) = value else { return };
        let n = v.chars().count();
        if n < min {
            let c = format!("Member must have length greater than or equal to {min}");
            self.push(field, v, &c);
        } else if n > max {
            let c = format!("Member must have length less than or equal to {max}");
            self.push(field, v, &c);
        }
    }

    fn finish(self) -> Result<(), ApiError> {
        match self.0.is_empty() {
            true => Ok(()),
            false => Err(ApiError::validation(&self.0)),
        }
    }
}

fn start_session(registry: &Registry, r: StartIn) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    v.required("target", &r.target);
    v.length("target", r.target.as_deref(), 1, 400);
    let name_ok = |d: &String| {
        (3..=128).contains(&d.len())
            && d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b))
    };
    if let Some(d) = r.document_name.as_ref().filter(|d| !name_ok(d)) {
        let pattern = "^[a-zA-Z0-9_\\-.:/]{3,128}$";
        let c = format!("Member must satisfy regular expression pattern: {pattern}");
        v.push("documentName", d, &c);
    }
    let mut params: Vec<_> = r.parameters.iter().flatten().collect();
    params.sort();
    for (name, values) in params {
        v.length("parameters.key", Some(name), 1, 255);
        for value in values {
            v.length(&format!("parameters.{name}.member"), Some(value), 1, 65535);
        }
    }
    v.length("reason", r.reason.as_deref(), 1, 256);
    if let Some(reason) = r.reason.as_ref().filter(|s| s.contains(['\n', '\r'])) {
        let c = "Member must satisfy regular expression pattern: ^.{1,256}$";
        v.push("reason", reason, c);
    }
    v.finish()?;
    let req = StartSessionRequest {
        target: r.target.unwrap_or_default(),
        document: r.document_name,
        parameters: r.parameters.unwrap_or_default(),
        reason: r.reason,
    };
    Ok(session_json(&registry.start_session(req)?))
}

/// The model's `DocumentName` pattern for CreateDocument.
const DOCUMENT_NAME: &str = "^[a-zA-Z0-9_\\-.]{3,128}$";

fn create_document(r: CreateDocumentIn) -> Result<CreateDocument, ApiError> {
    let mut v = Violations::default();
    v.required("name", &r.name);
    if let Some(n) = r.name.as_ref().filter(|n| !document_name_ok(n)) {
        let c = format!("Member must satisfy regular expression pattern: {DOCUMENT_NAME}");
        v.push("name", n, &c);
    }
    v.required("content", &r.content);
    v.length("content", r.content.as_deref(), 1, MAX_CONTENT);
    let types = [
        "Command",
        "Policy",
        "Automation",
        "Session",
        "Package",
        "ApplicationConfiguration",
        "ApplicationConfigurationSchema",
        "DeploymentStrategy",
        "ChangeCalendar",
        "Automation.ChangeTemplate",
        "ProblemAnalysis",
        "ProblemAnalysisTemplate",
        "CloudFormation",
        "ConformancePackTemplate",
        "QuickSetup",
        "ManualApprovalPolicy",
        "AutoApprovalPolicy",
    ];
    if let Some(t) = r
        .document_type
        .as_ref()
        .filter(|t| !types.contains(&t.as_str()))
    {
        let c = format!("Member must satisfy enum value set: [{}]", types.join(", "));
        v.push("documentType", t, &c);
    }
    if let Some(f) = r
        .document_format
        .as_ref()
        .filter(|f| !["YAML", "JSON", "TEXT"].contains(&f.as_str()))
    {
        v.push(
            "documentFormat",
            f,
            "Member must satisfy enum value set: [YAML, JSON, TEXT]",
        );
    }
    v.finish()?;
    Ok(CreateDocument {
        name: r.name.unwrap_or_default(),
        content: r.content.unwrap_or_default(),
        document_type: r.document_type,
        document_format: r.document_format,
    })
}

fn document_name_ok(n: &str) -> bool {
    (3..=128).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// DescribeDocument / GetDocument `Name` (which may also be an ARN: up to 200 characters).
fn document_name(r: DocumentIn) -> Result<String, ApiError> {
    let mut v = Violations::default();
    v.required("name", &r.name);
    v.length("name", r.name.as_deref(), 1, 200);
    v.finish()?;
    Ok(r.name.unwrap_or_default())
}

fn session_id(r: SessionIn) -> Result<String, ApiError> {
    let mut v = Violations::default();
    v.required("sessionId", &r.session_id);
    v.length("sessionId", r.session_id.as_deref(), 1, 96);
    v.finish()?;
    Ok(r.session_id.unwrap_or_default())
}

fn describe(registry: &Registry, r: DescribeIn) -> Result<Value, ApiError> {
    let mut v = Violations::default();
    let mut filters = Vec::new();
    for (i, f) in r.filters.into_iter().flatten().enumerate() {
        let field = format!("filters.{}.member", i + 1);
        v.required(&format!("{field}.key"), &f.key);
        v.length(&format!("{field}.key"), f.key.as_deref(), 1, 128);
        let n = f.values.as_ref().map_or(0, Vec::len);
        if !(1..=100).contains(&n) {
            let c = "Member must have between 1 and 100 items";
            v.push(&format!("{field}.values"), &n.to_string(), c);
        }
        let (key, values) = (f.key.unwrap_or_default(), f.values.unwrap_or_default());
        filters.push(Filter { key, values });
    }
    let legacy = r.instance_information_filter_list.into_iter().flatten();
    for (i, f) in legacy.enumerate() {
        let key = f.key.unwrap_or_default();
        if !FILTER_KEYS.contains(&key.as_str()) {
            let field = format!("instanceInformationFilterList.{}.member.key", i + 1);
            let c = format!(
                "Member must satisfy enum value set: [{}]",
                FILTER_KEYS.join(", ")
            );
            v.push(&field, &key, &c);
        }
        filters.push(Filter {
            key,
            values: f.value_set.unwrap_or_default(),
        });
    }
    let page = r.max_results.unwrap_or(DEFAULT_PAGE as i64);
    if page < MIN_PAGE as i64 {
        let c = format!("Member must have value greater than or equal to {MIN_PAGE}");
        v.push("maxResults", &page.to_string(), &c);
    } else if page > DEFAULT_PAGE as i64 {
        let c = format!("Member must have value less than or equal to {DEFAULT_PAGE}");
        v.push("maxResults", &page.to_string(), &c);
    }
    v.finish()?;
    let page = usize::try_from(page).unwrap_or(DEFAULT_PAGE);
    filters.iter().try_for_each(check_filter)?;
    let all = registry.describe(&filters);
    let start = match r.next_token.as_deref() {
        None | Some("") => Some(0),
        Some(t) => t.parse::<usize>().ok().filter(|n| *n <= all.len()),
    };
    let Some(start) = start else {
        return Err(ApiError::new(
            kind::INVALID_NEXT_TOKEN,
            "The specified token isn't valid.",
        ));
    };
    let list: Vec<_> = all.iter().skip(start).take(page).collect();
    let mut out = json!({ "InstanceInformationList": list });
    if let (Some(m), true) = (out.as_object_mut(), start + page < all.len()) {
        m.insert("NextToken".into(), json!((start + page).to_string()));
    }
    Ok(out)
}

/// The service's own checks on filter keys and values (separate error names from validation).
fn check_filter(f: &Filter) -> Result<(), ApiError> {
    let known = FILTER_KEYS.contains(&f.key.as_str())
        || f.key == "tag-key"
        || f.key.strip_prefix("tag:").is_some_and(|k| !k.is_empty());
    if !known {
        let msg = format!("The filter key {} isn't valid.", f.key);
        return Err(ApiError::new(kind::INVALID_FILTER_KEY, msg));
    }
    let bad = |ok: &dyn Fn(&str) -> bool| f.values.iter().find(|v| !ok(v));
    if let Some(id) = bad(&is_instance_id).filter(|_| f.key == "InstanceIds") {
        let msg = format!("Instance id {id} is not valid.");
        return Err(ApiError::new(kind::INVALID_INSTANCE_ID, msg));
    }
    let ping = |v: &str| ["Online", "ConnectionLost", "Inactive"].contains(&v);
    if let Some(status) = bad(&ping).filter(|_| f.key == "PingStatus") {
        let msg =
            format!("PingStatus {status} isn't valid; use Online, ConnectionLost or Inactive.");
        return Err(ApiError::new(kind::INVALID_FILTER_VALUE, msg));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
