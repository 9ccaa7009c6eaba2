//! Tests of [`super`]: behaviour pinned per rule.
use serde_json::json;

use super::AttachError::{BadToken, Terminated, UnknownSession};
use super::*;

const WEB: &str = "i-0123456789abcdef0";
const DB: &str = "mi-00000000000000002";
const OFF: &str = "i-00000003";

/// WEB (Name web, an IP), DB (managed instance on another address), OFF (offline, Name web).
fn registry() -> Registry {
    let web = Instance {
        name: Some("web".into()),
        ip_address: Some("10.0.0.5".into()),
        ..Instance::new(WEB, "127.0.0.1:2222".parse().unwrap())
    };
    let db = Instance::new(DB, "127.0.0.2:2200".parse().unwrap());
    let off = Instance {
        online: false,
        name: Some("web".into()),
        ..Instance::new(OFF, db.address)
    };
    Registry::new(vec![web, db, off], "ws://127.0.0.1:9/".into())
}

fn ssh(target: &str) -> StartSessionRequest {
    let document = Some("AWS-StartSSHSession".to_owned());
    StartSessionRequest {
        target: target.into(),
        document,
        ..Default::default()
    }
}

#[test]
fn started_session_has_aws_shaped_id_token_and_stream_url() {
    let r = registry();
    let s = r.start_session(ssh(WEB)).unwrap();
    let hex = s.session_id.strip_prefix("sim-user-").unwrap();
    assert!(hex.len() == 17 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!((64..=300).contains(&s.token.len()));
    let id = &s.session_id;
    let url = format!("ws://127.0.0.1:9/v1/data-channel/{id}?role=publish_subscribe");
    assert_eq!(s.stream_url, url);
    assert_eq!(r.open_session_count(), 1);
    assert_eq!(r.session_ids(), vec![id.clone()]);
}

#[test]
fn unknown_and_offline_targets_are_not_connected() {
    let r = registry();
    for target in [OFF, "i-0000000000000000f", "web"] {
        let e = r.start_session(ssh(target)).unwrap_err();
        assert_eq!((e.kind, e.status), (kind::TARGET_NOT_CONNECTED, 400));
        assert_eq!(e.message, format!("{target} is not connected."));
    }
}

#[test]
fn sessions_carry_the_documents_plan_for_the_agent() {
    let r = registry();
    let mut pf = ssh(DB);
    pf.document = Some("AWS-StartPortForwardingSession".into());
    pf.parameters
        .insert("portNumber".into(), vec!["5432".into()]);
    let s = r.start_session(pf).unwrap();
    let spec = r.attach(&s.session_id, &s.token).unwrap();
    assert_eq!(
        (spec.session_type.as_str(), spec.instance_id.as_str()),
        ("Port", DB)
    );
    assert_eq!(spec.properties["portNumber"], "5432");
    assert_eq!(
        spec.run,
        Run::Dial(DialTarget::Addr("127.0.0.2:5432".parse().unwrap()))
    );
    let shell = StartSessionRequest {
        document: None,
        ..ssh(WEB)
    };
    let s = r.start_session(shell).unwrap();
    let spec = r.attach(&s.session_id, &s.token).unwrap();
    assert_eq!(spec.session_type, "Standard_Stream");
    assert_eq!(spec.run, Run::Shell { profile: None });
    let missing = StartSessionRequest {
        document: Some("AWS-RunShellScript".into()),
        ..ssh(WEB)
    };
    assert_eq!(
        r.start_session(missing).unwrap_err().kind,
        kind::INVALID_DOCUMENT
    );
    assert_eq!(r.open_session_count(), 2);
}

#[test]
fn a_token_attaches_once_and_resume_replaces_it() {
    let r = registry();
    let s = r.start_session(ssh(WEB)).unwrap();
    let id = s.session_id.as_str();
    assert_eq!(r.attach(id, "nope").err(), Some(BadToken));
    assert_eq!(
        r.attach("sim-user-00000000000000000", &s.token).err(),
        Some(UnknownSession)
    );
    assert!(r.attach(id, &s.token).unwrap().first_attach);
    assert_eq!(
        r.attach(id, &s.token).err(),
        Some(BadToken),
        "tokens are single-use"
    );
    let t1 = r.resume_session(id).unwrap();
    let t2 = r.resume_session(id).unwrap();
    assert_eq!(
        (t2.session_id.as_str(), &t2.stream_url),
        (id, &s.stream_url)
    );
    assert_ne!(t1.token, t2.token);
    assert_eq!(
        r.attach(id, &t1.token).err(),
        Some(BadToken),
        "resume voids the old token"
    );
    assert!(!r.attach(id, &t2.token).unwrap().first_attach);
}

#[test]
fn terminate_notifies_the_session_and_ends_it_for_good() {
    let r = registry();
    let s = r.start_session(ssh(WEB)).unwrap();
    let id = s.session_id.as_str();
    let spec = r.attach(id, &s.token).unwrap();
    let resumed = r.resume_session(id).unwrap();
    assert!(!*spec.terminated.borrow());
    r.terminate_session(id);
    assert!(*spec.terminated.borrow());
    assert_eq!(r.open_session_count(), 0);
    assert_eq!(r.attach(id, &resumed.token).err(), Some(Terminated));
    assert_eq!(r.resume_session(id).unwrap_err().kind, kind::DOES_NOT_EXIST);
    r.terminate_session(id);
    r.terminate_session("sim-user-00000000000000000");
    r.mark_closed(id);
    assert_eq!(r.session_ids().len(), 1);
}

#[test]
fn closed_session_cannot_be_resumed_but_others_can() {
    let r = registry();
    let (s, other) = (
        r.start_session(ssh(WEB)).unwrap(),
        r.start_session(ssh(DB)).unwrap(),
    );
    r.mark_closed(&s.session_id);
    assert_eq!(r.open_session_count(), 1);
    let e = r.resume_session(&s.session_id).unwrap_err();
    assert!(e.kind == kind::DOES_NOT_EXIST && e.message.contains(&s.session_id));
    assert!(r.resume_session(&other.session_id).is_ok());
}

#[test]
fn describe_applies_filters_as_and_of_ors() {
    let r = registry();
    let ids = |f: &[(&str, &[&str])]| -> Vec<String> {
        let to_filter = |(k, v): &(&str, &[&str])| Filter {
            key: (*k).into(),
            values: v.iter().map(|x| (*x).to_owned()).collect(),
        };
        let filters: Vec<Filter> = f.iter().map(to_filter).collect();
        r.describe(&filters)
            .into_iter()
            .map(|i| i.instance_id)
            .collect()
    };
    assert_eq!(ids(&[]), [WEB, DB, OFF]);
    assert_eq!(ids(&[("tag:Name", &["web"])]), [WEB, OFF]);
    assert_eq!(
        ids(&[("tag:Name", &["web"]), ("PingStatus", &["Online"])]),
        [WEB]
    );
    assert_eq!(
        ids(&[("PingStatus", &["ConnectionLost", "Inactive"])]),
        [OFF]
    );
    assert_eq!(ids(&[("InstanceIds", &[DB, "i-99999999"])]), [DB]);
    assert_eq!(ids(&[("ResourceType", &["ManagedInstance"])]), [DB]);
    assert!(ids(&[("tag:Team", &["x"])]).is_empty());
}

#[test]
fn instance_info_serializes_like_aws_and_omits_absent_fields() {
    let list: Vec<Value> = registry()
        .describe(&[])
        .iter()
        .map(|i| serde_json::to_value(i).unwrap())
        .collect();
    let web = &list[0];
    assert_eq!(
        (&web["InstanceId"], &web["PingStatus"]),
        (&json!(WEB), &json!("Online"))
    );
    assert_eq!(
        (&web["IPAddress"], &web["ResourceType"]),
        (&json!("10.0.0.5"), &json!("EC2Instance"))
    );
    assert_eq!(
        (&web["PlatformType"], &web["IsLatestVersion"]),
        (&json!("Linux"), &json!(true))
    );
    assert!(web["LastPingDateTime"].as_f64().unwrap() > 1.6e9);
    for absent in ["IPAddress", "ComputerName", "Name"] {
        assert!(list[1].get(absent).is_none(), "{absent}");
    }
    assert_eq!(list[2]["PingStatus"], "ConnectionLost");
}

#[test]
fn open_sessions_are_capped_and_old_ended_ones_forgotten() {
    let r = registry();
    let first = r.start_session(ssh(WEB)).unwrap().session_id;
    for _ in 1..MAX_OPEN_SESSIONS {
        r.start_session(ssh(WEB)).unwrap();
    }
    assert_eq!(
        r.start_session(ssh(WEB)).unwrap_err().kind,
        kind::QUOTA_EXCEEDED
    );
    r.session_ids()
        .iter()
        .for_each(|id| r.terminate_session(id));
    for _ in 0..MAX_ENDED_SESSIONS {
        r.mark_closed(&r.start_session(ssh(WEB)).unwrap().session_id);
    }
    r.start_session(ssh(WEB)).unwrap();
    assert!(r.session_ids().len() <= MAX_ENDED_SESSIONS + 1);
    assert!(!r.session_ids().contains(&first));
}

#[test]
fn duplicate_instance_ids_keep_the_first_definition() {
    let a = Instance::new(WEB, "127.0.0.1:1".parse().unwrap());
    let b = Instance::new(WEB, "127.0.0.1:2".parse().unwrap());
    let r = Registry::new(vec![a, b], "ws://x".into());
    let s = r.start_session(ssh(WEB)).unwrap();
    let run = r.attach(&s.session_id, &s.token).unwrap().run;
    assert_eq!(
        run,
        Run::Dial(DialTarget::Addr("127.0.0.1:1".parse().unwrap()))
    );
}

#[test]
fn remote_host_sessions_dial_the_mapped_ip_and_imds_sessions_still_start() {
    let mut web = Instance::new(WEB, "127.0.0.1:2222".parse().unwrap());
    web.hosts
        .insert("db.internal".into(), "127.0.0.5".parse().unwrap());
    web.agent_version = "3.0.196.0".into();
    let r = Registry::new(vec![web], "ws://x".into());
    let remote = |host: &str| {
        let mut req = ssh(WEB);
        req.document = Some("AWS-StartPortForwardingSessionToRemoteHost".into());
        req.parameters.insert("host".into(), vec![host.into()]);
        req.parameters
            .insert("portNumber".into(), vec!["5432".into()]);
        let s = r.start_session(req).unwrap();
        r.attach(&s.session_id, &s.token).unwrap()
    };
    let db = remote("db.internal");
    assert_eq!(
        db.run,
        Run::Dial(DialTarget::Addr("127.0.0.5:5432".parse().unwrap()))
    );
    assert_eq!(
        db.agent_version, "3.0.196.0",
        "the agent picks basic or mux mode from it"
    );
    let imds = remote("169.254.169.254");
    assert!(
        matches!(&imds.run, Run::Dial(d) if d.denied().is_some()),
        "the agent refuses it, not StartSession"
    );
}
