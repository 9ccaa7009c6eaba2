//! Log set-up: one stderr subscriber, a filter chosen by precedence, and a cap that no filter
//! can lift.
//!
//! The filter comes from the first of these that is given (and parses):
//! 1. `-v`/`-vv`/`-vvv` or `-q` on the command line (`session_proxy` at info/debug/trace and
//!    everything else at warn; `-q`: errors only);
//! 2. `SESSION_PROXY_LOG`, a tracing filter such as `debug` or `session_proxy=trace,russh=info`;
//! 3. the config's `log_level:` (same syntax), which `serve` applies at start and again on
//!    `reload`, live;
//! 4. the command's default: `warn`, except for `serve`, whose own lines are at `info`
//!    ([`SERVE_DEFAULT_FILTER`]) so that a master is watchable out of the box: one line per SOCKS
//!    connection, reject, upstream state change, resume, reload, connect and disconnect.
//!    Libraries stay at `warn` there too.
//!
//! Colour (ANSI escapes) only when stderr is a terminal and `NO_COLOR` is unset: a detached
//! master's stderr is its log file, which must stay plain text.
//!
//! The filter sits behind a reload layer so that step 3 can arrive after start-up (the config is
//! read by the command, after the subscriber exists) and change on `reload`.
//!
//! Whatever the filter, [`SECRET_CAPS`] bound the targets that would print secrets at their most
//! verbose levels. That cap is a second, separate filter: a user directive more specific than a
//! cap (`aws_smithy_runtime::client::orchestrator=trace`) still cannot lift it, which a directive
//! merged into the user's filter could not guarantee.

use std::sync::OnceLock;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, Registry};

/// The environment variable holding a filter (step 2).
pub const ENV_VAR: &str = "SESSION_PROXY_LOG";
/// The filter when nothing else is given (step 4).
pub const DEFAULT_FILTER: &str = "warn";
/// `serve`'s filter when nothing else is given: its own event lines (connections, rejects,
/// upstream state changes, resumes, reloads) show; library chatter does not.
pub const SERVE_DEFAULT_FILTER: &str = "session_proxy=info,warn";

/// The most each secret-bearing target may log, whatever the filter says. Prefixes match
/// whole families (`aws_smithy` covers `aws_smithy_runtime`, `aws_smithy_http_client`, ...).
#[rustfmt::skip]
pub const SECRET_CAPS: &[(&str, LevelFilter)] = &[
    // trace: every request and response with its body (StartSession's TokenValue, the
    // ResumeSession token), headers included.
    ("aws_smithy",        LevelFilter::DEBUG),
    // trace: the request being signed and the string to sign (x-amz-security-token).
    ("aws_sigv4",         LevelFilter::DEBUG),
    // trace: credential_process command lines "unredacted"; profile and credential chains.
    ("aws_config",        LevelFilter::DEBUG),
    ("aws_runtime",       LevelFilter::DEBUG),
    // trace: HTTP/1 heads and connection internals; h2 logs every frame at debug.
    ("hyper",             LevelFilter::DEBUG),
    ("h2",                LevelFilter::INFO),
    // These log through the `log` crate, which this subscriber does not collect today; the
    // caps hold should a `log` bridge be added. tungstenite's trace prints every WebSocket
    // frame (the OpenDataChannel frame carries the token); rustls its handshake; russh its
    // packets.
    ("tungstenite",       LevelFilter::DEBUG),
    ("tokio_tungstenite", LevelFilter::DEBUG),
    ("rustls",            LevelFilter::DEBUG),
    ("russh",             LevelFilter::DEBUG),
];

/// Where the filter in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flags,
    Env,
    Config,
    Default,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Self::Flags => "-v/-q",
            Self::Env => ENV_VAR,
            Self::Config => "the config's log_level",
            Self::Default => "the default",
        }
    }
}

/// A filter that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin} {value:?} is not a log filter ({reason}); write e.g. info or session_proxy=debug,russh=info")]
pub struct BadFilter {
    pub origin: &'static str,
    pub value: String,
    pub reason: String,
}

/// The filter to use, where it came from, and any candidate skipped because it did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub source: Source,
    pub filter: String,
    pub skipped: Vec<BadFilter>,
}

