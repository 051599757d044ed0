#!/usr/bin/env bash
# Every command at scale: a generated list of N readers (default 1,000,000), each command
# timed once per rep with /usr/bin/time (wall seconds, peak RSS); then, once per rep,
# `serve` under load on loopback: start, a burst of one-click POSTs from 16 connections
# (wrk, installed if missing) with healthz asked meanwhile, 200 slow clients
# (bench/slowloris.py), a restart. Figures are ranges over the reps (min-max), printed
# beside issue 25's targets. Nothing is sent (the dry run writes previews only).
#
#   bench/scale.sh                 N=1000000, REPS=2
#   N=100000 REPS=3 bench/scale.sh
#   bench/scale.sh --readme        the table also written into README.md, between its
#                                  bench/scale.sh markers
#
# Run it with nothing else busy: the figures are single commands on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

README=false
[ "${1:-}" = "--readme" ] && README=true
# PARTS="serve" skips the commands (and PARTS="commands" the load test).
PARTS=${PARTS:-commands serve}
N=${N:-1000000}
REPS=${REPS:-2}
IMPORT=$((N / 10))

cargo build --release --quiet --bin digestif
TARGET=${CARGO_TARGET_DIR:-target}
case $TARGET in /*) ;; *) TARGET=$PWD/$TARGET ;; esac
BIN=${BIN:-$TARGET/release/digestif}

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
import hashlib, hmac, random, sys
work, n, m, secret = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()
with open(f"{work}/subscribers.toml", "w") as f:
    for i in range(n):
        f.write(f'[[subscriber]]\nemail = "reader{i:07d}@example.org"\n\n')
# The readers' one-click tokens (every fifth reader), as digestif makes them, in no
# particular order: readers do not click in the list's order, and clicks in that order
# flattered the store (its index written page after page, not at random).
tokens = []
for i in range(0, n, 5):
    key = f"reader{i:07d}@example.org".encode()
    tokens.append(hmac.new(secret, b"digestif-reader-v2\0" + key, hashlib.sha256).hexdigest()[:32])
random.Random(25).shuffle(tokens)
with open(f"{work}/tokens.txt", "w") as f:
    f.write("\n".join(tokens) + "\n")
# A day's mail to the unsubscribe address: 20 requests with the token of our mailto link,
# 5 that name their sender only.
with open(f"{work}/inbox.mbox", "w") as f:
    for j in range(25):
        i = n // 3 + 5 * j
        key = f"reader{i:07d}@example.org"
        token = hmac.new(secret, b"digestif-reader-v2\0" + key.encode(), hashlib.sha256).hexdigest()[:32]
        subject = f"unsubscribe {token}" if j < 20 else "unsubscribe"
        f.write(f"From {key} Fri Dec  4 10:00:00 2026\nFrom: {key}\nTo: leave@example.org\n"
                f"Message-ID: <leave{j}@example.org>\nSubject: {subject}\n\nPlease.\n\n")
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
  "unsubscribe --token|< 2 s, < 100 MB (as item 3)|unsubscribe --token $(sed -n 2p "$work/tokens.txt")"
  "inbox (25 unsubscribe mails)|< 2 s, < 100 MB (as item 3)|inbox inbox.mbox"
)

# The range of the numbers on stdin: "lo" or "lo–hi".
span() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print (lo == hi ? lo : lo "–" hi)}'; }
# The table's rows: "measure|figure|target".
ROWS=()
row() { ROWS+=("$1|$2|$3"); }
HEAD="$(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the start, N=$N, ranges over $REPS reps"
echo "$HEAD" >&2

[[ $PARTS == *commands* ]] || COMMANDS=()
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
  row "\`$name\`" "$(printf '%s\n' "${walls[@]}" | span) s, $(printf '%s\n' "${rss[@]}" | span) MB" "$target"
  echo "  $name: ${walls[*]} s" >&2
done

# serve: one-click under load, once per rep. Fresh state: the reader index is built at the
# first click.
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
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
ms() { awk -v v="$1" 'BEGIN {u = v; sub(/[0-9.]+/, "", u); n = v + 0; print (u == "us" ? n / 1000 : u == "s" ? n * 1000 : n)}'; }
declare -A M
keep() { M[$1]+="$2 "; }
SERVE_REPS=$REPS
[[ $PARTS == *serve* ]] || SERVE_REPS=0
for _ in $(seq "$SERVE_REPS"); do
  cp "$work/pristine.toml" "$work/subscribers.toml"
  rm -rf "$work/state"
  start_serve
  keep started "$STARTED"
  keep built "$(first_click 100)"
  (cd "$work" && wrk -t1 -c1 -d10s --latency "$URL/healthz" >"$work/healthz.out") &
  HEALTHZ=$!
  (cd "$work" && wrk -t2 -c16 -d10s --latency -s "$ROOT/bench/oneclick.lua" "$URL/" >"$work/burst.out")
  wait "$HEALTHZ"
  t0=$(date +%s.%N)
  until [ "$(pending)" = 0 ]; do sleep 0.1; done
  keep caught_up "$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {print a - b}')"
  sent=$(awk '/requests in/ {print $1}' "$work/burst.out")
  tokens=$(wc -l < "$work/tokens.txt")
  keep rate "$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/burst.out")"
  keep p99 "$(ms "$(p99 "$work/burst.out")")"
  keep healthz "$(ms "$(p99 "$work/healthz.out")")"
  keep errors "$(awk '/Non-2xx/ {print $5} END {print 0}' "$work/burst.out" | head -1)"
  # Every reader whose click was answered is in the list (tokens are used once each,
  # then again; wrk does not count the requests its end cut off, which may have landed).
  keep answered "$(( sent < tokens ? sent : tokens ))"
  inlist=$(grep -c 'status = "unsubscribed"' "$work/subscribers.toml")
  keep inlist "$inlist"
  [ "$inlist" -ge "$(( sent < tokens ? sent : tokens ))" ] || echo "FAILED: answered clicks missing from the list" >&2
  read -r _ slow_p50 slow_p99 slow_max <<<"$(python3 bench/slowloris.py 127.0.0.1 "$PORT" 200 12 "/u?token=$(sed -n 7p "$work/tokens.txt")")"
  keep slow "$slow_max"
  stop_serve
  keep rss "$(( $(cat "$work/serve.rss") / 1024 ))"
  start_serve
  keep restarted "$STARTED"
  keep again "$(first_click 9)"
  stop_serve
done
[ "$SERVE_REPS" = 0 ] && { printf '%s\n' "${ROWS[@]}"; exit 0; }
range() { tr ' ' '\n' <<<"${M[$1]}" | grep . | awk -v f="$2" '{printf f "\n", $1}' | span; }
row "\`serve\`: one-click POSTs/s (16 connections, 10 s)" "$(range rate %.0f)" ">= 1,000"
row "\`serve\`: one-click p99" "$(range p99 %.1f) ms" "< 50 ms"
row "\`serve\`: healthz p99 during the burst" "$(range healthz %.1f) ms" "< 10 ms"
row "\`serve\`: peak RSS" "$(range rss %.0f) MB" "< 64 MB"
row "\`serve\`: start (until healthz answers)" "$(range started %.2f) s" "< 1 s"
row "\`serve\`: first click, index built from the list" "$(range built %.2f) s" ""
row "\`serve\`: restart, index kept: start / first click" "$(range restarted %.2f) s / $(range again %.3f) s" "< 1 s"
row "\`serve\`: non-2xx answers" "$(range errors %.0f)" "0"
row "\`serve\`: readers whose click was answered / now unsubscribed in the list" "$(range answered %.0f) / $(range inlist %.0f)" "every one answered is in the list"
row "\`serve\`: list caught up after the burst" "$(range caught_up %.1f) s" ""
row "\`serve\`: 200 slow clients, slowest reader page" "$(range slow %.1f) ms" "< 50 ms"

report() {
  echo "Measured by \`bench/scale.sh\` ($HEAD; $N generated readers, loopback):"
  echo
  echo "| measure | figure | target |"
  echo "|---|---|---|"
  for r in "${ROWS[@]}"; do IFS='|' read -r a b c <<<"$r"; echo "| $a | $b | $c |"; done
}
report > "$work/report"
cat "$work/report"
if $README; then python3 bench/table.py readme bench/scale.sh < "$work/report"; fi
