//! Tests of [`super`]: behaviour pinned per rule.
use super::*;

const SSH: &str = "AWS-StartSSHSession";
const PF: &str = "AWS-StartPortForwardingSession";
const REMOTE: &str = "AWS-StartPortForwardingSessionToRemoteHost";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Plans `doc` on an instance mapped at 127.0.0.2:2222; `params` is `k=v1|v2 k2=v`.
fn plan_on(doc: Option<&str>, params: &str) -> Result<(Value, DialTarget), ApiError> {
    let split = |p: &str| {
        let (k, v) = p.split_once('=').unwrap();
        (k.to_owned(), v.split('|').map(str::to_owned).collect())
    };
    let params = params.split_whitespace().map(split).collect();
    let inst = Instance::new("i-01234567", addr("127.0.0.2:2222"));
    match plan(&inst, doc, &params, &|_| None)? {
        Plan {
            properties,
            run: Run::Dial(dial),
            ..
        } => Ok((properties, dial)),
        other => panic!("not a port session: {other:?}"),
    }
}

/// Plans a shell-kind document with one `command` parameter (if given).
fn shell_plan(doc: Option<&str>, command: Option<&str>) -> Result<Plan, ApiError> {
    let inst = Instance::new("i-01234567", addr("127.0.0.2:2222"));
    let params = command
        .map(|c| ("command".to_owned(), vec![c.to_owned()]))
        .into_iter()
        .collect();
    plan(&inst, doc, &params, &|_| None)
}

#[test]
fn documents_give_the_agent_their_properties_and_dial_target() {
    let local = |p| DialTarget::Addr(addr(p));
    let ssh = plan_on(Some(SSH), "").unwrap();
    assert_eq!(ssh, (json!({"portNumber": "22"}), local("127.0.0.2:2222")));
    let pf = plan_on(Some(PF), "portNumber=5432 localPortNumber=15432").unwrap();
    let props =
        json!({"portNumber": "5432", "type": "LocalPortForwarding", "localPortNumber": "15432"});
    assert_eq!(pf, (props, local("127.0.0.2:5432")));
    let defaults =
        json!({"portNumber": "80", "type": "LocalPortForwarding", "localPortNumber": "0"});
    assert_eq!(plan_on(Some(PF), "").unwrap().0, defaults);
    let (p, d) = plan_on(Some(REMOTE), "host=db.internal portNumber=22").unwrap();
    assert_eq!(
        (&p["host"], &p["type"]),
        (&json!("db.internal"), &json!("LocalPortForwarding"))
    );
    assert_eq!(d, DialTarget::Host("db.internal".into(), 22));
    let v6 = plan_on(Some(REMOTE), "host=[::1]").unwrap().1;
    assert_eq!(v6, DialTarget::Addr(addr("[::1]:80")));
}

#[test]
fn remote_hosts_dial_the_instances_hosts_map_then_ip_literals_then_the_resolver() {
    let mut inst = Instance::new("i-01234567", addr("127.0.0.2:2222"));
    inst.hosts
        .insert("db.internal".into(), "127.0.0.3".parse().unwrap());
    let dial = |host: &str| {
        let params = [
            ("host".to_owned(), vec![host.to_owned()]),
            ("portNumber".to_owned(), vec!["5432".to_owned()]),
        ];
        port_plan(&inst, REMOTE, &params.into_iter().collect())
            .unwrap()
            .1
    };
    assert_eq!(
        dial("DB.internal"),
        DialTarget::Addr(addr("127.0.0.3:5432"))
    );
    assert_eq!(dial("127.0.0.9"), DialTarget::Addr(addr("127.0.0.9:5432")));
    assert_eq!(
        dial("cache.internal"),
        DialTarget::Host("cache.internal".into(), 5432)
    );
    assert_eq!(
        dial("localhost"),
        DialTarget::Host("localhost".into(), 5432)
    );
}

#[test]
fn imds_is_planned_like_any_host_and_left_for_the_agent_to_refuse() {
    let (_, dial) = plan_on(Some(REMOTE), "host=169.254.169.254").unwrap();
    assert_eq!(dial, DialTarget::Addr(addr("169.254.169.254:80")));
    let text = "Forwarding to IP address 169.254.169.254 is forbidden.";
    assert_eq!(dial.denied().as_deref(), Some(text));
}

#[test]
fn a_document_that_does_not_exist_is_invalid_document_naming_the_supported_ones() {
    let e = plan_on(Some("AWS-RunShellScript"), "").unwrap_err();
    assert_eq!(e.kind, kind::INVALID_DOCUMENT);
    assert!(e.message.contains(REMOTE), "{}", e.message);
    assert!(e.message.contains(SHELL_DOCUMENT), "{}", e.message);
}

