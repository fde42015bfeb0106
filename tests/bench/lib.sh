# Helpers shared by the benchmark scripts; they set $work before sourcing this.

# timed FORMAT CMD...: runs CMD quietly and prints its wall-clock seconds with the printf
# FORMAT; shows its log on failure.
timed() {
  local format=$1 start end
  shift
  start=$(date +%s.%N)
  if ! "$@" >"$work/last.log" 2>&1; then
    cat "$work/last.log" >&2
    echo "bench: failed: $*" >&2
    exit 1
  fi
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" -v f="$format" 'BEGIN { printf f, b - a }'
}

# seconds CMD...: timed to a tenth of a second, for steps that take seconds or minutes.
seconds() { timed '%.1f' "$@"; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
