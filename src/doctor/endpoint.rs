//! Checks 3 and 4: the SSM endpoint answers (timed), and the permissions the commands need.
//!
//! One short DescribeInstanceInformation page ([`SsmApi::probe`]) does for both: any answer
//! from the service proves the endpoint is reachable, a successful one proves the permission
//! name lookups need. The session documents in use are read with DescribeDocument. StartSession,
//! ResumeSession and TerminateSession have no dry run, so they are reported as not checked,
//! with the policy they need.
//!
//! Proxies: [`route`] says which path the call took (the proxy `crate::proxy` chose, or
//! directly) and lists the proxy environment variables seen (credentials redacted).

use std::time::{Duration, Instant};

use super::identity::CALL_TIMEOUT;
use super::report::Check;
use crate::exit::codes;
use crate::proxy::ProxyUrl;
use crate::ssm::api::{ApiError, SsmApi};

/// Variables proxy-aware HTTP clients read, in the order they are listed.
const PROXY_VARS: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// What the probe call returned, and how long it took.
#[derive(Debug)]
pub struct Probe {
    pub elapsed: Duration,
    pub result: Result<usize, ApiError>,
}

/// One DescribeInstanceInformation page, timed and bounded by [`CALL_TIMEOUT`].
pub async fn probe(api: &SsmApi) -> Probe {
    let start = Instant::now();
    let result = match tokio::time::timeout(CALL_TIMEOUT, api.probe()).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::Transport {
            operation: "DescribeInstanceInformation",
            message: format!("no answer within {CALL_TIMEOUT:?}"),
        }),
    };
    Probe {
        elapsed: start.elapsed(),
        result,
    }
}

/// The endpoint line: reached (and in how long) or not.
pub fn endpoint(
    p: &Probe,
    url: &str,
    via: Option<&ProxyUrl>,
    proxy_env: &[(String, String)],
) -> Check {
    const NAME: &str = "endpoint";
    let ms = p.elapsed.as_millis();
    let how = route(via, proxy_env);
    match &p.result {
        Ok(_) | Err(ApiError::Service { .. } | ApiError::Credentials(_)) => {
            Check::ok(NAME, format!("{url} answered in {ms} ms, {how}"))
        }
        Err(e) => Check::fail(
            NAME,
            format!("{url} not reached after {ms} ms ({how}): {e}"),
            "check DNS, firewall and proxy for that host; AWS_ENDPOINT_URL_SSM or \
             AWS_ENDPOINT_URL override the endpoint",
            codes::UNAVAILABLE,
        ),
    }
}

/// How the call travelled: through `via` (the proxy the config's `proxy:` or the environment
/// chose for the endpoint) or directly; the proxy variables seen are named either way.
fn route(via: Option<&ProxyUrl>, proxy_env: &[(String, String)]) -> String {
    let seen: Vec<String> = proxy_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    match (via, seen.is_empty()) {
        (Some(p), true) => format!("through the proxy {p} (the config's proxy:)"),
        (Some(p), false) => format!("through the proxy {p} (variables seen: {})", seen.join(" ")),
        (None, true) => "directly (no proxy variables set)".to_owned(),
        (None, false) => format!(
            "directly (NO_PROXY or proxy: none; variables seen: {})",
            seen.join(" ")
        ),
    }
}

/// The proxy variables set in `env`, with any `user:password@` in their values redacted.
pub fn proxy_env(env: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    PROXY_VARS
        .iter()
        .filter_map(|k| {
            env(k)
                .filter(|v| !v.is_empty())
                .map(|v| (k.to_string(), redact(&v)))
        })
        .collect()
}

