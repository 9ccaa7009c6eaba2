//! The demo instance's SSH server, built on russh's server side so the demo needs no
//! `openssh-server`: public-key auth for exactly one key, `direct-tcpip` channels dialled from
//! this process (what a bastion's sshd does for `ssh -W` and SOCKS pools), session channels
//! whose `exec`/`shell` print a greeting and exit 0 so `ssh demo-bastion` shows something, and
//! the `sftp` subsystem ([`demo_sftp`](super::demo_sftp)) so `scp` and `sftp` work; any other
//! subsystem is refused at once, so its client fails instead of waiting.
//!
//! A failed dial is refused as "connect failed" (russh sends the reason code but no
//! description, so clients see it as unreachable); the real dial error is logged here.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure, MethodKind, MethodSet};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::demo_sftp::{DemoSftp, EndOnError, Jail};
use super::instance_connect::PushedKeys;

/// What every `exec` (other than `echo …`) and every shell prints.
pub const BANNER: &str = "hello from the session-proxy demo instance";

/// How long a `direct-tcpip` dial may take before the channel open is refused.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Server settings: only public-key auth, no delay for the "none" probe OpenSSH sends first,
/// and a short rejection delay (a loopback demo needs no timing-attack padding).
fn server_config(host_key: PrivateKey) -> russh::server::Config {
    russh::server::Config {
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_millis(100),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        inactivity_timeout: None,
        nodelay: true,
        ..russh::server::Config::default()
    }
}

/// A running demo SSH server on loopback.
pub struct SshServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl SshServer {
    /// Serves on `listener`, accepting only `client_key`, presenting `host_key`; sftp serves
    /// the files under `sftp_root`.
    pub fn start(
        listener: TcpListener,
        host_key: PrivateKey,
        client_key: PublicKey,
        sftp_root: PathBuf,
        pushed: (PushedKeys, String),
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let config = Arc::new(server_config(host_key));
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = async { let _ = stopped.wait_for(|s| *s).await; } => break,
                    acc = listener.accept() => match acc {
                        Ok((stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let handler = DemoHandler {
                                client_key: client_key.clone(),
                                pushed: pushed.clone(),
                                pty: HashSet::new(),
                                sessions: HashMap::new(),
                                sftp: HashSet::new(),
                                jail: Jail::new(sftp_root.clone()),
                            };
                            let config = config.clone();
                            tokio::spawn(async move {
                                match russh::server::run_stream(config, stream, handler).await {
                                    Ok(running) => {
                                        if let Err(e) = running.await {
                                            tracing::debug!("demo sshd: session ended: {e}");
                                        }
                                    }
                                    Err(e) => tracing::debug!("demo sshd: handshake failed: {e}"),
                                }
                            });
                        }
                        Err(e) => {
                            tracing::warn!("demo sshd: accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        });
        Ok(Self { addr, stop, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting; connections in progress end with the process (or their clients).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

struct DemoHandler {
    client_key: PublicKey,
    /// Keys pushed with EC2 Instance Connect, and this instance's id: like a real instance's
    /// `AuthorizedKeysCommand`, they are accepted for their 60 s.
    pushed: (PushedKeys, String),
    /// Session channels that asked for a terminal, which needs `\r\n` line ends.
    pty: HashSet<ChannelId>,
    /// Open session channels, kept until they ask for a subsystem (or close).
    sessions: HashMap<ChannelId, Channel<Msg>>,
    /// Session channels running the sftp subsystem.
    sftp: HashSet<ChannelId>,
    jail: Jail,
}

impl DemoHandler {
    fn verdict(&self, user: &str, key: &PublicKey) -> Auth {
        if key.key_data() == self.client_key.key_data() || self.pushed_for(user, key) {
            Auth::Accept
        } else {
            tracing::info!("demo sshd: refused an unknown key for {user}");
            Auth::reject()
        }
    }

    fn pushed_for(&self, user: &str, key: &PublicKey) -> bool {
        let (keys, instance) = &self.pushed;
        let now = std::time::Instant::now();
        keys.active(instance, user, now)
            .iter()
            .any(|line| PublicKey::from_openssh(line).is_ok_and(|k| k.key_data() == key.key_data()))
    }

    /// Writes `text` as the channel's whole output, then exit status 0, EOF and close.
    fn answer(
        &self,
        channel: ChannelId,
        text: &str,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let mut out = text.to_owned();
        if self.pty.contains(&channel) {
            out = out.replace('\n', "\r\n");
        }
        session.channel_success(channel)?;
        session.data(channel, out.into_bytes())?;
        session.exit_status_request(channel, 0)?;
        session.eof(channel)?;
        session.close(channel)
    }
}

/// What `exec` prints: `echo ARGS` echoes ARGS (so scripts can check the round trip), anything
/// else gets the banner.
pub fn exec_output(command: &str) -> String {
    let c = command.trim();
    match c.strip_prefix("echo") {
        Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
            format!("{}\n", rest.trim())
        }
        _ => format!("{BANNER}\n"),
    }
}

impl russh::server::Handler for DemoHandler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.verdict(user, offer.public_key))
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.verdict(user, key.public_key))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.sessions.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let open = self.sessions.remove(&channel);
        match (name, open) {
            ("sftp", Some(ch)) => {
                session.channel_success(channel)?;
                self.sftp.insert(channel);
                let handler = DemoSftp::new(self.jail.clone());
                russh_sftp::server::run(EndOnError::new(ch.into_stream()), handler).await;
                Ok(())
            }
            _ => {
                tracing::info!("demo sshd: refused the {name:?} subsystem (only sftp is served)");
                session.channel_failure(channel)
            }
        }
    }

    /// The sftp client is done: end the channel with status 0, which `scp` checks.
    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.sftp.remove(&channel) {
            session.exit_status_request(channel, 0)?;
            session.eof(channel)?;
            session.close(channel)?;
        }
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Ok(port) = u16::try_from(port) else {
            tracing::info!("demo sshd: refused direct-tcpip to {host}:{port} (bad port)");
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return Ok(());
        };
        // Answered from a task, so a slow dial holds up nothing else on the connection.
        let host = host.to_owned();
        tokio::spawn(async move {
            let dial = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect((&*host, port)));
            let mut tcp = match dial.await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!("demo sshd: direct-tcpip to {host}:{port} failed: {e}");
                    return reply.reject(ChannelOpenFailure::ConnectFailed).await;
                }
                Err(_) => {
                    tracing::info!("demo sshd: direct-tcpip to {host}:{port} timed out");
                    return reply.reject(ChannelOpenFailure::ConnectFailed).await;
                }
            };
            let _ = tcp.set_nodelay(true);
            reply.accept().await;
            let mut ch = channel.into_stream();
            let _ = tokio::io::copy_bidirectional(&mut ch, &mut tcp).await;
        });
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.pty.insert(channel);
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let text = format!(
            "{BANNER}\n(there is no shell here; try `ssh … demo-bastion echo hi`, or curl the demo page through the SOCKS proxy)\n"
        );
        self.answer(channel, &text, session)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let text = exec_output(&String::from_utf8_lossy(data));
        self.answer(channel, &text, session)
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.pty.remove(&channel);
        self.sessions.remove(&channel);
        self.sftp.remove(&channel);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_echoes_echo_arguments_and_greets_otherwise() {
        assert_eq!(exec_output("echo hi there"), "hi there\n");
        assert_eq!(exec_output("echo"), "\n");
        assert_eq!(exec_output("echoes"), format!("{BANNER}\n"));
        assert_eq!(exec_output("uptime"), format!("{BANNER}\n"));
    }
}
