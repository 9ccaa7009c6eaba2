//! Which public key to push: the user's own (`stdio --send-key`), found the way OpenSSH would
//! offer it, or a fresh in-memory one (`instance_connect: true` upstreams).

use std::path::{Path, PathBuf};

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};
use zeroize::Zeroize;

/// The public keys `--send-key` tries under `~/.ssh`, in OpenSSH's order of preference.
pub const DEFAULT_PUBLIC_KEYS: [&str; 3] = ["id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"];

/// Why no public key could be found or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the public key {}: {source}; pass the .pub file of the key ssh uses (--send-key=PATH)", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not an OpenSSH public key ({message}); pass a .pub file such as ~/.ssh/id_ed25519.pub", .path.display())]
    Malformed { path: PathBuf, message: String },
    #[error("no public key to push: none of ~/.ssh/{{{}}} exists and ssh-agent has no keys ({agent}); create one with `ssh-keygen -t ed25519` or pass --send-key=PATH", DEFAULT_PUBLIC_KEYS.join(","))]
    NotFound { agent: String },
}

/// A public key to push, with where it came from (for the log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundKey {
    /// One OpenSSH line, `<algorithm> <base64>` (comment dropped: it is not needed and may
    /// name the user's machine).
    pub openssh: String,
    pub source: String,
}

/// The key `--send-key` pushes: `explicit` if given, else the first of
/// [`DEFAULT_PUBLIC_KEYS`] under `home/.ssh`, else the first key ssh-agent holds.
pub async fn user_public_key(
    explicit: Option<&Path>,
    home: Option<&Path>,
) -> Result<FoundKey, KeyError> {
    if let Some(path) = explicit {
        return read_public_key(path);
    }
    if let Some(home) = home {
        for name in DEFAULT_PUBLIC_KEYS {
            let path = home.join(".ssh").join(name);
            if path.exists() {
                return read_public_key(&path);
            }
        }
    }
    let agent = match agent_key().await {
        Ok(key) => return Ok(key),
        Err(why) => why,
    };
    Err(KeyError::NotFound { agent })
}

fn read_public_key(path: &Path) -> Result<FoundKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let malformed = |message: String| KeyError::Malformed {
        path: path.to_owned(),
        message,
    };
    let key = PublicKey::from_openssh(text.trim()).map_err(|e| malformed(e.to_string()))?;
    Ok(FoundKey {
        openssh: openssh_line(&key).map_err(malformed)?,
        source: path.display().to_string(),
    })
}

/// The first key of the agent at `SSH_AUTH_SOCK`; `Err` says why there is none.
async fn agent_key() -> Result<FoundKey, String> {
    let mut agent = russh::keys::agent::client::AgentClient::connect_env()
        .await
        .map_err(|e| format!("unavailable: {e}"))?;
    let identities = agent
        .request_identities()
        .await
        .map_err(|e| format!("listing keys failed: {e}"))?;
    let first = identities.first().ok_or("none loaded")?;
    let key = first.public_key().into_owned();
    Ok(FoundKey {
        openssh: openssh_line(&key)?,
        source: format!("ssh-agent ({})", first.comment()),
    })
}

/// `key` as `<algorithm> <base64>`, without its comment.
pub fn openssh_line(key: &PublicKey) -> Result<String, String> {
    let mut bare = key.clone();
    bare.set_comment("");
    bare.to_openssh()
        .map(|s| s.trim().to_owned())
        .map_err(|e| e.to_string())
}

/// A fresh ed25519 key that lives only in memory. Seeded from the OS here because ssh-key's
/// own `random` wants a newer `rand_core` than this crate's `rand`; the seed is wiped after.
pub fn ephemeral() -> PrivateKey {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    seed.zeroize();
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_default_key_under_home_is_pushed_without_its_comment() {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir(&ssh).unwrap();
        let ecdsa = ephemeral().public_key().to_openssh().unwrap();
        std::fs::write(ssh.join("id_ecdsa.pub"), format!("{ecdsa} me@laptop\n")).unwrap();
        let found = user_public_key(None, Some(home.path())).await.unwrap();
        assert_eq!(found.openssh, ecdsa.trim());
        assert!(found.source.ends_with("id_ecdsa.pub"), "{}", found.source);
        assert!(!found.openssh.contains("laptop"));
    }

    #[test]
    fn ephemeral_keys_differ() {
        assert_ne!(ephemeral().public_key(), ephemeral().public_key());
    }
}
