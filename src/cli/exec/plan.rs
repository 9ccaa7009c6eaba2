//! Which session `exec` starts and how it reads the result, from the flags alone (no I/O):
//! the document, the `command` parameter, how stdin goes and where the status comes from.

use crate::exec::marker::{LineEnd, Token};
use crate::exec::wrap;
use crate::ssm::api::SessionRequest;

/// AWS's NonInteractiveCommands document: merged output, no status (§12).
pub(super) const NON_INTERACTIVE: &str = "AWS-StartNonInteractiveCommand";
/// AWS's InteractiveCommands document: `sh -c <command>` in a pty.
pub(super) const INTERACTIVE: &str = "AWS-StartInteractiveCommand";

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub(super) struct Request {
    pub(super) words: Vec<String>,
    /// A separate-output document (flag, else config); not used with `-t`/`-i`.
    pub(super) document: Option<String>,
    pub(super) raw: bool,
    pub(super) tty: bool,
    pub(super) stdin: bool,
    /// False when DescribeInstanceInformation says the target is not Linux.
    pub(super) posix: bool,
    /// The local terminal's (columns, rows) for `-t`.
    pub(super) size: Option<(u16, u16)>,
}

/// How stdin reaches the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stdin {
    None,
    Raw,
    Framed,
}

/// Where the exit status comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// The ExitCode payload (separate-output document).
    Payload,
    /// The end marker, with lines ending so.
    Marker(LineEnd),
    /// Nowhere (`--raw`, a non-POSIX target).
    Unknown,
}

/// The session to start and how to read it.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) document: String,
    pub(super) command: String,
    pub(super) stdin: Stdin,
    pub(super) status: Status,
    /// stdout and stderr arrive as one stream.
    pub(super) merged: bool,
    pub(super) token: Token,
}

impl Plan {
    pub(super) fn new(r: &Request) -> Self {
        let token = Token::random();
        let user = wrap::user_command(&r.words);
        let wrapped = !r.raw && r.posix;
        let (document, command, stdin, status) = if r.stdin {
            let cmd = wrap::stdin(&user, &token);
            let st = Status::Marker(LineEnd::Lf);
            (INTERACTIVE.to_owned(), cmd, Stdin::Framed, st)
        } else if r.tty && wrapped {
            let cmd = wrap::tty(&user, &token, r.size);
            let st = Status::Marker(LineEnd::CrLf);
            (INTERACTIVE.to_owned(), cmd, Stdin::Raw, st)
        } else if r.tty {
            (INTERACTIVE.to_owned(), user, Stdin::Raw, Status::Unknown)
        } else if let Some(doc) = &r.document {
            let cmd = if wrapped { wrap::separate(&user) } else { user };
            (doc.clone(), cmd, Stdin::None, Status::Payload)
        } else if wrapped {
            let cmd = wrap::merged(&user, &token);
            let st = Status::Marker(LineEnd::Lf);
            (NON_INTERACTIVE.to_owned(), cmd, Stdin::None, st)
        } else {
            (
                NON_INTERACTIVE.to_owned(),
                user,
                Stdin::None,
                Status::Unknown,
            )
        };
        let merged = status != Status::Payload;
        Self {
            document,
            command,
            stdin,
            status,
            merged,
            token,
        }
    }

    pub(super) fn request(&self, instance: &str) -> SessionRequest {
        SessionRequest {
            target: instance.to_owned(),
            document: self.document.clone(),
            parameters: vec![("command".to_owned(), self.command.clone())],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(f: impl FnOnce(&mut Request)) -> Plan {
        let mut r = Request {
            words: vec!["echo".into(), "hi".into()],
            posix: true,
            ..Request::default()
        };
        f(&mut r);
        Plan::new(&r)
    }

    #[test]
    fn each_mode_picks_its_document_stdin_and_status_source() {
        let p = req(|_| {});
        assert_eq!(
            (p.document.as_str(), p.stdin, p.status, p.merged),
            (
                NON_INTERACTIVE,
                Stdin::None,
                Status::Marker(LineEnd::Lf),
                true
            )
        );
        assert!(p.command.starts_with("sh -c ") && p.command.contains(p.token.as_str()));
        let p = req(|r| r.document = Some("SessionProxy-Exec".into()));
        assert_eq!((p.status, p.merged), (Status::Payload, false));
        assert_eq!(p.command, "sh -c 'echo hi'");
        let p = req(|r| r.raw = true);
        assert_eq!((p.command.as_str(), p.status), ("echo hi", Status::Unknown));
        let p = req(|r| r.posix = false);
        assert_eq!((p.command.as_str(), p.status), ("echo hi", Status::Unknown));
        let p = req(|r| r.tty = true);
        assert_eq!(
            (p.document.as_str(), p.stdin, p.status),
            (INTERACTIVE, Stdin::Raw, Status::Marker(LineEnd::CrLf))
        );
        let p = req(|r| r.stdin = true);
        assert_eq!((p.document.as_str(), p.stdin), (INTERACTIVE, Stdin::Framed));
        assert!(p.command.starts_with("stty raw -echo"));
        let r = p.request("i-0123456789abcdef0");
        assert_eq!(
            r.parameters,
            vec![("command".to_owned(), p.command.clone())]
        );
    }
}
