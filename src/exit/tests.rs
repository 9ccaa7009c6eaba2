#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::control::proto::ProtoError;

fn broken_pipe() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "Broken pipe (os error 32)")
}

fn code(e: impl Into<anyhow::Error>) -> u8 {
    code_for(&e.into())
}

fn auth_refused() -> SshError {
    SshError::Auth {
        user: "ec2-user".into(),
        instance: "i-0123456789abcdef0".into(),
        tried: vec![],
    }
}

fn credentials() -> ApiError {
    ApiError::Credentials(crate::ssm::credentials::Problem::Expired {
        profile: "prod".into(),
    })
}

fn not_ready(cause: Option<ConnectError>) -> UpstreamError {
    UpstreamError::NotReady {
        upstream: "prod".into(),
        waited: Duration::from_secs(60),
        last_error: cause
            .as_ref()
            .map_or("still connecting".into(), |c| c.to_string()),
        cause: cause.map(Arc::new),
    }
}

#[test]
fn a_closed_stdout_is_a_success() {
    let e = anyhow::Error::from(StdoutError::from(broken_pipe())).context("printing the status");
    assert_eq!(code_for(&e), codes::OK);
}

#[test]
fn a_broken_pipe_from_the_control_socket_is_a_failure() {
    assert_eq!(code(ControlError::Io(broken_pipe())), codes::IO);
}

#[test]
fn a_broken_pipe_of_unknown_origin_is_a_failure() {
    let e = anyhow::Error::from(broken_pipe()).context("relaying");
    assert_eq!(code_for(&e), codes::FAILURE);
}

#[test]
fn other_stdout_write_errors_are_io_errors() {
    let full = io::Error::from_raw_os_error(libc::ENOSPC);
    assert_eq!(code(StdoutError::from(full)), codes::IO);
}

#[test]
fn control_errors_each_have_their_code() {
    let path = PathBuf::from("/run/x.sock");
    let remote = |kind| ControlError::Remote {
        kind,
        message: "m".into(),
    };
    let cases = [
        (
            ControlError::NotRunning { path: path.clone() },
            codes::UNAVAILABLE,
        ),
        (
            ControlError::AlreadyRunning { path, pid: Some(7) },
            codes::OS,
        ),
        (ControlError::Timeout(Duration::from_secs(10)), codes::TEMP),
        (
            ControlError::NotStopped(Duration::from_secs(60)),
            codes::TEMP,
        ),
        (ControlError::Proto(ProtoError::NoVersion), codes::PROTOCOL),
        (ControlError::Closed, codes::PROTOCOL),
        (remote(RemoteKind::UnknownUpstream), codes::NO_HOST),
        (remote(RemoteKind::NotRouted), codes::NO_HOST),
        (remote(RemoteKind::Failed), codes::UNAVAILABLE),
        (remote(RemoteKind::PermissionDenied), codes::NO_PERM),
        (remote(RemoteKind::BadRequest), codes::PROTOCOL),
    ];
    for (e, want) in cases {
        let text = e.to_string();
        assert_eq!(code(e), want, "{text}");
    }
}

#[test]
fn ssh_errors_each_have_their_code() {
    let instance = || "i-0123456789abcdef0".to_owned();
    let malformed = HostKeyError::Malformed {
        path: "/k".into(),
        line: 3,
        reason: "no key".into(),
    };
    let cases = [
        (auth_refused(), codes::NO_PERM),
        (SshError::HostKey(malformed), codes::HOST_KEY),
        (
            SshError::Handshake {
                instance: instance(),
                message: "kex".into(),
            },
            codes::PROTOCOL,
        ),
        (
            SshError::Closed {
                instance: instance(),
                message: "eof".into(),
            },
            codes::PROTOCOL,
        ),
        (
            SshError::Session {
                instance: instance(),
                source: OpenError::Api(credentials()),
            },
            codes::NO_PERM,
        ),
    ];
    for (e, want) in cases {
        let text = e.to_string();
        assert_eq!(code(e), want, "{text}");
    }
    let io = HostKeyError::Io {
        path: "/k".into(),
        source: io::Error::from(io::ErrorKind::PermissionDenied),
    };
    assert_eq!(code(io), codes::IO);
}

#[test]
fn an_upstream_that_never_connected_exits_with_the_cause_of_its_last_failure() {
    assert_eq!(code(not_ready(Some(auth_refused().into()))), codes::NO_PERM);
    let unknown = ConnectError::Target(TargetError::NotFound { name: "web".into() });
    assert_eq!(code(not_ready(Some(unknown))), codes::NO_HOST);
    let slow = ConnectError::Timeout {
        target: "web".into(),
        after: Duration::from_secs(60),
    };
    assert_eq!(code(not_ready(Some(slow))), codes::TEMP);
    assert_eq!(code(not_ready(None)), codes::TEMP);
}

#[test]
fn serve_without_any_upstream_exits_with_the_first_failure() {
    let first = not_ready(Some(ConnectError::Ssh(auth_refused())));
    let e = ServeError::NoUpstream {
        summary: first.to_string(),
        hint: "",
        first,
    };
    assert_eq!(code(e), codes::NO_PERM);
    let bind = ServeError::Bind {
        what: "127.0.0.1:1080".into(),
        error: io::Error::from(io::ErrorKind::AddrInUse),
    };
    assert_eq!(code(bind), codes::OS);
}

