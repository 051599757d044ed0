#!/usr/bin/env bash
# Every command at scale: a generated list of N readers (default 1,000,000), each command
# timed once per rep with /usr/bin/time (wall seconds, peak RSS), medians printed beside
# issue 25's targets; then `serve` under load on loopback: start, a burst of one-click
# POSTs from 16 connections (wrk, installed if missing) with healthz asked meanwhile, 200
# slow clients (bench/slowloris.py). Nothing is sent (the dry run writes previews only).
#
#   bench/scale.sh                 N=1000000, REPS=2
#   N=100000 REPS=3 bench/scale.sh
#
# Run it with nothing else busy: the figures are single commands on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

N=${N:-1000000}
REPS=${REPS:-2}
IMPORT=$((N / 10))

cargo build --release --quiet --bin digestif
TARGET=${CARGO_TARGET_DIR:-target}
case $TARGET in /*) ;; *) TARGET=$PWD/$TARGET ;; esac
BIN=$TARGET/release/digestif

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/posts"
cat > "$work/digestif.toml" <<'EOF'
[newsletter]
name = "Scale"
base_url = "https://scale.example.org/"
language = "en"
timezone = "UTC"
posts_dir = "posts"
subscribers = "subscribers.toml"
[sender]
from = "Scale <scale@example.org>"
unsubscribe_mailto = "leave@example.org"
unsubscribe_url = "https://scale.example.org/u"
EOF
export DIGESTIF_UNSUBSCRIBE_SECRET=scale-bench-secret-0123456789
printf '+++\ntitle = "One"\ndate = 2011-12-27T10:00:00Z\ncategory = "News"\n+++\nText.\n' > "$work/posts/one.md"
python3 - "$work" "$N" "$IMPORT" "$DIGESTIF_UNSUBSCRIBE_SECRET" <<'EOF'
import hashlib, hmac, sys
work, n, m, secret = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()
with open(f"{work}/subscribers.toml", "w") as f:
    for i in range(n):
        f.write(f'[[subscriber]]\nemail = "reader{i:07d}@example.org"\n\n')
# The readers' one-click tokens (every fifth reader), as digestif makes them.
with open(f"{work}/tokens.txt", "w") as f:
    for i in range(0, n, 5):
        key = f"reader{i:07d}@example.org".encode()
        f.write(hmac.new(secret, b"digestif-reader-v2\0" + key, hashlib.sha256).hexdigest()[:32] + "\n")
with open(f"{work}/import.csv", "w") as f:
    f.write("email,name\n")
    for i in range(m):
        f.write(f"new{i:07d}@example.net,Reader {i}\n")
EOF
cp "$work/subscribers.toml" "$work/pristine.toml"

# name | target | command (run in $work; the list is restored before each)
COMMANDS=(
  "check|< 2 s, < 100 MB|check"
  "status|< 2 s, < 100 MB|status"
  "subscribers list --status active|< 2 s, < 100 MB|subscribers list --status active"
  "subscribers add (new)|< 2 s, < 100 MB|subscribers add newcomer@example.org"
  "subscribers remove|< 2 s, < 100 MB|subscribers remove reader$(printf %07d $((N / 2)))@example.org"
  "subscribers unsubscribe|< 2 s, < 100 MB|subscribers unsubscribe reader$(printf %07d $((N / 2 + 1)))@example.org"
  "subscribers export|< 2 s, < 100 MB|subscribers export"
  "subscribers import ($IMPORT rows)|< 3 s, < 100 MB|subscribers import import.csv"
  "send --dry-run|< 15 s, < 100 MB|send --dry-run --week 2011-W52"
)

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "$(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), N=$N, medians of $REPS"
printf '%-38s %10s %12s   %s\n' "command" "wall s" "peak RSS MB" "target"
for entry in "${COMMANDS[@]}"; do
  IFS='|' read -r name target args <<<"$entry"
  walls=(); rss=()
  for _ in $(seq "$REPS"); do
    cp "$work/pristine.toml" "$work/subscribers.toml"
    rm -rf "$work/state" "$work/preview"
    # shellcheck disable=SC2086
    (cd "$work" && /usr/bin/time -f "%e %M" -o "$work/time" "$BIN" $args >/dev/null 2>"$work/err") \
      || { echo "$name failed:"; cat "$work/err"; exit 1; }
    read -r wall kb < "$work/time"
    walls+=("$wall"); rss+=("$((kb / 1024))")
  done
  printf '%-38s %10s %12s   %s\n' "$name" \
    "$(printf '%s\n' "${walls[@]}" | median)" "$(printf '%s\n' "${rss[@]}" | median)" "$target"
done

# serve: one-click under load. Fresh state: the reader index is built at the first click.
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cp "$work/pristine.toml" "$work/subscribers.toml"
rm -rf "$work/state"
PORT=$((20000 + RANDOM % 20000))
URL=http://127.0.0.1:$PORT
# Start serve (SERVE: its pid); STARTED: seconds until healthz answered.
start_serve() {
  local t0; t0=$(date +%s.%N)
  (cd "$work" && exec /usr/bin/time -f "%M" -o "$work/serve.rss" "$BIN" serve --listen "127.0.0.1:$PORT" \
    >"$work/serve.log" 2>&1) &
  SERVE=$!
  until curl -sf "$URL/healthz" >/dev/null; do sleep 0.01; done
  STARTED=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {print a - b}')
}
# TERM to serve itself (GNU time would die of it without a word), then time reports.
stop_serve() { pkill -TERM -P "$SERVE"; wait "$SERVE" || true; }
first_click() { curl -s -o /dev/null -w "%{time_total}" "$URL/u?token=$(sed -n "${1}p" "$work/tokens.txt")"; }
pending() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from optouts where applied_at is null').fetchone()[0])" "$work/state/optouts.sqlite"; }
p99() { awk '/Latency Distribution/ {d=1} d && $1=="99%" {print $2; exit}' "$1"; }

start_serve
started=$STARTED
built=$(first_click 100)
(cd "$work" && wrk -t1 -c1 -d10s --latency "$URL/healthz" >"$work/healthz.out") &
HEALTHZ=$!
(cd "$work" && wrk -t2 -c16 -d10s --latency -s "$ROOT/bench/oneclick.lua" "$URL/" >"$work/burst.out")
wait "$HEALTHZ"
t0=$(date +%s.%N)
until [ "$(pending)" = 0 ]; do sleep 0.1; done
caught_up=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {print a - b}')
sent=$(awk '/requests in/ {print $1}' "$work/burst.out")
errors=$(awk '/Non-2xx/ {print $5}' "$work/burst.out")
folded=$(grep -c 'status = "unsubscribed"' "$work/subscribers.toml")
slow=$(python3 bench/slowloris.py 127.0.0.1 "$PORT" 200 12 "/u?token=$(sed -n 7p "$work/tokens.txt")")
stop_serve
rss=$(( $(cat "$work/serve.rss") / 1024 ))
start_serve
restarted=$STARTED
again=$(first_click 9)
stop_serve
read -r _ slow_p50 slow_p99 slow_max <<<"$slow"

echo
echo "serve, N=$N, loopback, 16 connections for 10 s (wrk), healthz asked by a 17th"
row() { printf '%-44s %-28s %s\n' "$@"; }
row "measure" "figure" "target"
row "one-click POSTs/s" "$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/burst.out")" ">= 1,000"
row "one-click p99" "$(p99 "$work/burst.out")" "< 50 ms"
row "healthz p99 during the burst" "$(p99 "$work/healthz.out")" "< 10 ms"
row "serve peak RSS" "$rss MB" "< 64 MB"
row "start (until healthz answers), no index" "$(printf '%.2f s' "$started")" "< 1 s"
row "first click, index built from the list" "$(printf '%.2f s' "$built")" ""
row "restart, index kept: start / first click" "$(printf '%.2f s / %.3f s' "$restarted" "$again")" "< 1 s"
tokens=$(wc -l < "$work/tokens.txt")
clicked=$(( sent < tokens ? sent : tokens ))
row "POSTs / non-2xx / readers clicked / in list" "$sent / ${errors:-0} / $clicked / $folded" "clicked = in list"
row "list caught up after the burst" "$(printf '%.1f s' "$caught_up")" ""
row "200 slow clients: reader page p50/p99/max" "$slow_p50 / $slow_p99 / $slow_max ms" "< 50 ms"
