//! What the simulated agent runs on a session, by the document's session type, as the real
//! agent picks its plugin: a port session ([`AgentPort`], which chooses its own mode at the
//! handshake), a command in a pty ([`ShellLayer`], Standard_Stream and InteractiveCommands), or
//! a command without one ([`ExecLayer`], NonInteractiveCommands).

use std::io;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::exec::ExecLayer;
use super::port::{AgentPort, Plan};
use super::shell::{PtyCommand, ShellLayer};
use super::AgentKnobs;
use crate::sim::registry::Run;
use crate::ssm::channel::SessionInfo;
use crate::ssm::driver::{AppLayer, Choose};

pub(super) enum AgentWork {
    Port(AgentPort),
    Shell(ShellLayer),
    Exec(ExecLayer),
}

impl AgentWork {
    /// The layer for `run`; `written` counts the client bytes its target took.
    pub(super) fn new(
        run: &Run,
        knobs: &AgentKnobs,
        agent_version: &str,
        written: Arc<AtomicU64>,
    ) -> Self {
        let chunk = knobs.chunk.max(1);
        match run {
            Run::Dial(target) => Self::Port(AgentPort::Deciding(Plan {
                target: target.clone(),
                agent_version: agent_version.to_owned(),
                written,
                rate: knobs.write_rate,
            })),
            Run::Shell { profile } => {
                let cmd = PtyCommand::shell(&knobs.shell_command, profile.clone());
                Self::Shell(ShellLayer::new(cmd, chunk, written))
            }
            Run::Interactive { command } => {
                let cmd = PtyCommand::interactive(command);
                Self::Shell(ShellLayer::new(cmd, chunk, written))
            }
            Run::Command(plan) => Self::Exec(ExecLayer::new(plan.clone(), chunk, written)),
        }
    }
}

impl Choose for AgentWork {
    fn choose(&mut self, session: &SessionInfo) {
        if let Self::Port(p) = self {
            p.choose(session);
        }
    }

    fn chosen(&mut self) -> io::Result<&mut dyn AppLayer> {
        match self {
            Self::Port(p) => p.chosen(),
            Self::Shell(s) => Ok(s),
            Self::Exec(e) => Ok(e),
        }
    }
}
