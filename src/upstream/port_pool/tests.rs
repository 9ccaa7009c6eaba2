use super::*;

fn key(host: &str) -> DestKey {
    (host.to_owned(), 80)
}

#[test]
fn room_is_made_by_closing_the_longest_idle_destination_never_a_busy_one() {
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let idle = [
        (&a, Some(Duration::from_secs(5))),
        (&b, None),
        (&c, Some(Duration::from_secs(9))),
    ];
    assert_eq!(longest_idle(idle.into_iter()), Some(c.clone()));
    let busy = [(&a, None), (&b, None)];
    assert_eq!(longest_idle(busy.into_iter()), None, "all busy: Full");
}

#[test]
fn a_destination_label_brackets_ipv6_and_escapes_a_peer_supplied_name() {
    assert_eq!(dest_label("10.0.0.1", 5432), "10.0.0.1:5432");
    assert_eq!(dest_label("fd00::1", 22), "[fd00::1]:22");
    assert!(!dest_label("a\nb", 1).contains('\n'));
}

#[test]
fn the_agent_verdicts_map_to_their_socks_replies() {
    assert_eq!(PortRefusal::Refused.socks_reply(), 5);
    let forbidden = PortRefusal::Forbidden { output: "x".into() };
    assert_eq!(forbidden.socks_reply(), 2);
    assert_eq!(PortRefusal::Full.socks_reply(), 1);
}
