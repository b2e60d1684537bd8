#!/usr/bin/env bash
# Runs the whole gateway on this machine: a Temporal dev server (UI on :8233),
# an embedded MongoDB-wire and MySQL-wire server (unless SMSGW_MONGODB_URI /
# SMSGW_MYSQL_DSN point at real ones), the SMSC simulator (unless UPSTREAM is
# set), a webhook sink that prints receipts, and `smsgw all`. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
DATA=$PWD/.data
mkdir -p "$DATA"
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -INT "${pids[i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

wait_port() { # host port name
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "$3 did not come up on $1:$2" >&2; exit 1
}

# Message texts and numbers are sealed in Temporal (docs/security.md): a
# payload key, the workflow ID key and the codec server's token, made once
# and kept in .data with Temporal's database (whose histories they open).
keys=$DATA/payload-keys
if [ ! -d "$keys" ]; then
  mkdir -p "$keys" && chmod 700 "$keys"
  head -c 32 /dev/urandom | base64 >"$keys/dev-1"
fi
[ -s "$DATA/workflow-id-key" ] || head -c 32 /dev/urandom | base64 >"$DATA/workflow-id-key"
[ -s "$DATA/codec-token" ] || head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$DATA/codec-token"
codec_token=$(cat "$DATA/codec-token")
codec=http://127.0.0.1:8089/codec

# Everything but the Temporal server runs below it: nice 10 and the batch
# scheduling class (scripts/priority.sh; on two cores about a tenth more
# messages a second), with Go on one processor each. Where Temporal has
# machines of its own, none of this applies.
source scripts/priority.sh

# The server's settings (its database, the search attributes, its queues'
# checkpoints) are the ones `make bench-e2e` and the soak use too: see
# temporalDevArgs in cmd/smsgw/temporaldev.go.
temporal_args_text=$("$BIN/smsgw" temporal-dev-args) # fails the script if smsgw cannot say
mapfile -t temporal_args <<<"$temporal_args_text"
"$BIN/temporal" server start-dev --ip 127.0.0.1 --port 7233 --ui-port 8233 \
  --db-filename "$DATA/temporal.db" --ui-codec-endpoint "$codec/$codec_token" \
  "${temporal_args[@]}" >"$DATA/temporal.log" 2>&1 &
pids+=($!)

# The reporting database: a local MariaDB or MySQL server when one answers
# at 127.0.0.1:3306 as root without a password (database smsgw_dev, kept
# across restarts), else the embedded MySQL-wire server, which keeps its
# rows in memory only and slows down as they grow: fine for a look around,
# not for load.
if [ -z "${SMSGW_MYSQL_DSN:-}" ]; then
  for client in mariadb mysql; do
    if command -v "$client" >/dev/null 2>&1 &&
       "$client" --protocol=tcp -h127.0.0.1 -P3306 -uroot -e 'CREATE DATABASE IF NOT EXISTS smsgw_dev' >/dev/null 2>&1; then
      export SMSGW_MYSQL_DSN='root@tcp(127.0.0.1:3306)/smsgw_dev?parseTime=true&loc=UTC'
      reporting="MariaDB/MySQL at 127.0.0.1:3306, database smsgw_dev"
      break
    fi
  done
fi

mongo_addr=127.0.0.1:27017; mysql_addr=127.0.0.1:3307
[ -n "${SMSGW_MONGODB_URI:-}" ] && mongo_addr=""
[ -n "${SMSGW_MYSQL_DSN:-}" ] && mysql_addr=""
reporting=${reporting:-$([ -n "$mysql_addr" ] && echo "embedded MySQL-wire server at $mysql_addr (in memory)" || echo "the server in SMSGW_MYSQL_DSN")}
if [ -n "$mongo_addr$mysql_addr" ]; then
  "${lower[@]}" "$BIN/devdb" -mongo-addr "$mongo_addr" -mysql-addr "$mysql_addr" -data "$DATA/ferretdb" >"$DATA/devdb.out" 2>"$DATA/devdb.log" &
  pids+=($!)
  [ -n "$mongo_addr" ] && wait_port 127.0.0.1 27017 "MongoDB-wire server"
  [ -n "$mysql_addr" ] && wait_port 127.0.0.1 3307 "MySQL-wire server"
fi
export SMSGW_MONGODB_URI=${SMSGW_MONGODB_URI:-mongodb://127.0.0.1:27017/}
export SMSGW_MYSQL_DSN=${SMSGW_MYSQL_DSN:-root@tcp(127.0.0.1:3307)/smsgw?parseTime=true&loc=UTC}

upstream=${UPSTREAM:-}
if [ -z "$upstream" ]; then
  upstream=127.0.0.1:2776
  "${lower[@]}" "$BIN/smsgw" smsc-sim -addr "$upstream" -receipt-delay 500ms >"$DATA/smsc-sim.log" 2>&1 &
  pids+=($!)
fi

"${lower[@]}" "$BIN/smsgw" webhook-sink -addr 127.0.0.1:8099 -secret demo-webhook-secret &
pids+=($!)

sed "s|@UPSTREAM@|$upstream|" scripts/dev-config.yaml >"$DATA/config.yaml"
wait_port 127.0.0.1 7233 "Temporal"
"${lower[@]}" "$BIN/smsgw" all -config "$DATA/config.yaml" -config-file-wins -http-addr 127.0.0.1:8080 -grpc-addr 127.0.0.1:9090 \
  -metrics-addr 127.0.0.1:9102 -smpp-addr 127.0.0.1:2775 -smtp-addr 127.0.0.1:2525 \
  -payload-keys-dir "$keys" -workflow-id-key-file "$DATA/workflow-id-key" \
  -codec-addr 127.0.0.1:8089 -codec-tokens-file "$DATA/codec-token" \
  -codec-origins http://127.0.0.1:8233,http://localhost:8233 -temporal-compression none -send-here \
  -log-format text >"$DATA/smsgw.log" 2>&1 &
pids+=($!)
wait_port 127.0.0.1 8080 "smsgw"

cat <<MSG

smsgw is running (logs in .data/*.log; Ctrl-C stops everything)
  REST        http://127.0.0.1:8080   (API key: demo-key)
  gRPC        127.0.0.1:9090
  metrics     http://127.0.0.1:9102/metrics   (also /healthz, /readyz)
  Temporal UI http://127.0.0.1:8233   (search: CustomerId = "demo"; payloads opened by the codec server)
  codec       $codec   (payload keys in .data/payload-keys; token in .data/codec-token)
  upstream    $upstream $( [ -z "${UPSTREAM:-}" ] && echo "(SMSC simulator, receipts after 500ms)")
  webhooks    printed below by the webhook sink at http://127.0.0.1:8099
  SMPP        127.0.0.1:2775   (system_id demo, password demo1234)
  reporting   $reporting
  email       127.0.0.1:2525   (mail <msisdn>@sms.localhost from demo@example.com)

Try:
  curl -s -X POST http://127.0.0.1:8080/v1/messages -H 'Authorization: Bearer demo-key' \\
    -d '{"from":"DEMO","to":"+61412345678","text":"Hello from smsgw"}'
  bin/temporal workflow show -w <id> --codec-endpoint $codec --codec-auth "Bearer \$(cat .data/codec-token)"

MSG
wait -n "${pids[@]}"
