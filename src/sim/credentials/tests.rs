use super::*;

/// Signs a StartSession-like call the way the SDK does (default settings: user-agent not
/// signed but sent) and returns every header the request carries.
fn signed_call(creds: &Credentials, body: &[u8], time: SystemTime) -> Vec<(String, String)> {
    let base = [
        ("host", "127.0.0.1:9"),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "AmazonSSM.StartSession"),
    ];
    let identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("ssm")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable =
        SignableRequest::new("POST", "/", base.iter().copied(), SignableBody::Bytes(body)).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut headers: Vec<(String, String)> = base
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    headers.push(("user-agent".into(), "test".into()));
    for (n, v) in instructions.headers() {
        headers.push((n.to_owned(), v.to_owned()));
    }
    headers
}

fn minted(m: &Minter, now: SystemTime) -> Credentials {
    minted_from(&m.issue(now))
}

fn minted_from(v: &Value) -> Credentials {
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    Credentials::new(
        s("AccessKeyId"),
        s("SecretAccessKey"),
        Some(s("SessionToken")),
        None,
        "t",
    )
}

fn check(
    m: &Minter,
    headers: &[(String, String)],
    body: &[u8],
    now: SystemTime,
) -> Result<(), ApiError> {
    let req = SignedRequest {
        method: "POST",
        path: "/",
        headers,
        body,
    };
    m.check_api(&req, now)
}

#[test]
fn a_call_signed_with_minted_keys_before_their_expiry_is_accepted() {
    let m = Minter::new(Duration::from_secs(60));
    let now = SystemTime::now();
    let creds = minted(&m, now);
    let headers = signed_call(&creds, b"{}", now);
    check(&m, &headers, b"{}", now + Duration::from_secs(59)).unwrap();
    assert_eq!(m.issued(), 1);
}

#[test]
fn a_call_signed_with_expired_keys_is_expired_token_exception() {
    let m = Minter::new(Duration::from_secs(5));
    let now = SystemTime::now();
    let creds = minted(&m, now);
    let headers = signed_call(&creds, b"{}", now);
    let e = check(&m, &headers, b"{}", now + Duration::from_secs(5)).unwrap_err();
    // The advertised Expiration is the very instant: a second before it the key still works.
    let v = m.issue(now);
    let at = v["Expiration"].as_str().unwrap().to_owned();
    let fresh = minted_from(&v);
    let expiry = whole_seconds(now + Duration::from_secs(5));
    assert_eq!(rfc3339(expiry), at);
    let h = signed_call(&fresh, b"{}", now);
    check(&m, &h, b"{}", expiry - Duration::from_millis(1)).unwrap();
    let late = check(&m, &h, b"{}", expiry).unwrap_err();
    assert_eq!(late.kind, "ExpiredTokenException");
    assert_eq!(e.kind, "ExpiredTokenException");
    assert_eq!(e.status, 400);
    assert_eq!(
        e.message,
        "The security token included in the request is expired"
    );
}

#[test]
fn keys_the_simulator_never_minted_are_unrecognized_client() {
    let m = Minter::new(Duration::from_secs(60));
    let now = SystemTime::now();
    let creds = Credentials::new("AKIASIMULATOR0000000", "s", None, None, "t");
    let e = check(&m, &signed_call(&creds, b"{}", now), b"{}", now).unwrap_err();
    assert_eq!(e.kind, "UnrecognizedClientException");
}

#[test]
fn a_wrong_secret_or_an_altered_body_is_invalid_signature() {
    let m = Minter::new(Duration::from_secs(60));
    let now = SystemTime::now();
    let good = minted(&m, now);
    let headers = signed_call(&good, b"{}", now);
    let e = check(&m, &headers, b"{\"x\":1}", now).unwrap_err();
    assert_eq!(e.kind, "InvalidSignatureException");
    let bad = Credentials::new(
        good.access_key_id(),
        "wrong",
        good.session_token().map(str::to_owned),
        None,
        "t",
    );
    let e = check(&m, &signed_call(&bad, b"{}", now), b"{}", now).unwrap_err();
    assert_eq!(e.kind, "InvalidSignatureException");
}

#[test]
fn expiration_is_rfc3339_utc() {
    let t = UNIX_EPOCH + Duration::from_secs(1_796_067_000);
    assert_eq!(rfc3339(t), "2026-11-30T19:30:00Z");
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
    assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
}

#[test]
fn minted_keys_are_bounded() {
    let m = Minter::new(Duration::from_secs(60));
    let now = SystemTime::now();
    for _ in 0..MAX_KEYS + 10 {
        m.issue(now);
    }
    assert_eq!(m.keys.lock().unwrap().len(), MAX_KEYS);
}
