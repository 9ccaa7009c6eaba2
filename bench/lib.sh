# Shared set-up for the bench scripts and scripts/try-stdio.sh (sourced): the binary to
# measure, a throwaway sshd on 127.0.0.1, the simulator in front of it, `serve` masters, and
# port files. Expects `work` (a temp dir) and `pids` (an array) to exist.
#
# No port is picked by bind-then-drop: every server binds port 0 itself and reports the port
# it got (sshd through bench/inetd.py, `serve` through --ready-file, the simulator on stdout).

# build_bin → sets BIN for $PROFILE (default: profiling, release code with debug info).
# PROFILE=debug reuses target/debug/session-proxy as `cargo test` builds it: `cargo build`
# would resolve dev-dependency features differently and compile the dependency tree again.
# A preset BIN (an executable path) is used as it is, without building.
build_bin() {
  if [ -n "${BIN:-}" ] && [ -x "$BIN" ]; then return; fi
  case "${PROFILE:=profiling}" in
    debug) cargo test -q --no-run --test cli ;;
    *) cargo build -q --profile "$PROFILE" ;;
  esac
  BIN=$PWD/target/$PROFILE/session-proxy
  [ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }
}

# wait_port_file FILE → prints the port a server wrote to FILE (bounded wait).
wait_port_file() {
  for _ in $(seq 1200); do [ -s "$1" ] && { head -n 1 "$1"; return; }; sleep 0.05; done
  echo "no port in $1 after 60 s" >&2; exit 1
}

# The one sshd_config (shared with the Rust test harness), filled in for $work.
write_sshd_config() {
  sed -e "s|@HOST_KEY@|$work/host_key|" -e "s|@DIR@|$work|" tests/common/sshd_config > "$work/sshd_config"
}

# start_sshd → sets sshd_port; keys in $work/client_key. sshd runs in inetd mode, one process
# per connection, on a listener bench/inetd.py keeps.
start_sshd() {
  ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$work/client_key"
  cp "$work/client_key.pub" "$work/authorized_keys"
  write_sshd_config
  [ "$(id -u)" = 0 ] && mkdir -p /run/sshd
  /usr/sbin/sshd -t -f "$work/sshd_config"
  python3 bench/inetd.py "$work/sshd.port" /usr/sbin/sshd -i -e -o LogLevel=ERROR -f "$work/sshd_config" \
    2>"$work/sshd.log" & pids+=($!)
  sshd_port=$(wait_port_file "$work/sshd.port")
}

# start_sim [flags...] → sets sim_pid and exports the AWS_* variables pointing at it.
start_sim() {
  rm -f "$work/env"
  "$BIN" sim --target "i-0123456789abcdef0=127.0.0.1:$sshd_port${SIM_TARGET_SUFFIX:-}" "$@" > "$work/env" 2>"$work/sim.log" & sim_pid=$!
  pids+=($sim_pid)
  for _ in $(seq 100); do grep -q AWS_ENDPOINT_URL "$work/env" 2>/dev/null && break; sleep 0.05; done
  # shellcheck disable=SC1091
  . "$work/env"
}

# start_serve CONFIG NAME → runs `serve --foreground` on CONFIG (listening on 127.0.0.1:0);
# sets serve_pid and socks_port once it is ready. Log in $work/serve-NAME.log.
start_serve() {
  rm -f "$work/ready-$2"
  "$BIN" serve --foreground --config "$1" --ready-file "$work/ready-$2" 2>"$work/serve-$2.log" & serve_pid=$!
  pids+=($serve_pid)
  local addr
  addr=$(wait_port_file "$work/ready-$2")
  socks_port=${addr##*:}
}

# write_pool_config FILE POOL_SIZE [STATE_NAME] → a `serve` config: one SOCKS listener on
# 127.0.0.1:0 and every destination through one upstream of POOL_SIZE connections to the
# simulated instance, with its state dir and control socket under $work.
write_pool_config() {
  local state=${3:-state}
  cat > "$1" <<YAML
listeners:
  - socks5: 127.0.0.1:0
upstreams:
  bench:
    targets: [i-0123456789abcdef0]
    user: $(id -un)
    identity_files: [$work/client_key]
    pool_size: $2
    host_key_policy: off
default: bench
state_dir: $work/$state
control_socket: $work/$state.sock
YAML
}

# A Python snippet servers use to report the port they bound (argv[1] is the port file).
PY_REPORT_PORT='
import os
def report_port(sock, path):
    with open(path + ".tmp", "w") as f: f.write(f"{sock.getsockname()[1]}\n")
    os.rename(path + ".tmp", path)
'
