#!/usr/bin/env bash
# Runs each fuzz target for SECONDS and prints the executions per target.
#
#   fuzz/run.sh SECONDS [TARGET...]      (default: every target in fuzz/Cargo.toml)
#
# Environment:
#   FUZZ_TOOLCHAIN  rustup toolchain for cargo-fuzz (default: nightly)
#   FUZZ_BUILD      extra `cargo fuzz` build flags (default: --sanitizer none; set it to ""
#                   for the AddressSanitizer build, which is slower to build and to run)
#
# Corpora grow in fuzz/corpus/TARGET (git-ignored) and start from the committed seeds in
# fuzz/seeds/TARGET. Crashes land in fuzz/artifacts/TARGET; the script exits non-zero if any
# target failed. Logs are kept in fuzz/logs/TARGET.log.
set -euo pipefail

usage() { echo "usage: $0 SECONDS [TARGET...]" >&2; exit 2; }
[[ $# -ge 1 && $1 =~ ^[0-9]+$ ]] || usage
seconds=$1; shift

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
toolchain=${FUZZ_TOOLCHAIN:-nightly}
read -r -a build <<<"${FUZZ_BUILD---sanitizer none}"

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo "+$toolchain" fuzz list)
fi

mkdir -p logs
cargo "+$toolchain" fuzz build "${build[@]}" >logs/build.log 2>&1 ||
    { cat logs/build.log >&2; exit 1; }

failed=()
printf '%-18s %14s %10s %8s\n' target executions exec/s status
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    seeds=()
    [[ -d "seeds/$t" ]] && seeds=("seeds/$t")
    status=ok
    cargo "+$toolchain" fuzz run "${build[@]}" "$t" "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$seconds" -print_final_stats=1 \
        >"logs/$t.log" 2>&1 || status=FAILED
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | tail -1 | grep -o '[0-9]*$' || true)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "logs/$t.log" | tail -1 | grep -o '[0-9]*$' || true)
    printf '%-18s %14s %10s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "$status"
    [[ $status == ok ]] || failed+=("$t")
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "failed: ${failed[*]} (see fuzz/logs/ and fuzz/artifacts/)" >&2
    exit 1
fi
