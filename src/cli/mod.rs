//! Command-line interface: one clap definition (also the source of completions and man pages),
//! one module per subcommand with `run(&GlobalArgs, Args) -> anyhow::Result<ExitCode>`.

pub mod alias;
pub mod ctl;
pub mod demo;
pub mod doctor;
pub mod exec;
pub mod forward;
pub mod generate;
pub mod instances;
pub mod load;
pub mod manual;
pub mod route;
pub mod serve;
pub mod shell;
pub mod sim;
pub mod ssh_config;

pub mod stdio;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

/// SSH ProxyCommand and SOCKS5 multiplexer over AWS Systems Manager Session Manager.
#[derive(Debug, Parser)]
#[command(
    name = "session-proxy",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = crate::exit::HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Heading of the options every command takes: `--help` lists a command's own options first.
const GLOBAL: &str = "Global options";

/// Options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// More logging on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = GLOBAL)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    pub quiet: bool,
    /// Configuration file (default: ./config.yaml, then the XDG config dir).
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,
    /// Control socket of the master (default: the config's control_socket, else
    /// $XDG_RUNTIME_DIR/session-proxy/control.sock).
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL)]
    pub control_socket: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bridge stdin/stdout to a port on an instance (use as OpenSSH ProxyCommand).
    Stdio(stdio::StdioArgs),
    /// Open an interactive shell on an instance (like `aws ssm start-session`).
    Shell(shell::ShellArgs),
    /// Forward local ports to hosts the instance reaches (`ssh -L` over SSM port sessions).
    Forward(forward::ForwardArgs),
    /// Run a local simulator of the AWS side of Session Manager (no AWS account needed).
    Sim(sim::SimArgs),
    /// SOCKS5 (and HTTP CONNECT) proxy routing destinations to SSH-over-SSM bastion pools, direct, or reject.
    Serve(serve::ServeArgs),
    /// Run a command on an instance: its output on stdout, its exit status as ours.
    Exec(exec::ExecArgs),
    /// Try it without AWS: simulator + demo instance + SOCKS5 proxy in one process.
    Demo(demo::DemoArgs),
    /// Show the running master's upstreams, forwards, connections and traffic (exits 68 while an
    /// upstream is down).
    Status(ctl::StatusArgs),
    /// Bring an upstream of the running master up and wait for a ready connection, or start a
    /// forward again.
    Connect(ctl::UpstreamArgs),
    /// Close an upstream's SSM sessions (its destinations get "host unreachable"), or stop a
    /// forward (its listener and sessions).
    Disconnect(ctl::UpstreamArgs),
    /// Make the running master re-read its config and apply what changed.
    Reload,
    /// Stop the running master (drain, terminate every SSM session).
    Stop,
    /// Show which route, upstream or default a destination takes (asks the running master).
    Route(route::RouteArgs),
    /// Print an ssh_config snippet (or write it with --write) so `ssh i-…` and `ssh <alias>` go
    /// through Session Manager.
    SshConfig(ssh_config::SshConfigArgs),
    /// List the managed instances Session Manager reaches, with the config aliases and
    /// upstreams that point at each.
    Instances(instances::InstancesArgs),
    /// Check config, credentials, region, endpoint, permissions, a target, the master and ssh,
    /// naming the fix for each failure.
    Doctor(doctor::DoctorArgs),
    /// Write shell completions and man pages.
    Generate(generate::GenerateArgs),
    /// Print the completion script for a shell (`source <(session-proxy completions bash)`).
    Completions(generate::CompletionsArgs),
}

impl Command {
    /// Commands that move one stream and need no thread pool.
    pub fn is_single_stream(&self) -> bool {
        matches!(self, Self::Stdio(_) | Self::Exec(_))
    }

    /// The log filter when neither flags, environment nor config set one: `serve` is a daemon
    /// meant to be watched, so its own event lines show; other commands speak only of trouble.
    pub fn default_log_filter(&self) -> &'static str {
        match self {
            Self::Serve(_) | Self::Forward(_) => crate::logging::SERVE_DEFAULT_FILTER,
            _ => crate::logging::DEFAULT_FILTER,
        }
    }
}

/// The clap command, for generators and tests.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Stdio(a) => stdio::run(&cli.global, a).await,
        Command::Shell(a) => shell::run(&cli.global, a).await,
        Command::Forward(a) => forward::run(&cli.global, a).await,
        Command::Sim(a) => sim::run(&cli.global, a).await,
        Command::Serve(a) => serve::run(&cli.global, a).await,
        Command::Demo(a) => demo::run(&cli.global, a).await,
        Command::Exec(a) => exec::run(&cli.global, a).await,
        Command::Status(a) => ctl::status(&cli.global, a).await,
        Command::Connect(a) => ctl::connect(&cli.global, a).await,
        Command::Disconnect(a) => ctl::disconnect(&cli.global, a).await,
        Command::Reload => ctl::reload(&cli.global).await,
        Command::Stop => ctl::stop(&cli.global).await,
        Command::Route(a) => route::run(&cli.global, a).await,
        Command::SshConfig(a) => ssh_config::run(&cli.global, a),
        Command::Instances(a) => instances::run(&cli.global, a).await,
        Command::Doctor(a) => doctor::run(&cli.global, a).await,
        Command::Generate(a) => generate::run(&cli.global, a),
        Command::Completions(a) => generate::completions(&cli.global, a),
    }
}

/// Sets up stderr logging (the library never writes to stdout): `-v`/`-q`, else
/// `SESSION_PROXY_LOG`, else the command's default; `serve` adds the config's `log_level` once
/// it has read it.
pub fn init_tracing(cli: &Cli) {
    crate::logging::init(
        cli.global.verbose,
        cli.global.quiet,
        cli.command.default_log_filter(),
    );
}
