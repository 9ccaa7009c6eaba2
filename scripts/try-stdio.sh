#!/usr/bin/env bash
# Try session-proxy without an AWS account: starts a throwaway sshd on 127.0.0.1, the built-in
# Session Manager simulator in front of it, then runs the real `ssh` through
# `session-proxy stdio` as its ProxyCommand. Everything stays on loopback; Ctrl-C cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
BIN=$PWD/target/release/session-proxy
work=$(mktemp -d)
cleanup() { kill "${sim_pid:-}" "${sshd_pid:-}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/client_key"
cp "$work/client_key.pub" "$work/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/sshd_config" <<CFG
ListenAddress 127.0.0.1:$port
HostKey $work/host_key
AuthorizedKeysFile $work/authorized_keys
PidFile $work/sshd.pid
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
CFG
[ "$(id -u)" = 0 ] && mkdir -p /run/sshd
/usr/sbin/sshd -D -e -f "$work/sshd_config" & sshd_pid=$!
"$BIN" sim --target "i-0123456789abcdef0=127.0.0.1:$port,name=demo-bastion" > "$work/env" & sim_pid=$!
for _ in $(seq 100); do grep -q AWS_ENDPOINT_URL "$work/env" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$work/env"
echo "== ssh through session-proxy stdio (simulator at $AWS_ENDPOINT_URL) =="
ssh -F /dev/null -i "$work/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR -o ProxyCommand="$BIN stdio %h -p %p" "$(id -un)@demo-bastion" \
    'echo "hello from $(hostname) via Session Manager (simulated)"; uname -a'
echo "== 20 MB download, checksummed =="
head -c 20971520 /dev/urandom > "$work/blob"
want=$(sha256sum < "$work/blob" | cut -d' ' -f1)
start=$(date +%s.%N)
got=$(ssh -F /dev/null -i "$work/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR -o ProxyCommand="$BIN stdio %h -p %p" "$(id -un)@i-0123456789abcdef0" \
    "cat $work/blob" | sha256sum | cut -d' ' -f1)
end=$(date +%s.%N)
[ "$want" = "$got" ] && echo "sha256 match ($got), $(python3 -c "print(round(20/($end-$start),1))") MB/s" || { echo "MISMATCH"; exit 1; }
