# Shared set-up for the bench scripts (sourced): a throwaway sshd on 127.0.0.1, the simulator in
# front of it, free ports, cleanup. Expects `work` (a temp dir) and `pids` (an array) to exist.

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_sshd → sets sshd_port; keys in $work/client_key.
start_sshd() {
  ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$work/client_key"
  cp "$work/client_key.pub" "$work/authorized_keys"
  sshd_port=$(freeport)
  cat > "$work/sshd_config" <<CFG
ListenAddress 127.0.0.1:$sshd_port
HostKey $work/host_key
AuthorizedKeysFile $work/authorized_keys
PidFile $work/sshd.pid
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
MaxSessions 2000
MaxStartups 100
LogLevel ERROR
CFG
  [ "$(id -u)" = 0 ] && mkdir -p /run/sshd
  /usr/sbin/sshd -D -e -f "$work/sshd_config" & pids+=($!)
}

# start_sim [flags...] → sets sim_pid and exports the AWS_* variables pointing at it.
start_sim() {
  rm -f "$work/env"
  "$BIN" sim --target "i-0123456789abcdef0=127.0.0.1:$sshd_port" "$@" > "$work/env" 2>"$work/sim.log" & sim_pid=$!
  pids+=($sim_pid)
  for _ in $(seq 100); do grep -q AWS_ENDPOINT_URL "$work/env" 2>/dev/null && break; sleep 0.05; done
  # shellcheck disable=SC1091
  . "$work/env"
}
