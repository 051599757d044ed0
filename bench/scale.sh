#!/usr/bin/env bash
# The list commands at scale: a generated list of N readers (default 1,000,000), each
# command timed once per rep with /usr/bin/time (wall seconds, peak RSS), medians printed
# beside issue 25's targets. Nothing is sent (the dry run writes previews only).
#
#   bench/scale.sh                 N=1000000, REPS=2
#   N=100000 REPS=3 bench/scale.sh
#
# Run it with nothing else busy: the figures are single commands on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."

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
EOF
printf '+++\ntitle = "One"\ndate = 2011-12-27T10:00:00Z\ncategory = "News"\n+++\nText.\n' > "$work/posts/one.md"
python3 - "$work" "$N" "$IMPORT" <<'EOF'
import sys
work, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(f"{work}/subscribers.toml", "w") as f:
    for i in range(n):
        f.write(f'[[subscriber]]\nemail = "reader{i:07d}@example.org"\n\n')
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
  "subscribers remove|< 2 s, < 100 MB|subscribers remove reader0500000@example.org"
  "subscribers unsubscribe|< 2 s, < 100 MB|subscribers unsubscribe reader0500001@example.org"
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