/// `http://user:pw@proxy:3128` → `http://<redacted>@proxy:3128`.
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let Some((_, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    let sep = if scheme.is_empty() { "" } else { "://" };
    format!("{scheme}{sep}<redacted>@{host}")
}

/// The DescribeInstanceInformation permission, from the same probe.
pub fn describe_permission(p: &Probe) -> Check {
    const NAME: &str = "perm-describe";
    match &p.result {
        Ok(n) => Check::ok(
            NAME,
            format!("ssm:DescribeInstanceInformation allowed ({n} on a first page of 5): names resolve, `instances` lists"),
        ),
        Err(ApiError::Service { code, message, .. }) if code.contains("AccessDenied") => {
            Check::fail(
                NAME,
                format!("ssm:DescribeInstanceInformation denied: {message}"),
                "allow ssm:DescribeInstanceInformation (name lookup and `instances` need it; \
                 instance ids work without it)",
                codes::NO_PERM,
            )
        }
        Err(e) => Check::skip(NAME, format!("not checked: {e}")),
    }
}

/// The session documents the commands use, read with DescribeDocument.
pub async fn documents(api: &SsmApi, docs: &[(String, &'static str)]) -> Check {
    const NAME: &str = "documents";
    let (mut readable, mut denied) = (Vec::new(), Vec::new());
    for (doc, used_by) in docs {
        let call = api.describe_document(doc);
        let r = tokio::time::timeout(CALL_TIMEOUT, call).await;
        match r {
            Ok(Ok(Some(_))) => readable.push(format!("{doc} ({used_by})")),
            Ok(Ok(None)) => {
                return Check::fail(
                    NAME,
                    format!("session document {doc} ({used_by}) does not exist in this account and region"),
                    format!("create it with `session-proxy exec --install-document {doc}`, or correct exec.document in the config"),
                    codes::CONFIG,
                )
            }
            Ok(Err(ApiError::Service { code, .. })) if code.contains("AccessDenied") => {
                denied.push(doc.clone())
            }
            Ok(Err(e)) => return Check::skip(NAME, format!("not checked: {e}")),
            Err(_) => return Check::skip(NAME, "not checked: DescribeDocument timed out"),
        }
    }
    if denied.is_empty() {
        return Check::ok(NAME, format!("readable: {}", readable.join(", ")));
    }
    Check::warn(
        NAME,
        format!("ssm:DescribeDocument denied for {}", denied.join(", ")),
        "sessions may still work (StartSession checks the document itself); allow \
         ssm:DescribeDocument to let doctor and `exec --install-document` read them",
    )
}

/// The calls that cannot be tried without opening or closing a real session.
pub fn sessions_not_checked() -> Check {
    Check::skip(
        "perm-sessions",
        "not checked: StartSession, ResumeSession and TerminateSession have no dry run; the \
         policy needs ssm:StartSession on the instance and the document, and \
         ssm:ResumeSession/ssm:TerminateSession on your own sessions",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_credentials_never_reach_the_report() {
        let env = |k: &str| match k {
            "HTTPS_PROXY" => Some("http://alice:s3cret@proxy.corp:3128".to_owned()),
            "NO_PROXY" => Some("169.254.169.254,.internal".to_owned()),
            "http_proxy" => Some(String::new()),
            _ => None,
        };
        let seen = proxy_env(env);
        assert_eq!(
            seen,
            vec![
                (
                    "HTTPS_PROXY".to_owned(),
                    "http://<redacted>@proxy.corp:3128".to_owned()
                ),
                (
                    "NO_PROXY".to_owned(),
                    "169.254.169.254,.internal".to_owned()
                ),
            ]
        );
        assert!(!route(None, &seen).contains("s3cret"));
        assert_eq!(route(None, &[]), "directly (no proxy variables set)");
        let p = ProxyUrl::parse("HTTPS_PROXY", "http://u:s3cret@proxy.corp:3128").unwrap();
        let how = route(Some(&p), &seen);
        assert!(
            how.starts_with("through the proxy http://***@proxy.corp:3128"),
            "{how}"
        );
        assert!(!how.contains("s3cret"), "{how}");
    }

    #[test]
    fn a_service_error_still_proves_the_endpoint_reachable_but_a_transport_error_fails() {
        let service = Probe {
            elapsed: Duration::from_millis(12),
            result: Err(ApiError::Service {
                operation: "DescribeInstanceInformation",
                code: "AccessDeniedException".into(),
                message: "no".into(),
            }),
        };
        assert_eq!(
            endpoint(&service, "u", None, &[]).status,
            super::super::Status::Ok
        );
        assert_eq!(describe_permission(&service).code, codes::NO_PERM);
        let down = Probe {
            elapsed: Duration::from_millis(3),
            result: Err(ApiError::Transport {
                operation: "DescribeInstanceInformation",
                message: "connection refused".into(),
            }),
        };
        let c = endpoint(&down, "http://127.0.0.1:9", None, &[]);
        assert_eq!(
            (c.status, c.code),
            (super::super::Status::Fail, codes::UNAVAILABLE)
        );
        assert_eq!(
            describe_permission(&down).status,
            super::super::Status::Skip
        );
    }
}