/// `-v`/`-q` as a filter; `None` when neither was given.
pub fn flag_filter(verbose: u8, quiet: bool) -> Option<&'static str> {
    match (quiet, verbose) {
        (true, _) => Some("error"),
        (false, 0) => None,
        (false, 1) => Some("session_proxy=info,warn"),
        (false, 2) => Some("session_proxy=debug,warn"),
        (false, _) => Some("session_proxy=trace,warn"),
    }
}

fn parse(origin: &'static str, value: &str) -> Result<EnvFilter, BadFilter> {
    EnvFilter::builder().parse(value).map_err(|e| BadFilter {
        origin,
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

/// Picks the filter by precedence: flags, environment, config, the command's `default`. Empty
/// values count as not given; one that does not parse is skipped (and reported in
/// [`Choice::skipped`]).
pub fn choose(
    flags: Option<&str>,
    env: Option<&str>,
    config: Option<&str>,
    default: &str,
) -> Choice {
    let mut skipped = Vec::new();
    let candidates = [
        (Source::Flags, flags),
        (Source::Env, env),
        (Source::Config, config),
    ];
    for (source, value) in candidates {
        let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            continue;
        };
        match parse(source.describe(), v) {
            Ok(_) => {
                return Choice {
                    source,
                    filter: v.to_owned(),
                    skipped,
                }
            }
            Err(e) => skipped.push(e),
        }
    }
    Choice {
        source: Source::Default,
        filter: default.to_owned(),
        skipped,
    }
}

/// Whether to colour the log: only for a terminal, and never under `NO_COLOR` (any non-empty
/// value, as no-color.org asks).
fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The cap as a filter: everything passes except what [`SECRET_CAPS`] bounds.
fn secret_cap() -> Targets {
    SECRET_CAPS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |t, (target, level)| t.with_target(*target, *level),
    )
}

/// The running subscriber's filter handle, the sources that outrank the config, and the
/// command's default.
struct Live {
    handle: reload::Handle<EnvFilter, Registry>,
    flags: Option<&'static str>,
    env: Option<String>,
    default: &'static str,
}

static LIVE: OnceLock<Live> = OnceLock::new();

/// Installs the stderr subscriber with the filter from `-v`/`-q` or `SESSION_PROXY_LOG`, else
/// the command's `default` (the config comes later, through [`apply_config`]). A second call
/// does nothing.
pub fn init(verbose: u8, quiet: bool, default: &'static str) {
    use std::io::IsTerminal;
    let flags = flag_filter(verbose, quiet);
    let env = std::env::var(ENV_VAR).ok();
    let choice = choose(flags, env.as_deref(), None, default);
    let filter = parse("", &choice.filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(secret_cap())
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_ansi(ansi),
        )
        .try_init();
    if installed.is_err() {
        return;
    }
    for bad in &choice.skipped {
        tracing::warn!("{bad}");
    }
    let _ = LIVE.set(Live {
        handle,
        flags,
        env,
        default,
    });
}

/// What [`apply_config`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The filter in force is now this one.
    Set { filter: String, source: Source },
    /// `-v`/`-q` or `SESSION_PROXY_LOG` outrank the config; nothing changed.
    Outranked(Source),
    /// No subscriber of ours is installed (a test harness, a library user).
    NotInstalled,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Set { filter, source } => {
                write!(f, "log level now {filter} (from {})", source.describe())
            }
            Self::Outranked(s) => write!(
                f,
                "log level unchanged: {} sets it for this process; start without it to use log_level",
                s.describe()
            ),
            Self::NotInstalled => f.write_str("log level unchanged: logging is not ours to set"),
        }
    }
}

