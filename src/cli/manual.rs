//! The man pages: clap_mangen's sections from the one clap definition, plus the sections a man
//! page reader looks for and clap cannot know: EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES and
//! SEE ALSO. The prose lives here, next to nothing else, so the flags still come from clap.

use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;

/// Name of the binary, as pages and completions call it.
const BIN: &str = "session-proxy";

/// Renders the page of `cmd` (the top-level command, or one built subcommand) to roff.
pub fn render(cmd: &clap::Command, pages: &[String]) -> std::io::Result<Vec<u8>> {
    let man = Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut out)?;
    }
    let me = page_name(cmd);
    let sub = if me == BIN { "" } else { cmd.get_name() };
    let mut roff = Roff::new();
    exit_status(&mut roff);
    environment(&mut roff);
    files(&mut roff);
    examples(&mut roff, sub);
    see_also(&mut roff, me, pages);
    roff.to_writer(&mut out)?;
    if cmd.get_version().is_some() {
        man.render_version_section(&mut out)?;
    }
    Ok(once_preamble(&out))
}

/// Each roff writer repeats the two-line apostrophe preamble; a page needs it once, on top.
fn once_preamble(page: &[u8]) -> Vec<u8> {
    const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    let text = String::from_utf8_lossy(page);
    let body = text.replace(PREAMBLE, "");
    format!("{PREAMBLE}{body}").into_bytes()
}

/// The page's name: `session-proxy-serve` for a built subcommand, `session-proxy` on top.
pub fn page_name(cmd: &clap::Command) -> &str {
    cmd.get_display_name().unwrap_or(cmd.get_name())
}

fn section(roff: &mut Roff, title: &str) {
    roff.control("SH", [title]);
}

/// One tagged paragraph: a bold term and its text.
fn item(roff: &mut Roff, term: &str, text: &str) {
    roff.control("TP", []);
    roff.text([bold(term)]);
    roff.text([roman(text)]);
}

fn exit_status(roff: &mut Roff) {
    section(roff, "EXIT STATUS");
    for line in crate::exit::HELP.lines().skip(1) {
        match line.trim_start().split_once("  ") {
            Some((code, text)) if code.parse::<u8>().is_ok() => item(roff, code, text.trim()),
            _ => {
                roff.control("PP", []);
                roff.text([roman(line.trim())]);
            }
        }
    }
}

fn environment(roff: &mut Roff) {
    section(roff, "ENVIRONMENT");
    let vars = [
        ("AWS_PROFILE", "Profile of the AWS shared config to use (like --profile)."),
        ("AWS_REGION, AWS_DEFAULT_REGION", "Region of the SSM API and data channel."),
        (
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN",
            "Credentials, tried before the profile, SSO and the instance metadata service.",
        ),
        ("AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE", "Where the AWS shared config and credentials live."),
        (
            "AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SSM",
            "Send API calls to this endpoint instead of AWS (the simulator prints them).",
        ),
        (
            "SESSION_PROXY_LOG",
            "Log filter (for example debug, or session_proxy=debug); -v and -q win over it, it wins over the config's log_level.",
        ),
        ("NO_COLOR", "Any non-empty value: log lines without colour (they have none anyway when stderr is not a terminal)."),
        ("XDG_CONFIG_HOME", "The user config file is $XDG_CONFIG_HOME/session-proxy/config.yaml."),
        ("XDG_RUNTIME_DIR", "The default control socket is $XDG_RUNTIME_DIR/session-proxy/control.sock."),
        ("XDG_STATE_HOME", "known_hosts, logs and pid files of detached masters live in $XDG_STATE_HOME/session-proxy."),
        ("SSH_AUTH_SOCK", "The ssh-agent used by upstreams with ssh_agent: true."),
    ];
    for (name, text) in vars {
        item(roff, name, text);
    }
}

fn files(roff: &mut Roff) {
    section(roff, "FILES");
    let files = [
        ("./config.yaml", "The config file, if present in the working directory."),
        ("$XDG_CONFIG_HOME/session-proxy/config.yaml", "The user config file (else ~/.config/session-proxy/config.yaml)."),
        ("$XDG_RUNTIME_DIR/session-proxy/control.sock", "The master's control socket, unless the config's control_socket or --control-socket names another."),
        ("$XDG_STATE_HOME/session-proxy/", "known_hosts of the bastions, and each detached master's log and pid file (named after its control socket)."),
    ];
    for (path, text) in files {
        item(roff, path, text);
    }
}

