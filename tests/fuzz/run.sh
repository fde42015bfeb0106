#!/bin/bash
# Runs one libFuzzer harness of tests/fuzz over a copy of its seed corpus, or builds the
# sanitized tree the harnesses live in. Used by `make test` (tests/fuzz/CMakeLists.txt) and
# by people for longer sessions:
#
#   tests/fuzz/run.sh --list                 the harnesses
#   tests/fuzz/run.sh recipe 3600            fuzz the recipe parser for an hour
#   tests/fuzz/run.sh --build-all            configure and build build/sanitized
#
# Options (before NAME):
#   --build-dir DIR  the sanitized tree (default: build/sanitized, or $KILN_FUZZ_BUILD)
#   --no-build       do not (re)build the harness first
#   --fresh          start from the seeds alone, forgetting inputs earlier runs kept
#   --jobs N         run N fuzzing processes in parallel (libFuzzer -jobs/-workers)
# and after NAME [SECONDS]:
#   -- FLAGS         more libFuzzer flags, e.g. `run.sh gpt 600 -- -fork=2 -ignore_crashes=1`
#
# Inputs found interesting are kept in DIR/fuzz-runs/NAME/corpus (the repository's corpus is
# only read), and a crash leaves DIR/fuzz-runs/NAME/crash-* to reproduce with
# `DIR/tests/fuzz/fuzz_NAME FILE`. Exit status: 0 when nothing was found.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
build_dir=${KILN_FUZZ_BUILD:-$source_dir/build/sanitized}
build=1 fresh=0 jobs=1 build_all=0 list=0
extra=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --fresh) fresh=1; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    --build-all) build_all=1; shift ;;
    --list) list=1; shift ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done

# Per harness: the longest input worth trying (what a real one of its kind may be, or what
# the reader takes before refusing: 16 KiB for kiln serve's head, 64 KiB for kiln-netroot's),
# and its dictionary, when it has one.
declare -A max_len=(
  [recipe]=65536 [join_config]=65536 [cluster_info]=65536 [gpt]=65536
  [https_response]=65536 [netroot_head]=65536 [jws]=65536 [http_request]=16384
  [kernel_cmdline]=4096 [base64]=4096 [update_release]=65536 [inspect]=65536
  [network_config]=65536 [aws_response]=65536 [openstack_response]=65536
  [azure_gce_response]=65536 [update_frames]=65536
)
declare -A dict=(
  [recipe]=yaml [join_config]=yaml [cluster_info]=yaml [http_request]=http
  [https_response]=http [netroot_head]=http [kernel_cmdline]=kernel_cmdline [jws]=jws
  [network_config]=yaml
)

if [[ $list == 1 ]]; then
  printf '%s\n' "${!max_len[@]}" | sort
  exit 0
fi

mkdir -p "$build_dir"
build_dir=$(cd "$build_dir" && pwd)  # the fuzzer runs in its work directory

configure_and_build() {
  local launcher=()
  [[ -n ${KILN_FUZZ_LAUNCHER:-} ]] && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER="$KILN_FUZZ_LAUNCHER")
  if [[ ! -f $build_dir/build.ninja ]]; then
    CXX=clang++ cmake -S "$source_dir" -B "$build_dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
      -DKILN_SANITIZE=ON "${launcher[@]}" >/dev/null
  fi
  cmake --build "$build_dir" --target "$@"
}

if [[ $build_all == 1 ]]; then
  started=$(date +%s)
  configure_and_build kiln_fuzzers kiln_unit_tests
  echo "run.sh: built $build_dir in $(( $(date +%s) - started )) s"
  exit 0
fi

name=${1:?usage: run.sh [options] NAME [SECONDS] [-- FLAGS] (see the top of $0)}
seconds=${2:-60}
shift $(( $# < 2 ? $# : 2 ))
if [[ ${1:-} == -- ]]; then
  shift
  extra=("$@")
fi
if [[ -z ${max_len[$name]:-} ]]; then
  echo "run.sh: no harness named '$name'; the harnesses are:" >&2
  printf '  %s\n' "${!max_len[@]}" | sort >&2
  exit 2
fi
[[ $build == 1 ]] && configure_and_build "fuzz_$name"
binary=$build_dir/tests/fuzz/fuzz_$name
if [[ ! -x $binary ]]; then
  echo "run.sh: $binary is missing; build it with: $0 --build-all" >&2
  exit 1
fi

work=$build_dir/fuzz-runs/$name
[[ $fresh == 1 ]] && rm -rf "$work"
mkdir -p "$work/corpus"
cp -r "$here/corpus/$name/." "$work/corpus/"
chmod -R u+w "$work/corpus"

flags=(
  -max_total_time="$seconds" -max_len="${max_len[$name]}"
  -timeout=10            # one input taking 10 s is a hang
  -rss_limit_mb=2048 -malloc_limit_mb=256  # no input this small needs 256 MiB in one piece
  -artifact_prefix="$work/" -print_final_stats=1
)
[[ -n ${dict[$name]:-} ]] && flags+=(-dict="$here/dict/${dict[$name]}.dict")
[[ $jobs -gt 1 ]] && flags+=(-jobs="$jobs" -workers="$jobs")

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "run.sh: fuzzing $name for $seconds s: $binary ${flags[*]} ${extra[*]} $work/corpus"
if ! (cd "$work" && "$binary" "${flags[@]}" "${extra[@]}" "$work/corpus"); then
  echo "run.sh: fuzz_$name found a problem; reproduce with:" >&2
  for crash in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
    [[ -e $crash ]] && echo "  $binary $crash" >&2
  done
  exit 1
fi