/// Applies the config's `log_level` (`None`: the default) unless a flag or the environment
/// chose the filter. A value that does not parse changes nothing and is the error.
pub fn apply_config(log_level: Option<&str>) -> Result<Applied, BadFilter> {
    let Some(live) = LIVE.get() else {
        return Ok(Applied::NotInstalled);
    };
    if let Some(v) = log_level.map(str::trim).filter(|v| !v.is_empty()) {
        parse("log_level", v)?;
    }
    let choice = choose(live.flags, live.env.as_deref(), log_level, live.default);
    if matches!(choice.source, Source::Flags | Source::Env) {
        return Ok(Applied::Outranked(choice.source));
    }
    let filter = parse("", &choice.filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    if live.handle.reload(filter).is_err() {
        return Ok(Applied::NotInstalled);
    }
    Ok(Applied::Set {
        filter: choice.filter,
        source: choice.source,
    })
}

/// [`apply_config`] for a config just loaded or reloaded, as one line for the log and for
/// `reload`'s answer.
pub fn apply_config_line(log_level: Option<&str>) -> String {
    match apply_config(log_level) {
        Ok(applied) => applied.to_string(),
        Err(e) => format!("{e}; keeping the log level in force"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tracing::Level;

    use super::*;

    #[test]
    fn flags_beat_the_environment_which_beats_the_config() {
        let pick = |f, e, c| {
            let c = choose(f, e, c, DEFAULT_FILTER);
            (c.source, c.filter)
        };
        let s = |x: &str| x.to_owned();
        assert_eq!(
            pick(Some("error"), Some("debug"), Some("info")),
            (Source::Flags, s("error"))
        );
        assert_eq!(
            pick(None, Some("debug"), Some("info")),
            (Source::Env, s("debug"))
        );
        assert_eq!(pick(None, None, Some("info")), (Source::Config, s("info")));
        assert_eq!(pick(None, None, None), (Source::Default, s("warn")));
        // Empty counts as not given.
        assert_eq!(
            pick(None, Some(""), Some(" ")),
            (Source::Default, s("warn"))
        );
    }

    #[test]
    fn a_filter_that_does_not_parse_is_skipped_and_reported() {
        let c = choose(None, Some("debug=please=now"), Some("info"), DEFAULT_FILTER);
        assert_eq!((c.source, c.filter.as_str()), (Source::Config, "info"));
        assert_eq!(c.skipped.len(), 1);
        let msg = c.skipped.first().unwrap().to_string();
        assert!(
            msg.starts_with("SESSION_PROXY_LOG \"debug=please=now\""),
            "{msg}"
        );
        assert!(msg.contains("write e.g. info"), "{msg}");
    }

    #[test]
    fn with_nothing_given_serve_logs_its_own_info_lines_and_libraries_stay_at_warn() {
        let c = choose(None, None, None, SERVE_DEFAULT_FILTER);
        assert_eq!(
            (c.source, c.filter.as_str()),
            (Source::Default, SERVE_DEFAULT_FILTER)
        );
        let f = parse("", SERVE_DEFAULT_FILTER).unwrap();
        assert_eq!(f.max_level_hint(), Some(LevelFilter::INFO));
    }

    #[test]
    fn colour_only_on_a_terminal_and_never_under_no_color() {
        use std::ffi::OsStr;
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None), "a log file gets no escape codes");
    }

    #[test]
    fn quiet_means_errors_only_and_each_v_opens_our_crate_further() {
        assert_eq!(flag_filter(0, false), None);
        assert_eq!(flag_filter(3, true), Some("error"));
        assert_eq!(flag_filter(1, false), Some("session_proxy=info,warn"));
        assert_eq!(flag_filter(2, false), Some("session_proxy=debug,warn"));
        assert_eq!(flag_filter(9, false), Some("session_proxy=trace,warn"));
    }

    /// Whether the cap lets an event of `level` from `target` through.
    fn passes(target: &str, level: Level) -> bool {
        secret_cap().would_enable(target, &level)
    }

    #[test]
    fn the_cap_stops_wire_logs_and_nothing_else() {
        let orchestrator = "aws_smithy_runtime::client::orchestrator::http";
        assert!(!passes(orchestrator, Level::TRACE));
        assert!(passes(orchestrator, Level::DEBUG));
        assert!(!passes("aws_sigv4::http_request::sign", Level::TRACE));
        assert!(!passes("h2::codec::framed_write", Level::DEBUG));
        assert!(!passes("hyper_util::client", Level::TRACE));
        assert!(passes("session_proxy::ssm::driver", Level::TRACE));
        assert!(passes("russh", Level::DEBUG));
    }
}
