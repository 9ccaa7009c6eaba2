#!/usr/bin/env bash
# Try session-proxy without an AWS account: starts a throwaway sshd on 127.0.0.1, the built-in
# Session Manager simulator in front of it, then runs the real `ssh` through
# `session-proxy stdio` as its ProxyCommand. Everything stays on loopback; Ctrl-C cleans up.
# The sshd set-up (and its config, tests/common/sshd_config) is the benches' (bench/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh
PROFILE=release build_bin
start_sshd
SIM_TARGET_SUFFIX=,name=demo-bastion start_sim
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
