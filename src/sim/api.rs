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

use crate::sim::instances::is_instance_id;
use crate::sim::registry::{
    kind, ApiError, Filter, Registry, StartSessionRequest, StartSessionResponse,
};

/// The only request content type of AWS JSON 1.1, also used for every response.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// `X-Amz-Target` prefix of the SSM service.
pub const TARGET_PREFIX: &str = "AmazonSSM.";
/// Operations answered (anything else is `UnknownOperationException`).
#[rustfmt::skip]
pub const OPERATIONS: [&str; 4] =
    ["StartSession", "ResumeSession", "TerminateSession", "DescribeInstanceInformation"];

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
    let op = target_header
        .and_then(|t| t.trim().strip_prefix(TARGET_PREFIX))
        .unwrap_or_default();
    let result = route(op, content_type)
        .and_then(|()| authenticate(authorization))
        .and_then(|()| dispatch(registry, op, body));
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

fn route(op: &str, content_type: Option<&str>) -> Result<(), ApiError> {
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

fn authenticate(authorization: Option<&str>) -> Result<(), ApiError> {
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
mod tests {
    use super::*;
    use crate::sim::instances::Instance;

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDSIM/20250101/us-east-1/ssm/aws4_request, \
                        SignedHeaders=host;x-amz-date, Signature=00";
    const WEB: &str = "i-0123456789abcdef0";
    const DESCRIBE: &str = "DescribeInstanceInformation";

    /// `n` instances named even/odd, then WEB.
    fn registry(n: usize) -> Registry {
        let addr = "127.0.0.1:2222".parse().unwrap();
        let mut list: Vec<Instance> = (0..n)
            .map(|k| Instance {
                name: Some(["even", "odd"][k % 2].into()),
                ..Instance::new(format!("i-{k:017x}"), addr)
            })
            .collect();
        list.push(Instance::new(WEB, addr));
        Registry::new(list, "ws://127.0.0.1:9".into())
    }

    fn call(r: &Registry, op: &str, body: &str) -> (u16, Value) {
        let target = format!("AmazonSSM.{op}");
        let resp = handle(
            r,
            Some(&target),
            Some(CONTENT_TYPE),
            Some(AUTH),
            body.as_bytes(),
        );
        let v: Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(
            resp.error_type,
            v["__type"].as_str(),
            "header and body agree"
        );
        (resp.status, v)
    }

    /// The error's `__type` and message.
    fn error(r: &Registry, op: &str, body: &str) -> (String, String) {
        let (status, v) = call(r, op, body);
        assert_eq!(status, 400, "{v}");
        let text = |k: &str| v[k].as_str().unwrap().to_owned();
        (text("__type"), text("message"))
    }

    fn kind_of(r: &Registry, op: &str, body: &str) -> String {
        error(r, op, body).0
    }

    #[test]
    fn start_resume_terminate_answer_in_aws_shapes() {
        let r = registry(0);
        let body = json!({"Target": WEB, "DocumentName": "AWS-StartSSHSession",
                          "Parameters": {"portNumber": ["22"]}, "Reason": "test"});
        let (status, s) = call(&r, "StartSession", &body.to_string());
        assert_eq!(status, 200);
        let id = s["SessionId"].as_str().unwrap();
        let url = format!("ws://127.0.0.1:9/v1/data-channel/{id}?role=publish_subscribe");
        assert_eq!(s["StreamUrl"], json!(url));
        let by_id = json!({ "SessionId": id }).to_string();
        let (status, resumed) = call(&r, "ResumeSession", &by_id);
        assert_eq!((status, &resumed["StreamUrl"]), (200, &s["StreamUrl"]));
        assert_ne!(resumed["TokenValue"], s["TokenValue"]);
        let ended = (200, json!({ "SessionId": id }));
        assert_eq!(call(&r, "TerminateSession", &by_id), ended);
        assert_eq!(call(&r, "TerminateSession", &by_id), ended, "idempotent");
        let (kind, msg) = error(&r, "ResumeSession", &by_id);
        assert_eq!(kind, "DoesNotExistException");
        assert!(msg.contains(id));
        let unknown = r#"{"SessionId":"nobody-00000000000000000"}"#;
        assert_eq!(
            call(&r, "TerminateSession", unknown).1["SessionId"],
            "nobody-00000000000000000"
        );
    }

    #[test]
    fn routing_errors_are_unknown_operation() {
        let r = registry(0);
        let ssm = |op: &'static str| Some(op);
        for (target, ct) in [
            (ssm("AmazonSSM.SendCommand"), Some(CONTENT_TYPE)),
            (ssm("AmazonEC2.StartSession"), Some(CONTENT_TYPE)),
            (None, Some(CONTENT_TYPE)),
            (ssm("AmazonSSM.StartSession"), Some("application/json")),
            (ssm("AmazonSSM.StartSession"), None),
        ] {
            let resp = handle(&r, target, ct, Some(AUTH), b"{}");
            let want = (400, Some("UnknownOperationException"));
            assert_eq!((resp.status, resp.error_type), want, "{target:?} {ct:?}");
        }
        let ct = Some("Application/X-Amz-Json-1.1; charset=utf-8");
        let body = br#"{"SessionId":"x"}"#;
        let ok = handle(&r, Some("AmazonSSM.TerminateSession"), ct, Some(AUTH), body);
        assert_eq!(ok.status, 200);
    }

    #[test]
    fn missing_authorization_is_403_and_non_sigv4_is_incomplete_signature() {
        let r = registry(0);
        let body = json!({"Target": WEB, "DocumentName": "AWS-StartSSHSession"}).to_string();
        let target = Some("AmazonSSM.StartSession");
        let send = |auth| handle(&r, target, Some(CONTENT_TYPE), auth, body.as_bytes());
        let missing = send(None);
        let want = (403, Some("MissingAuthenticationTokenException"));
        assert_eq!((missing.status, missing.error_type), want);
        let v: Value = serde_json::from_slice(&missing.body).unwrap();
        assert_eq!(v["message"], "Missing Authentication Token");
        let basic = send(Some("Basic Zm9vOmJhcg=="));
        let want = (400, Some("IncompleteSignatureException"));
        assert_eq!((basic.status, basic.error_type), want);
        assert_eq!(r.open_session_count(), 0);
    }

    #[test]
    fn malformed_json_and_wrong_member_types_are_serialization_errors() {
        let r = registry(0);
        let bad_map = r#"{"Target":"i-00000000","Parameters":{"portNumber":"22"}}"#;
        for body in ["{", "[1]", r#"{"Target": 5}"#, bad_map] {
            let kind = kind_of(&r, "StartSession", body);
            assert_eq!(kind, "SerializationException", "{body}");
        }
    }

    #[test]
    fn field_limits_are_validation_errors_in_the_services_wording() {
        let r = registry(0);
        let (kind, msg) = error(&r, "StartSession", "");
        assert_eq!(kind, "ValidationException");
        let want = "1 validation error detected: Value null at 'target' failed to satisfy \
                    constraint: Member must not be null";
        assert_eq!(msg, want);
        let body = json!({"Target": "x".repeat(401), "DocumentName": "no", "Reason": ""});
        let (kind, msg) = error(&r, "StartSession", &body.to_string());
        assert_eq!(kind, "ValidationException");
        assert!(msg.starts_with("3 validation errors detected: "), "{msg}");
        for part in [
            "'target'",
            "less than or equal to 400",
            "'documentName'",
            "'reason'",
        ] {
            assert!(msg.contains(part), "{msg}");
        }
        let body = json!({"Target": WEB, "Parameters": {"portNumber": [""]}}).to_string();
        assert!(error(&r, "StartSession", &body)
            .1
            .contains("parameters.portNumber.member"));
        assert_eq!(kind_of(&r, "ResumeSession", "{}"), "ValidationException");
        let long = json!({ "SessionId": "x".repeat(97) }).to_string();
        assert_eq!(
            kind_of(&r, "TerminateSession", &long),
            "ValidationException"
        );
    }

    #[test]
    fn start_session_errors_use_the_modeled_names() {
        let r = registry(0);
        let body = r#"{"Target":"i-00000000000000099","DocumentName":"AWS-StartSSHSession"}"#;
        let (kind, msg) = error(&r, "StartSession", body);
        assert_eq!(kind, "TargetNotConnected");
        assert_eq!(msg, "i-00000000000000099 is not connected.");
        let shell = json!({ "Target": WEB }).to_string();
        assert_eq!(kind_of(&r, "StartSession", &shell), "InvalidDocument");
    }

    #[test]
    fn describe_pages_with_max_results_and_next_token() {
        let r = registry(11);
        let (_, all) = call(&r, DESCRIBE, "");
        assert_eq!(all["InstanceInformationList"].as_array().unwrap().len(), 12);
        assert!(all.get("NextToken").is_none());
        let (mut seen, mut token) = (0, json!(null));
        loop {
            let req = json!({"MaxResults": 5, "NextToken": token,
                             "Filters": [{"Key": "PingStatus", "Values": ["Online"]}]});
            let (status, page) = call(&r, DESCRIBE, &req.to_string());
            let n = page["InstanceInformationList"].as_array().unwrap().len();
            assert!(status == 200 && n <= 5);
            seen += n;
            match page.get("NextToken") {
                Some(t) => token = t.clone(),
                None => break,
            }
        }
        assert_eq!(seen, 12);
        for (body, want) in [
            (r#"{"NextToken":"zz"}"#, "InvalidNextToken"),
            (r#"{"NextToken":"13"}"#, "InvalidNextToken"),
            (r#"{"MaxResults":4}"#, "ValidationException"),
            (r#"{"MaxResults":51}"#, "ValidationException"),
        ] {
            assert_eq!(kind_of(&r, DESCRIBE, body), want, "{body}");
        }
    }

    #[test]
    fn describe_filters_are_checked_like_the_service() {
        let r = registry(4);
        let ids = |body: &str| -> Vec<Value> {
            let (_, v) = call(&r, DESCRIBE, body);
            let list = v["InstanceInformationList"].as_array().unwrap().clone();
            list.into_iter().map(|i| i["InstanceId"].clone()).collect()
        };
        let filter =
            |k: &str, v: &[&str]| json!({"Filters": [{"Key": k, "Values": v}]}).to_string();
        let odd = ids(&filter("tag:Name", &["odd"]));
        let want = [json!("i-00000000000000001"), json!("i-00000000000000003")];
        assert_eq!(odd, want);
        let legacy = r#"{"InstanceInformationFilterList":
                         [{"key":"InstanceIds","valueSet":["i-00000000000000002"]}]}"#;
        assert_eq!(ids(legacy), [json!("i-00000000000000002")]);
        let bad_legacy =
            r#"{"InstanceInformationFilterList":[{"key":"tag:Name","valueSet":["x"]}]}"#;
        for (body, want) in [
            (filter("Colour", &["x"]), "InvalidFilterKey"),
            (filter("InstanceIds", &["web"]), "InvalidInstanceId"),
            (
                filter("PingStatus", &["Up"]),
                "InvalidInstanceInformationFilterValue",
            ),
            (filter("tag:Name", &[]), "ValidationException"),
            (bad_legacy.to_owned(), "ValidationException"),
        ] {
            assert_eq!(kind_of(&r, DESCRIBE, &body), want, "{body}");
        }
    }
}
