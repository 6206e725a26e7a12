#!/usr/bin/env bash
# Builds Classifier Studio as a one-folder app (build.spec), runs the app's own --self-test on the result, and
# prints its size and how long it takes to show its window and to have its first model ready.
#
#   pip install -e ".[build]" && scripts/build_app.sh
#
# DIST_DIR and WORK_DIR move PyInstaller's output and scratch folders (default: dist/ and build/).
# Without a display the window opens offscreen. Everything the app writes while being checked goes into a
# throwaway home folder: the user's own settings, models and caches are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
DIST_DIR=${DIST_DIR:-dist}
WORK_DIR=${WORK_DIR:-build}
MODEL_TIMEOUT_S=300

if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
  echo "PyInstaller is not installed: pip install -e \".[build]\"" >&2
  exit 2
fi

started=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --log-level WARN --distpath "$DIST_DIR" --workpath "$WORK_DIR" build.spec
app_dir="$DIST_DIR/ClassifierStudio"
app="$app_dir/ClassifierStudio"
echo "Built in $(( $(date +%s) - started )) s: $(du -sh "$app_dir" | cut -f1) in $app_dir"

sandbox=$(mktemp -d)
app_pid=""
# The app runs in a background subshell: stop the app itself (the subshell's child), then the subshell.
stop_app() {
  pkill -TERM -P "$app_pid" 2>/dev/null || true
  kill "$app_pid" 2>/dev/null || true
  wait "$app_pid" 2>/dev/null || true
  app_pid=""
}
cleanup() {
  if [ -n "$app_pid" ]; then stop_app; fi
  rm -rf "$sandbox"
}
trap cleanup EXIT
# The app runs as on a new user's first start: empty config, data, state (logs) and cache folders, offline.
run_sandboxed() {
  env HOME="$sandbox/home" XDG_CONFIG_HOME="$sandbox/config" XDG_DATA_HOME="$sandbox/data" \
      XDG_STATE_HOME="$sandbox/state" XDG_CACHE_HOME="$sandbox/cache" HF_HUB_OFFLINE=1 \
      QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-$( [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || echo offscreen )}" "$@"
}
mkdir -p "$sandbox/home"

echo "Self-test of the built app:"
run_sandboxed "$app" --self-test

log_file="$sandbox/state/Classifier Studio/classifier-studio.log"
now() { date +%s.%N; }
show_log() {
  echo "The app's log ends:" >&2; tail -n 40 "$log_file" >&2 2>/dev/null || echo "  (no log written)" >&2
  echo "The app printed:" >&2; tail -n 40 "$sandbox/app-output.txt" >&2
}
# Starts the app, waits for its log to say the window is shown and the first model is ready, then closes it.
time_start_up() {
  local label=$1 launched seen_window="" seen_model="" deadline
  rm -f "$log_file"
  launched=$(now)
  run_sandboxed "$app" >"$sandbox/app-output.txt" 2>&1 &
  app_pid=$!
  deadline=$(awk -v t="$launched" -v s="$MODEL_TIMEOUT_S" 'BEGIN { printf "%.3f", t + s }')  # not print: %.6g
  while [ -z "$seen_model" ]; do
    if [ -z "$seen_window" ] && grep -q "Window shown" "$log_file" 2>/dev/null; then seen_window=$(now); fi
    if grep -q "First model ready" "$log_file" 2>/dev/null; then
      seen_model=$(now)
      [ -n "$seen_window" ] || seen_window=$seen_model
    fi
    if ! kill -0 "$app_pid" 2>/dev/null; then echo "The app quit during start-up ($label)" >&2; show_log; return 1; fi
    if awk -v n="$(now)" -v d="$deadline" 'BEGIN { exit !(n > d) }'; then
      echo "No model ready after ${MODEL_TIMEOUT_S} s ($label)" >&2; show_log; return 1
    fi
    sleep 0.02
  done
  stop_app
  awk -v l="$launched" -v w="$seen_window" -v m="$seen_model" -v label="$label" \
    'BEGIN { printf "Start-up, %s: window shown after %.2f s, first model ready after %.2f s\n", label, w - l, m - l }'
  grep -E "Window shown|First model ready" "$log_file" | sed 's/^/  the app logged: /'
}
time_start_up "first start (the built-in model is prepared once)"
time_start_up "second start"
