use std::process::ExitCode;

use clap::Parser;
use session_proxy::{cli, exit};

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_tracing(&args);
    // `stdio` is one byte stream: a single-threaded runtime avoids cross-thread wake-ups on
    // every message (measured: much less CPU at the agent's 1 ms pacing). Servers use all cores.
    let builder = if args.command.is_single_stream() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let rt = match { builder }.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("session-proxy: cannot start the async runtime: {e}");
            return ExitCode::from(exit::codes::FAILURE);
        }
    };
    let code = match rt.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) => exit::report(&e),
    };
    // A blocked stdin read sits on a blocking thread; do not wait for it at exit.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}
