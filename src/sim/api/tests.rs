//! Tests of [`super`]: behaviour pinned per rule.
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
    let missing = json!({ "Target": WEB, "DocumentName": "AWS-RunShellScript" }).to_string();
    assert_eq!(kind_of(&r, "StartSession", &missing), "InvalidDocument");
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
    let filter = |k: &str, v: &[&str]| json!({"Filters": [{"Key": k, "Values": v}]}).to_string();
    let odd = ids(&filter("tag:Name", &["odd"]));
    let want = [json!("i-00000000000000001"), json!("i-00000000000000003")];
    assert_eq!(odd, want);
    let legacy = r#"{"InstanceInformationFilterList":
                         [{"key":"InstanceIds","valueSet":["i-00000000000000002"]}]}"#;
    assert_eq!(ids(legacy), [json!("i-00000000000000002")]);
    let bad_legacy = r#"{"InstanceInformationFilterList":[{"key":"tag:Name","valueSet":["x"]}]}"#;
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

#[test]
fn a_denied_action_is_access_denied_naming_it_and_other_actions_still_answer() {
    let r = registry(2);
    r.deny(&["ssm:StartSession".to_owned()]);
    let body = json!({"Target": WEB, "DocumentName": "AWS-StartSSHSession"}).to_string();
    let (kind, message) = error(&r, "StartSession", &body);
    assert_eq!(kind, "AccessDeniedException");
    assert!(
        message.contains("not authorized to perform: ssm:StartSession"),
        "{message}"
    );
    let (status, v) = call(&r, DESCRIBE, "{}");
    assert_eq!(status, 200, "{v}");
}
