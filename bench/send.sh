#!/usr/bin/env bash
# End-to-end sending benchmark (issue 5). In one run, rep by rep, on the same Postfix
# smtp-sink on 127.0.0.1, with a message of the same size at the same concurrency:
#   - digestif send (ledger on, per-subscriber messages, rendering and freezing included)
#   - a bare lettre loop (examples/bare_lettre.rs: prebuilt bytes, no ledger)
#   - Postfix's smtp-source
# prints messages/s for each and the ratios, then peak memory of digestif send and
# send --dry-run at several list sizes. The sink's own counter must confirm every message.
#
#   bench/send.sh                 N=5000, concurrency 1 4 16, 3 reps
#   N=100000 bench/send.sh        the large list
#   REPS=5 CONCURRENCY="4" MEMORY_SIZES="1000 10000 100000" bench/send.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-5000}
REPS=${REPS:-3}
CONCURRENCY=${CONCURRENCY:-"1 4 16"}
MEMORY_SIZES=${MEMORY_SIZES-"1000 10000 100000"}
PORT=${PORT:-25250}
NOW="2012-01-09T12:00:00+01:00"
WEEK="2011-W52"

if ! command -v smtp-sink >/dev/null || ! command -v smtp-source >/dev/null; then
  echo "installing postfix (for smtp-sink and smtp-source)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postfix >/dev/null
fi
# The package starts a mail daemon; the benchmark wants only the sink.
postfix stop >/dev/null 2>&1 || true
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }

cargo build --profile profiling --quiet --bin digestif --example bare_lettre
BIN=$PWD/target/profiling/digestif
BARE=$PWD/target/profiling/examples/bare_lettre

work=$(mktemp -d)
sink_pid=""
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# A site: the sample posts, a plain-SMTP config pointing at the sink, N subscribers.
make_site() { # dir count
  local dir=$1 count=$2
  mkdir -p "$dir"
  cp -r posts "$dir/posts"
  sed -e "s/^port = 587/port = $PORT/" -e 's/^tls = "starttls"/tls = "none"/' \
      -e 's/^host = "localhost"/host = "127.0.0.1"/' -e 's/^concurrency = 4/concurrency = 4/' \
      digestif.toml > "$dir/digestif.toml"
  python3 - "$dir/subscribers.example.toml" "$count" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        f.write(f'[[subscriber]]\nemail = "reader{i}@bench{i % 97}.example.org"\nname = "Reader {i}"\n\n')
PY
}

make_site "$work/site" "$N"
make_site "$work/one" 1
DIGESTIF_NOW=$NOW "$BIN" --config "$work/one/digestif.toml" send --dry-run --week $WEEK --out "$work/one/dry" >/dev/null
MSG=$(ls "$work"/one/dry/$WEEK/*.eml | head -1)
SIZE=$(wc -c < "$MSG")

smtp-sink -c -u nobody 127.0.0.1:$PORT 1024 > "$work/sink.out" 2>&1 &
sink_pid=$!
sleep 0.5

sink_count() { tr '\r' '\n' < "$work/sink.out" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 || echo 0; }
now() { date +%s.%N; }
rate() { python3 -c "print(f'{$1 / ($3 - $2):.0f}')"; }
confirm() { # label before expected
  local after; sleep 0.2; after=$(sink_count); after=${after:-0}
  if [ $((after - $2)) -ne "$3" ]; then
    echo "FAILED: $1: the sink counted $((after - $2)) messages, expected $3" >&2; exit 1
  fi
}
median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.0f}')" "$@"; }

echo "digestif send benchmark: N=$N messages of $SIZE bytes, $REPS reps, $(nproc) cores, sink and client on one machine"
printf "%-6s %12s %12s %12s %10s %10s\n" conc digestif bare_lettre smtp-source "d/lettre" "d/source"
for C in $CONCURRENCY; do
  d=(); l=(); s=()
  for rep in $(seq "$REPS"); do
    before=$(sink_count); before=${before:-0}; t0=$(now)
    smtp-source -d -s "$C" -m "$N" -N -F "$MSG" -f bench@example.org -t r@example.org 127.0.0.1:$PORT
    t1=$(now); confirm smtp-source "$before" "$N"; s+=("$(rate "$N" "$t0" "$t1")")

    before=$(sink_count); before=${before:-0}
    read -r _ secs < <("$BARE" 127.0.0.1 $PORT "$C" "$N" "$MSG")
    confirm bare_lettre "$before" "$N"; l+=("$(python3 -c "print(f'{$N / $secs:.0f}')")")

    rm -rf "$work/site/state"
    before=$(sink_count); before=${before:-0}; t0=$(now)
    DIGESTIF_NOW=$NOW "$BIN" --config "$work/site/digestif.toml" send --week $WEEK --concurrency "$C" >/dev/null
    t1=$(now); confirm digestif "$before" "$N"; d+=("$(rate "$N" "$t0" "$t1")")
  done
  md=$(median "${d[@]}"); ml=$(median "${l[@]}"); ms=$(median "${s[@]}")
  printf "%-6s %12s %12s %12s %10s %10s\n" "$C" "$md/s" "$ml/s" "$ms/s" \
    "$(python3 -c "print(f'{$md/$ml:.2f}x')")" "$(python3 -c "print(f'{$md/$ms:.2f}x')")"
done
echo "(medians of $REPS reps; each rep runs the three in turn on the same sink)"

# The ledger's durability level: "normal" (above) survives a killed process; "full"
# fsyncs every commit and survives power loss too. Same N, concurrency 4, one run each.
sed 's/^rate_per_s = 0/rate_per_s = 0\nledger_sync = "full"/' "$work/site/digestif.toml" > "$work/site/full.toml"
for sync in normal full; do
  config="$work/site/digestif.toml"; [ "$sync" = full ] && config="$work/site/full.toml"
  rm -rf "$work/site/state"
  before=$(sink_count); before=${before:-0}; t0=$(now)
  DIGESTIF_NOW=$NOW "$BIN" --config "$config" send --week $WEEK --concurrency 4 >/dev/null
  t1=$(now); confirm "digestif ($sync)" "$before" "$N"
  printf "ledger_sync = %-8s %10s/s\n" "\"$sync\"" "$(rate "$N" "$t0" "$t1")"
done

echo
echo "peak memory (max RSS, /usr/bin/time -v), concurrency 4"
printf "%-12s %14s %14s\n" subscribers send "send --dry-run"
for M in $MEMORY_SIZES; do
  make_site "$work/mem$M" "$M"
  before=$(sink_count); before=${before:-0}
  /usr/bin/time -v env DIGESTIF_NOW=$NOW "$BIN" --config "$work/mem$M/digestif.toml" send --week $WEEK >/dev/null 2> "$work/time.send"
  confirm "digestif send ($M)" "$before" "$M"
  /usr/bin/time -v env DIGESTIF_NOW=$NOW "$BIN" --config "$work/mem$M/digestif.toml" send --dry-run --week $WEEK --out "$work/mem$M/dry" >/dev/null 2> "$work/time.dry"
  rss() { grep "Maximum resident" "$1" | awk '{printf "%.1f MB", $6/1024}'; }
  printf "%-12s %14s %14s\n" "$M" "$(rss "$work/time.send")" "$(rss "$work/time.dry")"
  rm -rf "$work/mem$M"
done
