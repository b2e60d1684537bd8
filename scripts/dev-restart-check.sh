#!/usr/bin/env bash
# make dev-restart-check: starts `make dev`, submits three messages over
# REST, waits for their receipts, stops `make dev` (Ctrl-C), starts it
# again on the same .data, and reads the messages and their events back:
# what `make dev` stored must survive its restart. Uses make dev's ports,
# so run it when `make dev` is not running.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/smsgw-dev-restart.XXXXXX)
api=http://127.0.0.1:8080
auth='Authorization: Bearer demo-key'
dev_pid=""
start() { # name
  setsid ./scripts/dev.sh >"$WORK/dev-$1.log" 2>&1 &
  dev_pid=$!
  for _ in $(seq 1 300); do curl -sf "$api/readyz" >/dev/null && return 0; sleep 1; done
  echo "make dev did not become ready (log: $WORK/dev-$1.log)" >&2; exit 1
}
stop() { # Ctrl-C to the whole process group, as a terminal sends it
  kill -INT -- "-$dev_pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$dev_pid" 2>/dev/null || return 0; sleep 1; done
  kill -KILL -- "-$dev_pid" 2>/dev/null || true
}
trap stop EXIT
read_back() { # file
  for id in "${ids[@]}"; do
    curl -s "$api/v1/messages/$id" -H "$auth"; echo
    curl -s "$api/v1/messages/$id/events" -H "$auth" | grep -o '"type": *"[a-z_]*"' | tr '\n' ' '; echo
  done >"$1"
}

start first
ids=()
for i in 1 2 3; do
  ids+=("$(curl -s -X POST "$api/v1/messages" -H "$auth" \
    -d "{\"from\":\"DEMO\",\"to\":\"+6141234567$i\",\"text\":\"before the restart $i\"}" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')")
done
for id in "${ids[@]}"; do
  [ -n "$id" ] || { echo "FAIL: a submission was not accepted (log: $WORK/dev-first.log)" >&2; exit 1; }
done
sleep 5
read_back "$WORK/before.txt"
stop
start second
read_back "$WORK/after.txt"
cat "$WORK/after.txt"
if [ "$(grep -c DELIVERED "$WORK/before.txt")" != "${#ids[@]}" ] || ! diff "$WORK/before.txt" "$WORK/after.txt"; then
  echo "FAIL: what make dev stored changed across its restart (files in $WORK)" >&2; exit 1
fi
echo "PASS: ${#ids[@]} messages and their events read back whole after make dev restarted"