#[test]
fn no_document_is_the_standard_stream_shell_and_takes_no_parameters() {
    let p = shell_plan(None, None).unwrap();
    assert_eq!(p.session_type, "Standard_Stream");
    assert_eq!(p.run, Run::Shell { profile: None });
    let e = shell_plan(None, Some("ls")).unwrap_err();
    assert_eq!(e.kind, kind::INVALID_PARAMETERS);
}

#[test]
fn command_documents_require_their_command_and_substitute_it() {
    let p = shell_plan(Some("AWS-StartInteractiveCommand"), Some("top -b")).unwrap();
    assert_eq!(p.session_type, "InteractiveCommands");
    assert_eq!(p.properties["linux"]["commands"], "top -b");
    let command = "top -b".to_owned();
    assert_eq!(p.run, Run::Interactive { command });
    let p = shell_plan(Some("AWS-StartNonInteractiveCommand"), Some("ls -l")).unwrap();
    assert_eq!(p.session_type, "NonInteractiveCommands");
    assert_eq!(
        p.properties,
        Value::Null,
        "the real agent's handshake has none"
    );
    let command = "ls -l".to_owned();
    let want = Run::Command(CommandPlan {
        command,
        separate: None,
    });
    assert_eq!(p.run, want);
    for doc in [
        "AWS-StartInteractiveCommand",
        "AWS-StartNonInteractiveCommand",
    ] {
        let e = shell_plan(Some(doc), None).unwrap_err();
        assert_eq!(e.kind, kind::INVALID_PARAMETERS);
        assert!(
            e.message.contains("requires parameter command"),
            "{}",
            e.message
        );
    }
}

#[test]
fn bad_document_parameters_are_invalid_parameters() {
    let cases = [
        (
            SSH,
            "localPortNumber=1",
            "does not take parameter localPortNumber",
        ),
        (SSH, "portNumber=22|23", "exactly one value"),
        (SSH, "portNumber=0", "portNumber \"0\""),
        (SSH, "portNumber=022", "portNumber \"022\""),
        (PF, "localPortNumber=70000", "localPortNumber"),
        (REMOTE, "", "requires parameter host"),
        (REMOTE, "host=a;b", "not a host name"),
    ];
    for (doc, params, want) in cases {
        let e = plan_on(Some(doc), params).unwrap_err();
        assert_eq!(e.kind, kind::INVALID_PARAMETERS, "{doc} {params}");
        assert!(e.message.contains(want), "{}", e.message);
    }
}

#[test]
fn created_session_documents_run_with_their_defaults_and_bad_ones_are_refused() {
    let mut store = DocumentStore::default();
    let req = |name: &str, content: &str, doc_type: Option<&str>| CreateDocument {
        name: name.to_owned(),
        content: content.to_owned(),
        document_type: doc_type.map(str::to_owned),
        document_format: None,
    };
    let content = json!({"schemaVersion": "1.0", "sessionType": "InteractiveCommands",
        "parameters": {"cmd": {"type": "String", "default": "top"}},
        "properties": {"linux": {"commands": "{{ cmd }} -b"}}})
    .to_string();
    store.create(req("Top", &content, Some("Session"))).unwrap();
    let plan = store
        .session_doc("Top")
        .unwrap()
        .plan(&HashMap::new())
        .unwrap();
    let command = "top -b".to_owned();
    assert_eq!(plan.run, Run::Interactive { command });
    let again = store.create(req("Top", &content, Some("Session")));
    assert_eq!(again.unwrap_err().kind, kind::DOCUMENT_ALREADY_EXISTS);
    let aws = store.create(req(SHELL_DOCUMENT, &content, Some("Session")));
    assert_eq!(aws.unwrap_err().kind, kind::DOCUMENT_ALREADY_EXISTS);
    let command_doc = store.create(req("Cmd", &content, None));
    assert_eq!(command_doc.unwrap_err().kind, kind::INVALID_DOCUMENT_TYPE);
    let bad = [
        "not a document",
        r#"{"schemaVersion": "1.0", "sessionType": "InteractiveCommands"}"#,
        r#"{"schemaVersion": "2.2", "sessionType": "Standard_Stream"}"#,
        r#"{"schemaVersion": "1.0", "sessionType": "Shell"}"#,
    ];
    for content in bad {
        let e = store
            .create(req("Bad", content, Some("Session")))
            .unwrap_err();
        assert_eq!(e.kind, kind::INVALID_DOCUMENT_CONTENT, "{content}");
    }
}
