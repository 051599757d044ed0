#!/usr/bin/env bash
# End-to-end sending benchmark. In one run, rep by rep, on the same Postfix smtp-sink on
# 127.0.0.1, with the same message size at the same concurrency:
#   - digestif send (ledger on, per-subscriber messages, loading, rendering and freezing
#     included), with ledger_sync = "normal" and "full"
#   - a bare lettre loop (examples/bare_lettre.rs: prebuilt bytes, no ledger)
#   - Postfix's smtp-source
#   - a raw pipelined socket loop (examples/raw_pipelined.rs: one round trip a message,
#     replies read for their codes only): the physical limit of the machine
# For each: messages/s (wall clock of the whole command) and CPU per message (user + sys
# from getrusage of the whole process, through /usr/bin/time), as ranges over the reps
# (min-max), and digestif's ratios to the others, taken within each rep; "full" is the default, "normal" syncs less. CPU time
# is the steadier figure on a shared machine: run this with nothing else busy.
# The sink's own counter must confirm every message.
#
# Then, with BIG set: one `send` of BIG subscribers (peak RSS, freezing time) and
# `subscribers unsubscribe` on that BIG-entry file.
#
#   bench/send.sh                          PLAN="1:5000 4:5000 16:5000", 3 reps
#   REPS=2 PLAN="1:20000 4:100000 16:20000" bench/send.sh --readme
#
# --markdown prints the tables as Markdown, with the date, the core count and the load.
# --readme also writes them into README.md, between its bench/send.sh markers.
set -euo pipefail
cd "$(dirname "$0")/.."

MARKDOWN=false
README=false
case "${1:-}" in
  --markdown) MARKDOWN=true ;;
  --readme) MARKDOWN=true; README=true ;;
esac
REPS=${REPS:-3}
PLAN=${PLAN:-"1:5000 4:5000 16:5000"}
BIG=${BIG:-}
PORT=${PORT:-25250}
NOW="2012-01-09T12:00:00+01:00"
WEEK="2011-W52"

if ! command -v smtp-sink >/dev/null || ! command -v smtp-source >/dev/null; then
  echo "installing postfix (for smtp-sink and smtp-source)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postfix >/dev/null
fi
# The package may start a mail daemon; the benchmark wants only the sink.
postfix stop >/dev/null 2>&1 || true
[ -x /usr/bin/time ] || { apt-get install -y -qq time >/dev/null; }

