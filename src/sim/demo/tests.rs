//! Tests of [`super`]: the demo instance as the simulator sees it.
use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::sim::documents;

#[tokio::test]
async fn the_demo_instance_reaches_its_page_as_db_internal() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("demo")).await.unwrap();
    let inst = demo.instance();
    assert_eq!(inst.host_ip(FORWARD_HOST), Some(demo.web_addr().ip()));
    let params: HashMap<String, Vec<String>> = [
        ("host", FORWARD_HOST.to_owned()),
        ("portNumber", demo.forward_port().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), vec![v]))
    .collect();
    let doc = Some("AWS-StartPortForwardingSessionToRemoteHost");
    let plan = documents::plan(&inst, doc, &params, &|_| None).unwrap();
    let documents::Run::Dial(dial) = plan.run else {
        panic!("not a port session: {plan:?}")
    };
    let guard = Duration::from_secs(20);
    let mut page = tokio::time::timeout(guard, dial.connect())
        .await
        .unwrap()
        .unwrap();
    page.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut body = String::new();
    tokio::time::timeout(guard, page.read_to_string(&mut body))
        .await
        .unwrap()
        .unwrap();
    assert!(body.contains(PAGE_TITLE), "{body}");
    demo.shutdown().await;
}