#[test]
fn upstream_errors_each_have_their_code() {
    let lost = |cause| UpstreamError::ConnectionsLost {
        upstream: "prod".into(),
        host: "10.0.0.5".into(),
        port: 22,
        cause,
    };
    assert_eq!(code(UpstreamError::Unknown("x".into())), codes::NO_HOST);
    assert_eq!(code(lost(None)), codes::PROTOCOL);
    assert_eq!(code(lost(Some(Box::new(auth_refused())))), codes::NO_PERM);
    let gone = UpstreamError::ShutDown {
        upstream: "prod".into(),
    };
    assert_eq!(code(gone), codes::UNAVAILABLE);
}

#[test]
fn a_pool_that_gave_up_exits_with_its_cause_and_an_unknown_profile_is_a_config_error() {
    use crate::ssm::credentials::Problem;
    let gave_up = |cause: ConnectError| UpstreamError::GaveUp {
        upstream: "prod".into(),
        cause: Arc::new(cause),
    };
    let creds = |p| ConnectError::Target(TargetError::Api(ApiError::Credentials(p)));
    let unknown = Problem::UnknownProfile {
        profile: "nosuch".into(),
    };
    assert_eq!(code(gave_up(creds(unknown))), codes::CONFIG);
    let none = Problem::NoneFound {
        profile: "default".into(),
        imds: false,
    };
    assert_eq!(code(gave_up(creds(none))), codes::NO_PERM);
    let id = TargetError::UnknownInstance {
        id: "i-0123456789abcdef0".into(),
    };
    assert_eq!(code(gave_up(ConnectError::Target(id))), codes::NO_HOST);
    assert_eq!(
        code(gave_up(ConnectError::Ssh(auth_refused()))),
        codes::NO_PERM
    );
}

#[test]
fn aws_errors_each_have_their_code() {
    let cases = [
        (credentials(), codes::NO_PERM),
        (
            ApiError::TargetNotConnected {
                target: "i-0123456789abcdef0".into(),
            },
            codes::NO_HOST,
        ),
        (ApiError::InvalidDocument("d".into()), codes::UNAVAILABLE),
        (
            ApiError::Transport {
                operation: "StartSession",
                message: "connection refused".into(),
            },
            codes::UNAVAILABLE,
        ),
    ];
    for (e, want) in cases {
        let text = e.to_string();
        assert_eq!(code(e), want, "{text}");
    }
}

#[test]
fn forward_errors_each_have_their_code() {
    use crate::forward::spec::{ForwardSpec, ListenOn};
    let addr = "10.0.0.1:5432".parse().unwrap();
    assert_eq!(code(ListenError::NotLoopback(addr)), codes::USAGE);
    assert_eq!(code(ListenError::AllInterfaces(addr)), codes::USAGE);
    let in_use = ListenError::Bind {
        on: ListenOn::Tcp(addr),
        source: io::Error::from(io::ErrorKind::AddrInUse),
    };
    assert_eq!(code(in_use), codes::OS);
    let bad = ForwardSpec::parse("5432:db.internal", None).unwrap_err();
    assert_eq!(code(bad), codes::ARGS);
}

#[test]
fn errors_of_no_known_type_are_plain_failures() {
    assert_eq!(code(anyhow::anyhow!("something else")), codes::FAILURE);
}

#[test]
fn a_cause_already_quoted_by_its_parent_is_printed_once() {
    let first = not_ready(Some(ConnectError::Ssh(auth_refused())));
    let e = anyhow::Error::from(ServeError::NoUpstream {
        summary: first.to_string(),
        hint: "",
        first,
    });
    let line = render(&e);
    assert_eq!(line.matches("SSH authentication").count(), 1, "{line}");
    let e = anyhow::Error::from(io::Error::other("disk on fire")).context("writing the pid file");
    assert_eq!(render(&e), "writing the pid file: disk on fire");
}

#[test]
fn every_code_is_in_the_help_table() {
    use codes::*;
    for c in [
        OK,
        FAILURE,
        ARGS,
        USAGE,
        HOST_KEY,
        NO_HOST,
        UNAVAILABLE,
        OS,
        IO,
        TEMP,
        PROTOCOL,
        NO_PERM,
        CONFIG,
    ] {
        let row = format!("\n{c:>4}  ");
        assert!(
            HELP.contains(&row),
            "code {c} is not documented in exit::HELP"
        );
    }
    assert_eq!(
        HELP.lines().count(),
        15,
        "a title, one line per code, a note"
    );
}

#[test]
fn the_readme_lists_the_same_exit_codes_as_help() {
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains(HELP),
        "README.md must contain exit::HELP verbatim (in its exit codes section)"
    );
}

#[test]
fn instance_connect_failures_take_the_documented_codes_even_inside_a_pool_error() {
    use crate::instance_connect::key::KeyError;
    use crate::instance_connect::InstanceConnectError as E;
    let (i, u) = (String::from("i-1"), String::from("ec2-user"));
    let denied = E::Denied {
        instance: i.clone(),
        user: u,
        message: "not authorized".into(),
    };
    let not_found = E::NotFound {
        instance: i,
        message: "no such instance".into(),
    };
    assert_eq!(
        code(E::NotEc2 {
            target: "mi-1".into()
        }),
        codes::USAGE
    );
    assert_eq!(
        code(E::Throttled {
            message: "slow down".into()
        }),
        codes::TEMP
    );
    assert_eq!(code(not_found), codes::NO_HOST);
    assert_eq!(
        code(KeyError::NotFound {
            agent: "none".into()
        }),
        codes::USAGE
    );
    let pooled = not_ready(Some(ConnectError::InstanceConnect(denied)));
    assert_eq!(code(pooled), codes::NO_PERM);
}