cargo build --profile profiling --quiet --bin digestif --example bare_lettre --example raw_pipelined
# Where cargo put them: CARGO_TARGET_DIR when set (relative to this folder, as cargo reads it).
TARGET=${CARGO_TARGET_DIR:-target}
case $TARGET in /*) ;; *) TARGET=$PWD/$TARGET ;; esac
BIN=$TARGET/profiling/digestif
BARE=$TARGET/profiling/examples/bare_lettre
RAW=$TARGET/profiling/examples/raw_pipelined

work=$(mktemp -d)
sink_pid=""
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# A site: the sample posts, a plain-SMTP config pointing at the sink, `count` subscribers.
make_site() { # dir count
  local dir=$1 count=$2
  mkdir -p "$dir"
  cp -r posts "$dir/posts"
  sed -e "s/^port = 587/port = $PORT/" -e 's/^tls = "starttls"/tls = "none"/' \
      -e 's/^host = "localhost"/host = "127.0.0.1"/' digestif.toml > "$dir/digestif.toml"
  for sync in normal full; do
    sed "s/^rate_per_s = 0/rate_per_s = 0\nledger_sync = \"$sync\"/" "$dir/digestif.toml" > "$dir/$sync.toml"
  done
  python3 - "$dir/subscribers.example.toml" "$count" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        f.write(f'[[subscriber]]\nemail = "reader{i}@bench{i % 97}.example.org"\nname = "Reader {i}"\n\n')
PY
}

make_site "$work/one" 1
DIGESTIF_NOW=$NOW "$BIN" --config "$work/one/digestif.toml" send --dry-run --week $WEEK --out "$work/one/dry" >/dev/null
MSG=$(ls "$work"/one/dry/$WEEK/*.eml | head -1)
SIZE=$(wc -c < "$MSG")

smtp-sink -c -u nobody 127.0.0.1:$PORT 1024 > "$work/sink.out" 2>&1 &
sink_pid=$!
sleep 0.5

sink_count() { tr '\r' '\n' < "$work/sink.out" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 || echo 0; }
confirm() { # label before expected
  local after; sleep 0.2; after=$(sink_count); after=${after:-0}
  if [ $((after - $2)) -ne "$3" ]; then
    echo "FAILED: $1: the sink counted $((after - $2)) messages, expected $3" >&2; exit 1
  fi
}
py() { python3 -c "$1"; }

# Run a command under /usr/bin/time; sets WALL and CPU (user + sys, seconds) and MAXRSS (KiB).
timed() { # label expected-messages command...
  local label=$1 expected=$2; shift 2
  local before; before=$(sink_count); before=${before:-0}
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" > "$work/out" 2> "$work/err" || {
    echo "FAILED: $label exited non-zero:" >&2; cat "$work/err" >&2; exit 1; }
  confirm "$label" "$before" "$expected"
  read -r WALL user sys MAXRSS < "$work/time"
  CPU=$(py "print($user + $sys)")
}

RESULTS=$work/results
: > "$RESULTS"
record() { echo "$C $N $1 $rep $WALL $CPU" >> "$RESULTS"; }
for step in $PLAN; do
  C=${step%%:*}; N=${step##*:}
  site="$work/site$N"
  [ -d "$site" ] || make_site "$site" "$N"
  for rep in $(seq "$REPS"); do
    timed smtp-source "$N" smtp-source -d -s "$C" -m "$N" -N -F "$MSG" -f bench@example.org -t r@example.org 127.0.0.1:$PORT
    record source
    timed bare_lettre "$N" "$BARE" 127.0.0.1 $PORT "$C" "$N" "$MSG"
    record lettre
    timed raw_loop "$N" "$RAW" 127.0.0.1 $PORT "$C" "$N" "$MSG"
    record raw
    for sync in normal full; do
      rm -rf "$site/state"
      timed "digestif ($sync)" "$N" env DIGESTIF_NOW=$NOW "$BIN" --config "$site/$sync.toml" send --week $WEEK --concurrency "$C"
      record $sync
    done
  done
done

f0() { py "print(f'{$1:,.0f}')"; }
DATE=$(date -u +%Y-%m-%d)
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
CORES=$(nproc)

report() {
  if $MARKDOWN; then
    echo "Measured $DATE on $CORES cores by \`REPS=$REPS PLAN=\"$PLAN\"${BIG:+ BIG=$BIG} bench/send.sh\`: a $SIZE-byte digest to Postfix's smtp-sink on 127.0.0.1, sink and client on the same machine, load average $LOAD at the end. Each figure is the range over $REPS reps; a ratio is taken within a rep. Rates are the whole command's wall clock; CPU is user + sys of the whole process (getrusage) per message."
    echo
    python3 bench/table.py send "$RESULTS" --markdown
  else
    echo "digestif send benchmark, $DATE: $SIZE-byte message, ranges over $REPS reps, $CORES cores, load $LOAD, sink and client on one machine"
    python3 bench/table.py send "$RESULTS"
  fi
  big_report
}
big_report() { :; }

if [ -z "$BIG" ]; then
  report > "$work/report"
  cat "$work/report"
  if $README; then python3 bench/table.py readme bench/send.sh < "$work/report"; fi
  exit 0
fi

# One large list: peak memory, freezing time, and a CLI unsubscribe on the file.
site="$work/big"
make_site "$site" "$BIG"
timed "digestif send ($BIG)" "$BIG" env DIGESTIF_NOW=$NOW "$BIN" --verbose --config "$site/digestif.toml" send --week $WEEK
send_rss=$MAXRSS; send_wall=$WALL
freeze=$(grep -o 'froze [^:]*: [0-9]* recipients in [0-9.]* s' "$work/out" | grep -o '[0-9.]* s$' | head -1)
victim="reader$((BIG / 2))@bench$(( (BIG / 2) % 97 )).example.org"
timed "subscribers unsubscribe" 0 "$BIN" --config "$site/digestif.toml" subscribers unsubscribe "$victim"
unsub_wall=$WALL; unsub_rss=$MAXRSS
grep -q "status = \"unsubscribed\"" "$site/subscribers.example.toml" || { echo "FAILED: the unsubscribe did not reach the file" >&2; exit 1; }
big_report() {
  if $MARKDOWN; then
    echo
    echo "| $(f0 "$BIG") subscribers | |"
    echo "|---|---|"
    echo "| \`send\`: peak RSS | $(py "print(f'{$send_rss / 1024:.1f} MB')") |"
    echo "| \`send\`: freezing (validation and ledger rows) | ${freeze:-?} |"
    echo "| \`send\`: whole run | $(py "print(f'{$send_wall:.0f} s')") |"
    echo "| \`subscribers unsubscribe\` | $(py "print(f'{$unsub_wall:.2f} s')"), peak RSS $(py "print(f'{$unsub_rss / 1024:.1f} MB')") |"
  else
    echo
    echo "$BIG subscribers: send peak RSS $(py "print(f'{$send_rss / 1024:.1f}')") MB, freezing ${freeze:-?}, whole run ${send_wall} s; subscribers unsubscribe ${unsub_wall} s (peak RSS $(py "print(f'{$unsub_rss / 1024:.1f}')") MB)"
  fi
}
report > "$work/report"
cat "$work/report"
if $README; then python3 bench/table.py readme bench/send.sh < "$work/report"; fi
