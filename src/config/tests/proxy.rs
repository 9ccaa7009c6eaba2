//! The `proxy:` key: absent, disabled, or a URL whose credentials never reach an error.

use super::*;

#[test]
fn proxy_key_absent_means_environment_empty_or_none_means_no_proxy() {
    assert_eq!(cfg("log_level: info\n").proxy, ProxySetting::Environment);
    assert_eq!(cfg("proxy:\n").proxy, ProxySetting::Disabled);
    assert_eq!(cfg("proxy: ''\n").proxy, ProxySetting::Disabled);
    assert_eq!(cfg("proxy: none\n").proxy, ProxySetting::Disabled);
    let ProxySetting::Url(u) = cfg("proxy: http://me:s%40cret@proxy.corp:3128\n").proxy else {
        panic!("not a URL")
    };
    assert_eq!(u.to_string(), "http://***@proxy.corp:3128");
}

#[test]
fn a_bad_proxy_url_is_a_config_issue_that_hides_the_password() {
    let found = issues("proxy: https://me:hunter2@proxy.corp:3128\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "proxy");
    let text = found[0].message.clone();
    assert!(text.contains("https://***@proxy.corp:3128"), "{text}");
    assert!(text.contains("http://[user:password@]host:port"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
