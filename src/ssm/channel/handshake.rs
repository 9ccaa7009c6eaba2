//! Handshake payload logic (§4): what a client answers to a HandshakeRequest, what an agent asks
//! for, and how an agent judges the answer. Pure functions; the channel sequences the messages.

use serde_json::{json, Value};

use crate::ssm::payload::{
    action_status, HandshakeRequest, HandshakeResponse, ProcessedClientAction,
    RequestedClientAction,
};

/// Session types a client may accept (§4.3); anything else fails the SessionType action.
const KNOWN_SESSION_TYPES: [&str; 4] = [
    "Standard_Stream",
    "InteractiveCommands",
    "NonInteractiveCommands",
    "Port",
];

/// What the client learned from the HandshakeRequest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionInfo {
    pub agent_version: String,
    pub session_type: Option<String>,
    pub properties: Value,
    /// HandshakeComplete's CustomerMessage, shown to the user when not empty (e.g. "This
    /// session is encrypted using AWS KMS.", §4.3).
    pub customer_message: String,
}

/// Why an agent-role handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeFailure {
    /// No HandshakeResponse within the handshake timeout (15 s in the agent).
    #[error("timed out waiting for the client's HandshakeResponse")]
    TimedOut,
    /// The client answered but did not perform a requested action; the reason says which.
    #[error("{0}")]
    Refused(String),
}

/// Builds the client's HandshakeResponse: one processed action per requested action, success
/// for a known SessionType, Unsupported for anything unknown. KMSEncryption is answered Failed
/// here; the channel fills in the real answer once KMS has generated the data key.
pub fn client_response(
    req: &HandshakeRequest,
    client_version: &str,
) -> (HandshakeResponse, SessionInfo) {
    let mut info = SessionInfo {
        agent_version: req.agent_version.clone(),
        ..SessionInfo::default()
    };
    let processed = req
        .requested_client_actions
        .iter()
        .map(|a| match a.action_type.as_str() {
            "SessionType" => {
                let st = a
                    .action_parameters
                    .get("SessionType")
                    .and_then(Value::as_str);
                info.session_type = st.map(str::to_owned);
                info.properties = a
                    .action_parameters
                    .get("Properties")
                    .cloned()
                    .unwrap_or(Value::Null);
                match st {
                    Some(s) if KNOWN_SESSION_TYPES.contains(&s) => {
                        processed(a, action_status::SUCCESS, "")
                    }
                    Some(s) => processed(
                        a,
                        action_status::FAILED,
                        &format!("Unknown session type {s}"),
                    ),
                    None => processed(
                        a,
                        action_status::FAILED,
                        "SessionType action without a SessionType",
                    ),
                }
            }
            // Answered for real once KMS has generated the key (`kms::answer_kms_action`).
            "KMSEncryption" => processed(
                a,
                action_status::FAILED,
                "KMSEncryption action without a KMSKeyId",
            ),
            other => processed(
                a,
                action_status::UNSUPPORTED,
                &format!("Unsupported action {other}"),
            ),
        })
        .collect();
    (
        HandshakeResponse {
            client_version: client_version.to_owned(),
            processed_client_actions: processed,
            errors: None,
        },
        info,
    )
}

fn processed(a: &RequestedClientAction, status: i32, error: &str) -> ProcessedClientAction {
    ProcessedClientAction {
        action_type: a.action_type.clone(),
        action_status: status,
        action_result: Value::Null,
        error: error.to_owned(),
    }
}

/// The agent's HandshakeRequest for a session of `session_type` with document `properties`,
/// plus the KMSEncryption action with parameters `kms` when the session is encrypted.
pub fn agent_request(
    agent_version: &str,
    session_type: &str,
    properties: &Value,
    kms: Option<Value>,
) -> HandshakeRequest {
    let mut actions = vec![RequestedClientAction {
        action_type: "SessionType".into(),
        action_parameters: json!({"SessionType": session_type, "Properties": properties}),
    }];
    if let Some(params) = kms {
        actions.push(RequestedClientAction {
            action_type: "KMSEncryption".into(),
            action_parameters: params,
        });
    }
    HandshakeRequest {
        agent_version: agent_version.to_owned(),
        requested_client_actions: actions,
    }
}

/// The agent's verdict: every requested action must come back with status Success.
pub fn agent_judge(req: &HandshakeRequest, resp: &HandshakeResponse) -> Result<(), String> {
    for want in &req.requested_client_actions {
        let got = resp
            .processed_client_actions
            .iter()
            .find(|p| p.action_type == want.action_type);
        match got {
            Some(p) if p.action_status == action_status::SUCCESS => {}
            Some(p) => {
                return Err(format!(
                    "client failed action {} (status {}): {}",
                    p.action_type, p.action_status, p.error
                ))
            }
            None => {
                return Err(format!(
                    "client did not process action {}",
                    want.action_type
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_session_type_is_accepted_and_properties_kept() {
        let req = agent_request("3.3.0.0", "Port", &json!({"portNumber":"22"}), None);
        let (resp, info) = client_response(&req, "1.0.0");
        assert_eq!(
            resp.processed_client_actions[0].action_status,
            action_status::SUCCESS
        );
        assert_eq!(info.session_type.as_deref(), Some("Port"));
        assert_eq!(info.properties, json!({"portNumber":"22"}));
        assert!(agent_judge(&req, &resp).is_ok());
    }

    #[test]
    fn unknown_and_kms_actions_are_answered_not_aborted() {
        let req: HandshakeRequest = serde_json::from_str(
            r#"{"AgentVersion":"3","RequestedClientActions":[
              {"ActionType":"SessionType","ActionParameters":{"SessionType":"Port","Properties":{}}},
              {"ActionType":"KMSEncryption","ActionParameters":{"KMSKeyId":"k"}},
              {"ActionType":"Foo","ActionParameters":null}]}"#,
        )
        .unwrap();
        let (resp, _) = client_response(&req, "1.0.0");
        let st: Vec<i32> = resp
            .processed_client_actions
            .iter()
            .map(|p| p.action_status)
            .collect();
        assert_eq!(st, vec![1, 2, 3]);
        assert!(agent_judge(&req, &resp).is_err());
    }

    #[test]
    fn unknown_session_type_fails_the_action() {
        let req = agent_request("3", "Telepathy", &Value::Null, None);
        let (resp, _) = client_response(&req, "1.0.0");
        assert_eq!(
            resp.processed_client_actions[0].action_status,
            action_status::FAILED
        );
    }
}