/// Commands and what they show, per subcommand ("" is the top-level page).
fn examples_of(sub: &str) -> &'static [(&'static str, &'static str)] {
    match sub {
        "" | "demo" => &[
            (
                "session-proxy demo",
                "Simulator, demo instance and SOCKS5 proxy in one process; it prints what to try.",
            ),
            (
                "session-proxy status",
                "The running master's upstreams, connections and traffic.",
            ),
        ],
        "stdio" => &[
            (
                "ssh -o ProxyCommand='session-proxy stdio %h -p %p' ec2-user@i-0123456789abcdef0",
                "SSH to an instance through Session Manager.",
            ),
            (
                "Host i-* mi-*\n    ProxyCommand session-proxy stdio %h -p %p",
                "The same, for every instance id, in ~/.ssh/config.",
            ),
        ],
        "serve" => &[
            (
                "session-proxy serve --config ~/.config/session-proxy/config.yaml",
                "Start a master in the background; it returns once the listeners are up.",
            ),
            (
                "curl --socks5-hostname 127.0.0.1:1080 http://10.0.1.20/",
                "Use it from any SOCKS5 client.",
            ),
            (
                "https_proxy=http://127.0.0.1:3128 curl https://10.0.1.20/",
                "The same through an http: listener (HTTP CONNECT), for tools that honour only https_proxy.",
            ),
        ],
        "status" => &[(
            "session-proxy status --json",
            "Machine-readable state of every upstream; like the table, exits 68 while one is down.",
        )],
        "connect" => &[(
            "session-proxy connect prod",
            "Bring upstream prod up now and wait until a connection is ready.",
        )],
        "disconnect" => &[(
            "session-proxy disconnect prod",
            "Close prod's SSM sessions; its destinations get \"host unreachable\".",
        )],
        "reload" => &[(
            "session-proxy reload",
            "Apply an edited config to the running master (SIGHUP does the same).",
        )],
        "stop" => &[(
            "session-proxy stop",
            "Drain streams in flight, end every SSM session, and exit.",
        )],
        "route" => &[(
            "session-proxy route db.internal:5432",
            "Which route, upstream or default this destination takes; the running master answers, naming its config.",
        )],
        "sim" => &[(
            "eval \"$(session-proxy sim --target i-0123456789abcdef0=127.0.0.1:22)\"",
            "Run the simulator in front of a local sshd and point the AWS variables at it.",
        )],
        _ => tool_examples_of(sub),
    }
}

/// Examples of the commands that set things up rather than carry traffic.
fn tool_examples_of(sub: &str) -> &'static [(&'static str, &'static str)] {
    match sub {
        "shell" => &[(
            "session-proxy shell i-0123456789abcdef0",
            "An interactive shell on the instance; the terminal is restored however it ends.",
        )],
        "exec" => &[
            (
                "session-proxy exec web-1 -- systemctl is-active nginx",
                "Run one command; its exit status is session-proxy's.",
            ),
            (
                "session-proxy exec --install-document",
                "Create the separate-output session document once per account and region.",
            ),
        ],
        "ssh-config" => &[
            (
                "session-proxy ssh-config --write ~/.ssh/config.d/session-proxy",
                "Write the Host blocks to their own file; it prints the Include line for ~/.ssh/config.",
            ),
            (
                "ssh ec2-user@i-0123456789abcdef0",
                "Then plain ssh (scp, sftp, rsync, git) reaches instances and aliases.",
            ),
        ],
        "generate" => &[(
            "session-proxy generate --man /usr/local/share/man/man1",
            "Write the man pages (and completions) for installation.",
        )],
        "completions" => &[(
            "source <(session-proxy completions bash)",
            "Completions for the running bash.",
        )],
        _ => &[],
    }
}

fn examples(roff: &mut Roff, sub: &str) {
    let list = examples_of(sub);
    if list.is_empty() {
        return;
    }
    section(roff, "EXAMPLES");
    for (command, text) in list {
        roff.control("PP", []);
        roff.text([roman(*text)]);
        roff.control("RS", []);
        roff.control("nf", []);
        roff.text([bold(*command)]);
        roff.control("fi", []);
        roff.control("RE", []);
    }
}

fn see_also(roff: &mut Roff, me: &str, pages: &[String]) {
    section(roff, "SEE ALSO");
    let mut refs: Vec<Inline> = Vec::new();
    let others = pages
        .iter()
        .filter(|p| p.as_str() != me)
        .map(String::as_str);
    for (i, page) in others.chain(["ssh_config", "aws"]).enumerate() {
        if i > 0 {
            refs.push(roman(", "));
        }
        refs.push(bold(page));
        // ssh_config(5) is a file format; every other page is a command in section 1.
        refs.push(roman(if page == "ssh_config" { "(5)" } else { "(1)" }));
    }
    roff.text(refs);
    roff.control("PP", []);
    roff.text([
        roman("README and config.example.yaml in the source tree; the "),
        italic("--help"),
        roman(" of each command."),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(sub: Option<&str>) -> String {
        let mut cmd = super::super::command().disable_help_subcommand(true);
        cmd.build();
        let names = vec![BIN.to_owned(), format!("{BIN}-serve")];
        let target = match sub {
            Some(s) => cmd.find_subcommand(s).unwrap().clone(),
            None => cmd,
        };
        String::from_utf8(render(&target, &names).unwrap()).unwrap()
    }

    #[test]
    fn every_page_has_the_sections_a_reader_looks_for() {
        for sub in [None, Some("serve"), Some("stdio"), Some("stop")] {
            let text = page(sub);
            for s in [
                "EXIT STATUS",
                "ENVIRONMENT",
                "FILES",
                "EXAMPLES",
                "SEE ALSO",
            ] {
                assert!(
                    text.contains(&format!(".SH \"{s}\"")) || text.contains(&format!(".SH {s}")),
                    "{sub:?} lacks {s}"
                );
            }
            assert!(text.contains("AWS_ENDPOINT_URL_SSM"), "{sub:?}");
            assert!(text.contains("XDG_RUNTIME_DIR"), "{sub:?}");
        }
    }

    #[test]
    fn exit_status_lists_every_documented_code() {
        let text = page(None);
        for code in ["64", "68", "69", "76", "77", "78"] {
            assert!(
                text.contains(&format!("\\fB{code}\\fR")),
                "code {code} missing"
            );
        }
    }

    #[test]
    fn see_also_names_the_other_pages_not_itself() {
        let text = page(Some("serve"));
        let see = text.split("SEE ALSO").nth(1).unwrap();
        assert!(see.contains("session\\-proxy\\fR(1)"), "{see}");
        assert!(!see.contains("session\\-proxy\\-serve\\fR"), "{see}");
    }
}
