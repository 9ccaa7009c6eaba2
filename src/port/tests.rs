use serde_json::json;

use super::*;
use crate::ssm::driver::AppLayer;

fn info(agent: &str, props: serde_json::Value) -> SessionInfo {
    SessionInfo {
        agent_version: agent.into(),
        session_type: Some("Port".into()),
        properties: props,
        customer_message: String::new(),
    }
}

#[test]
fn local_port_forwarding_is_mux_above_3_0_196_0_and_basic_at_or_below() {
    let lpf = json!({"type": "LocalPortForwarding", "portNumber": "5432"});
    assert_eq!(
        Mode::for_session(&info("3.3.987.0", lpf.clone())),
        Mode::Mux
    );
    assert_eq!(
        Mode::for_session(&info("3.0.196.1", lpf.clone())),
        Mode::Mux
    );
    assert_eq!(
        Mode::for_session(&info("3.0.196.0", lpf.clone())),
        Mode::Basic
    );
    assert_eq!(
        Mode::for_session(&info("2.3.722.0", lpf.clone())),
        Mode::Basic
    );
    // The plugin's comparison fails when the component counts differ.
    assert_eq!(Mode::for_session(&info("3.1", lpf)), Mode::Basic);
}

#[test]
fn ssh_sessions_are_never_multiplexed() {
    let ssh = json!({"portNumber": "22"});
    assert_eq!(Mode::for_session(&info("3.3.987.0", ssh)), Mode::Basic);
}

#[test]
fn nops_go_only_to_agents_that_still_run_smux_keepalive() {
    let lpf = json!({"type": "LocalPortForwarding", "portNumber": "80"});
    let keepalive = |agent: &str| {
        let (mut layer, _opener) = PortLayer::client(PortConfig::default());
        layer.on_ready(&info(agent, lpf.clone()));
        match &layer.0.state {
            State::Mux(m) => m.keepalive(),
            _ => panic!("expected mux for agent {agent}"),
        }
    };
    assert_eq!(keepalive("3.3.987.0"), None);
    assert_eq!(keepalive("3.1.1511.1"), None);
    assert_eq!(
        keepalive("3.1.1511.0"),
        Some(crate::smux::KEEPALIVE_INTERVAL)
    );
    assert_eq!(
        keepalive("3.0.200.0"),
        Some(crate::smux::KEEPALIVE_INTERVAL)
    );
}
