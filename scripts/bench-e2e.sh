#!/usr/bin/env bash
# make bench-e2e: in one run on this machine, measures the bare workflow on a
# Temporal dev server configured as `make dev` configures it (file database,
# WAL), then the `make dev` stack under REST load, the bare workflow again,
# the stack under SMPP load and the bare workflow a third time, and prints
# one table: rates and all-in CPU per message, each load against the mean
# of the two bare runs either side of it, latencies, CPU per message per
# process and history events per message. Each phase has a fresh server.
#
#   N=2000 CONCURRENCY=32 RATE=0 MAX_BACKLOG=128 POLLERS=16 make bench-e2e
#
# RATE > 0 runs the load open loop at that many submissions per second.
# MAX_BACKLOG is smsgw's -max-backlog (the load tool retries what it refuses);
# SMSGW_FLAGS adds flags to `smsgw all`. POLLERS is smsgw's -pollers, and as
# many pollers poll for the bare workflow's worker. FIRST=smpp runs the SMPP
# load before the REST one.
# Each load also prints, by fifths of its final notifications, how fast they
# came and the CPU a message each process used meanwhile (from a sample of
# /proc and smsgw's metrics every 5 s, kept as series-MODE.txt).
# PROFILE=1 keeps 20 s of smsgw's CPU profile of each load in the work folder,
# and with perf installed the Temporal and MongoDB-wire servers' samples.
# Everything listens on loopback ports of its own (17233, 37017, 33307,
# 12775, 12776, 18080, 19102), so it runs beside `make dev`.
# As in `make dev`, every process this script starts but the Temporal
# server runs at nice SMSGW_DEV_NICE (10 by default) and, where chrt
# works, in the batch scheduling class (SMSGW_DEV_BATCH=0 turns that
# off), with Go on SMSGW_DEV_PROCS processors (1 by default): the stack's,
# the load tool and the simulator, and on the bare workflow's side its
# worker and load, one process. A local MariaDB keeps its own priority.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
N=${N:-2000}
CONC=${CONCURRENCY:-32}
POLLERS=${POLLERS:-16}
RATE=${RATE:-0}
WORK=$(mktemp -d /tmp/smsgw-bench-e2e.XXXXXX)
source scripts/priority.sh
pids=()
cleanup() {
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -INT "${pids[i]}" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_port() { # port name
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "$2 did not come up on 127.0.0.1:$1" >&2; exit 1
}
# cpu PID: the CPU seconds (user + system) a process has used so far.
cpu() { awk '{printf "%.2f", ($14+$15)/100}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# machine: the whole machine's context switches so far, the CPU time the
# hypervisor took from it (steal), all its CPU time, the time its kernel
# spent working (system, interrupts) and its busy time (user, nice and the
# kernel's), in ticks.
machine() { awk '$1 == "cpu" {steal = $9; for (i = 2; i <= NF; i++) all += $i; kernel = $4 + $7 + $8; busy = $2 + $3 + kernel} $1 == "ctxt" {ctxt = $2} END {print ctxt, steal, all, kernel, busy}' /proc/stat; }
# machineRow PHASE BEFORE AFTER: a line of what the machine did during a
# phase, every process included (the load tool and the simulator too): its
# context switches a message, the share of its busy time spent in the
# kernel (system calls, switches, interrupts), and the share of its time
# the hypervisor took (a run with steal well above 0 was not on a quiet
# machine).
machineRows=()
machineRow() {
  machineRows+=("$(echo "$2 $3" | awk -v p="$1" -v n="$N" '{printf "  %s: %.0f context switches a message, kernel %.0f%% of the busy time, steal %.1f%% of the CPU time", p, ($6-$1)/n, (($10-$5) > 0 ? 100*($9-$4)/($10-$5) : 0), (($8-$3) > 0 ? 100*($7-$2)/($8-$3) : 0)}')")
}
# profileProcess NAME PID: with perf installed, 20 s of a server's CPU
# samples from 5 s on, in the work folder (perf report -i ...).
profileProcess() {
  command -v perf >/dev/null 2>&1 || return 0
  (sleep 5; perf record -q -F 199 -g -p "$2" -o "$WORK/$1.perf" -- sleep 20 >/dev/null 2>&1) &
}
# persistence: Temporal's persistence requests so far, a line per operation.
persistence() {
  curl -s http://127.0.0.1:17299/metrics | awk '/^persistence_requests\{/ {
    match($0, /operation="[^"]*"/); op = substr($0, RSTART + 11, RLENGTH - 12); n[op] += $NF }
    END { for (op in n) print op, n[op] }' | sort
}
# perMessage BEFORE AFTER N OUT: the persistence requests per message between two snapshots.
perMessage() {
  join -a2 -e0 -o 0,1.2,2.2 "$1" "$2" | awk -v n="$3" '{d = ($3 - $2) / n; if (d > 0.005) {printf "%-40s %.2f\n", $1, d; t += d}} END {printf "%-40s %.2f\n", "all", t}' | sort >"$4"
}
# field FILE PATTERN N: the Nth word of the line of FILE that starts with PATTERN.
field() { awk -v p="$2" -v n="$3" 'index($0, p) == 1 {print $n; exit}' "$1"; }
ms() { # a Go duration (1.2s, 340ms, 2m3s) in milliseconds
  awk -v d="$1" 'BEGIN {
    t = 0; while (match(d, /^[0-9.]+(h|ms|µs|us|ns|m|s)/)) {
      part = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
      v = part + 0; u = part; sub(/^[0-9.]+/, "", u)
      t += v * (u == "h" ? 3600000 : u == "m" ? 60000 : u == "s" ? 1000 : u == "ms" ? 1 : 0.001)
    } printf "%.0f", t }'
}

echo "building the bench binary and smsgw..."
go build -o "$BIN/smsgw" ./cmd/smsgw
go test -c -o "$WORK/bench.test" ./bench

# startTemporal PHASE: a fresh Temporal dev server as `make dev` runs it.
# Each phase (the bare workflow, REST, SMPP) starts on a fresh server and
# fresh databases, so none pays for the histories an earlier one left.
temporal_args_text=$("$BIN/smsgw" temporal-dev-args) # fails the script if smsgw cannot say
mapfile -t temporal_args <<<"$temporal_args_text"
startTemporal() {
  "$BIN/temporal" server start-dev --ip 127.0.0.1 --port 17233 --ui-port 18233 --db-filename "$WORK/temporal-$1.db" \
    --metrics-port 17299 "${temporal_args[@]}" >"$WORK/temporal-$1.log" 2>&1 &
  temporal_pid=$!; pids+=("$temporal_pid")
  wait_port 17233 Temporal
}
# stopAll: stops every process started so far and waits for its ports.
stopAll() {
  cleanup
  pids=()
  for port in 17233 37017 33307 12775 12776 18080 18099 19102; do
    for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break; sleep 0.2; done
  done
}

# series PHASE: every 5 s of a phase, the seconds since it started, the CPU
# seconds each process of the stack has used so far and how many messages
# have ended so far: final notifications on the load's own channel (the
# demo customer's webhook for REST, its bind for SMPP), or for the bare
# workflow its completed workflow tasks over three (Temporal's metrics); a
# line each, in the work folder; stopped by a kill.
series() {
  local t=0 channel=webhook
  [ "$1" = smpp ] && channel=smpp
  while :; do
    case $1 in
    before | between | after)
      echo "$t $(cpu "$temporal_pid") 0 0 0 $(curl -s http://127.0.0.1:17299/metrics | awk '/^service_requests\{/ && /operation="RespondWorkflowTaskCompleted"/ && /service_name="frontend"/ {n += $NF} END {printf "%d", n / 3}')" ;;
    *)
      curl -s http://127.0.0.1:17299/metrics >/dev/null # as for the bare workflow, so both servers pay for it
      echo "$t $(cpu "$temporal_pid") $(cpu "$devdb_pid") $( [ -n "$mysql_pid" ] && cpu "$mysql_pid" || echo 0) $(cpu "$smsgw_pid") $(curl -s http://127.0.0.1:19102/metrics | awk -v c="channel=\"$channel\"" '/^smsgw_notifications_total\{/ && index($0, c) && /result="ok"/ {n += $NF} END {print n + 0}')" ;;
    esac
    sleep 5; t=$((t + 5))
  done >"$WORK/series-$1.txt"
}
# fifths PHASE: from the series, each fifth of the messages that ended: how
# fast they ended and the CPU-ms a message each process used meanwhile
# (for the bare workflow, its server's only).
fifths() {
  awk -v phase="$1" '{t[NR] = $1; a[NR] = $2; b[NR] = $3; c[NR] = $4; d[NR] = $5; f[NR] = $6} END {
    total = f[NR]; if (total < 5) exit
    bare = phase == "before" || phase == "between" || phase == "after"
    if (bare) printf "bare workflow (%s), by fifths of its workflows: ended/s, CPU-ms a workflow of its Temporal server\n", phase
    else printf "%s, by fifths of its final notifications: final/s, CPU-ms a message (Temporal, MongoDB-wire, MySQL, smsgw, all)\n", phase
    from = 1
    for (k = 1; k <= 5; k++) {
      want = total * k / 5; to = from
      while (to < NR && f[to] < want) to++
      n = f[to] - f[from]
      if (n > 0 && t[to] > t[from]) {
        if (bare) printf "  %d/5: %.1f/s, %.1f\n", k, n / (t[to] - t[from]), (a[to] - a[from]) * 1000 / n
        else printf "  %d/5: %.1f/s, %.1f %.1f %.1f %.1f %.1f\n", k, n / (t[to] - t[from]),
          (a[to] - a[from]) * 1000 / n, (b[to] - b[from]) * 1000 / n, (c[to] - c[from]) * 1000 / n, (d[to] - d[from]) * 1000 / n,
          (a[to] - a[from] + b[to] - b[from] + c[to] - c[from] + d[to] - d[from]) * 1000 / n
      }
      from = to
    }
  }' "$WORK/series-$1.txt"
}
fifthRows=()

# bare PHASE: the bare workflow on a fresh Temporal, closed loop, as many
# in flight as the load, its signal 500 ms after its activity (the
# simulator's receipt delay). It runs before, between and after the
# loads, and each load is held against the mean of the two runs either
# side of it: on a shared machine the speed of the cores drifts over the
# minutes a run takes, and a floor measured ten minutes from its load
# moves the ratio with the machine.
bare_rows=()
bare_rates=()
bare_cpus=()
bare() {
  local phase=$1 t0 t1 worker rate events tasks m0
  startTemporal "$phase"
  sleep 5 # the server's own start-up work, done before a stack's load starts too
  echo "bare workflow ($phase): $N workflows, $CONC in flight..."
  t0=$(cpu "$temporal_pid"); persistence >"$WORK/p-$phase-0"; m0=$(machine)
  [ -n "${PROFILE:-}" ] && profileProcess "temporal-$phase" "$temporal_pid"
  series "$phase" &
  local series_pid=$!
  SMSGW_BENCH_TEMPORAL=127.0.0.1:17233 SMSGW_BENCH_IN_FLIGHT=$CONC SMSGW_BENCH_POLLERS=$POLLERS /usr/bin/time -f "%U %S" -o "$WORK/floor-$phase.time" \
    "${lower[@]}" "$WORK/bench.test" -test.run '^$' -test.bench 'Floor/receipt=500ms' -test.benchtime "${N}x" >"$WORK/floor-$phase.txt" 2>&1
  machineRow "bare workflow, $phase" "$m0" "$(machine)"
  kill "$series_pid" 2>/dev/null || true
  wait "$series_pid" 2>/dev/null || true
  fifthRows+=("$(fifths "$phase")")
  t1=$(cpu "$temporal_pid"); persistence >"$WORK/p-$phase-1"
  perMessage "$WORK/p-$phase-0" "$WORK/p-$phase-1" "$N" "$WORK/persistence-$phase.txt"
  curl -s http://127.0.0.1:17299/metrics >"$WORK/temporal-metrics-$phase.txt" || true
  stopAll
  rate=$(awk '/workflows\/s/ {for (i=1;i<=NF;i++) if ($(i+1)=="workflows/s") print $i}' "$WORK/floor-$phase.txt")
  events=$(awk '/events\/msg/ {for (i=1;i<=NF;i++) if ($(i+1)=="events/msg") print $i}' "$WORK/floor-$phase.txt")
  tasks=$(awk '/wftasks\/msg/ {for (i=1;i<=NF;i++) if ($(i+1)=="wftasks/msg") print $i}' "$WORK/floor-$phase.txt")
  [ -n "$rate" ] || { echo "the bare workflow did not run:" >&2; cat "$WORK/floor-$phase.txt" >&2; exit 1; }
  worker=$(awk '{print $1+$2}' "$WORK/floor-$phase.time")
  bare_rates+=("$rate")
  bare_cpus+=("$(awk -v a="$t0" -v b="$t1" -v w="$worker" -v n="$N" 'BEGIN {printf "%.1f", (b-a+w)*1000/n}')")
  bare_rows+=("$(awk -v p="$phase" -v r="$rate" -v e="$events" -v k="$tasks" -v a="$t0" -v b="$t1" -v w="$worker" -v n="$N" \
    'BEGIN { printf "| bare workflow, %s (%s events, %s tasks) | %s | – | – | – | – | %.1f | – | – | %.1f (its worker) | %.1f | – | – |", p, e, k, r, (b-a)*1000/n, w*1000/n, (b-a+w)*1000/n }')")
}

bare before

# startStack MODE: the make dev stack on a fresh Temporal: the embedded
# MongoDB-wire server, the reporting database make dev would use, the SMSC
# simulator and `smsgw all`.
startStack() {
startTemporal "$1"
mysql_pid=""
dsn='root@tcp(127.0.0.1:33307)/smsgw?parseTime=true&loc=UTC'
mysql_addr=127.0.0.1:33307
for client in mariadb mysql; do
  if command -v "$client" >/dev/null 2>&1 &&
     "$client" --protocol=tcp -h127.0.0.1 -P3306 -uroot -e 'DROP DATABASE IF EXISTS smsgw_bench; CREATE DATABASE smsgw_bench' >/dev/null 2>&1; then
    dsn='root@tcp(127.0.0.1:3306)/smsgw_bench?parseTime=true&loc=UTC'
    mysql_addr=""
    mysql_pid=$(pgrep -o -x mariadbd || pgrep -o -x mysqld || true)
    break
  fi
done
"${lower[@]}" "$BIN/devdb" -mongo-addr 127.0.0.1:37017 -mysql-addr "$mysql_addr" -data "$WORK/ferretdb-$1" >"$WORK/devdb-$1.out" 2>"$WORK/devdb-$1.log" &
devdb_pid=$!; pids+=("$devdb_pid")
wait_port 37017 "MongoDB-wire server"
"${lower[@]}" "$BIN/smsgw" smsc-sim -addr 127.0.0.1:12776 -receipt-delay 500ms >"$WORK/sim-$1.log" 2>&1 &
sim_pid=$!; pids+=("$sim_pid")
# The demo customer's own webhook (the message counted at the end uses it).
"${lower[@]}" "$BIN/smsgw" webhook-sink -addr 127.0.0.1:18099 -secret demo-webhook-secret >"$WORK/sink-$1.log" 2>&1 &
sink_pid=$!; pids+=("$sink_pid")
# Payloads sealed with a key of their own, as make dev seals them.
mkdir -p "$WORK/payload-keys" && chmod 700 "$WORK/payload-keys"
head -c 32 /dev/urandom | base64 >"$WORK/payload-keys/bench-1"
head -c 32 /dev/urandom | base64 >"$WORK/workflow-id-key"
sed "s|@UPSTREAM@|127.0.0.1:12776|; s|127.0.0.1:8099|127.0.0.1:18099|" scripts/dev-config.yaml >"$WORK/config.yaml"
"${lower[@]}" "$BIN/smsgw" all -config "$WORK/config.yaml" -http-addr 127.0.0.1:18080 -grpc-addr 127.0.0.1:19090 \
  -metrics-addr 127.0.0.1:19102 -smpp-addr 127.0.0.1:12775 -smtp-addr 127.0.0.1:12525 -temporal-address 127.0.0.1:17233 \
  -mongodb-uri mongodb://127.0.0.1:37017/ -mongodb-database smsgw_bench -mysql-dsn "$dsn" \
  -payload-keys-dir "$WORK/payload-keys" -workflow-id-key-file "$WORK/workflow-id-key" -temporal-compression none -send-here \
  -max-backlog "${MAX_BACKLOG:-128}" -pollers "$POLLERS" $( [ -n "${PROFILE:-}" ] && echo -pprof ) ${SMSGW_FLAGS:-} -log-format text -log-level warn >"$WORK/smsgw-$1.log" 2>&1 &
smsgw_pid=$!; pids+=("$smsgw_pid")
wait_port 18080 smsgw
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18080/readyz >/dev/null && break; sleep 0.3; done

}

loads=()
outside=()
load() { # mode
  local mode=$1 out="$WORK/load-$1.txt"
  echo "make dev stack, $mode: $N messages, $CONC in flight$( [ "$RATE" != 0 ] && echo ", $RATE/s open loop")..."
  local a0 b0 c0 d0 a1 b1 c1 d1 s0 s1 k0 k1 m0
  persistence >"$WORK/p-$mode-0"; m0=$(machine)
  a0=$(cpu "$temporal_pid"); b0=$(cpu "$devdb_pid"); c0=$( [ -n "$mysql_pid" ] && cpu "$mysql_pid" || echo 0); d0=$(cpu "$smsgw_pid")
  if [ -n "${PROFILE:-}" ]; then # 20 s of smsgw's CPU profile, from 5 s into the load
    (sleep 5; curl -s "http://127.0.0.1:19102/debug/pprof/profile?seconds=20" -o "$WORK/smsgw-$mode.pprof") &
    profileProcess "temporal-$mode" "$temporal_pid"
    profileProcess "devdb-$mode" "$devdb_pid"
  fi
  s0=$(cpu "$sim_pid"); k0=$(cpu "$sink_pid")
  series "$mode" &
  local series_pid=$!
  /usr/bin/time -f "%U %S" -o "$WORK/loadtool-$mode.time" "${lower[@]}" "$BIN/smsgw" loadtest -mode "$mode" -n "$N" -concurrency "$CONC" -window "$CONC" -rate "$RATE" $( [ "$RATE" = 0 ] && echo -in-flight "$CONC" ) \
    -url http://127.0.0.1:18080 -smpp-addr 127.0.0.1:12775 -wait 5m >"$out" 2>&1 || true
  machineRow "make dev, $mode" "$m0" "$(machine)"
  kill "$series_pid" 2>/dev/null || true
  wait "$series_pid" 2>/dev/null || true
  fifthRows+=("$(fifths "$mode")")
  persistence >"$WORK/p-$mode-1"
  curl -s http://127.0.0.1:19102/metrics >"$WORK/metrics-$mode.txt" || true
  curl -s http://127.0.0.1:17299/metrics >"$WORK/temporal-metrics-$mode.txt" || true
  perMessage "$WORK/p-$mode-0" "$WORK/p-$mode-1" "$N" "$WORK/persistence-$mode.txt"
  s1=$(cpu "$sim_pid"); k1=$(cpu "$sink_pid")
  outside+=("$mode $(awk -v a="$s0" -v b="$s1" -v c="$k0" -v d="$k1" -v n="$N" '{printf "%.1f ms (simulator) + %.1f ms (load tool) + %.1f ms (the demo customer'"'"'s webhook)", (b-a)*1000/n, ($1+$2)*1000/n, (d-c)*1000/n}' "$WORK/loadtool-$mode.time")")
  a1=$(cpu "$temporal_pid"); b1=$(cpu "$devdb_pid"); c1=$( [ -n "$mysql_pid" ] && cpu "$mysql_pid" || echo 0); d1=$(cpu "$smsgw_pid")
  local rate acc lost dup e50 e99 a50 a99
  # The rate to more places than the load tool prints: the messages final
  # over the time they took ("delivered/s 33.1 (5000 DELIVERED, ...) over 2m31.269s").
  rate=$(awk -v d="$(ms "$(field "$out" "delivered/s" 9)")" -v n="$(field "$out" "delivered/s" 3 | tr -d '(')" \
    'BEGIN { if (d > 0) printf "%.3f", n * 1000 / d; else print 0 }')
  acc=$(field "$out" "accepted/s" 2)
  lost=$(field "$out" "lost" 2); dup=$(field "$out" "duplicated" 2)
  e50=$(field "$out" "end to end" 5); e99=$(field "$out" "end to end" 7)
  a50=$(field "$out" "accept latency" 4); a99=$(field "$out" "accept latency" 6)
  loads+=("$(awk -v m="$mode" -v r="$rate" -v acc="$acc" -v e50="$(ms "$e50")" -v e99="$(ms "$e99")" \
    -v a50="$(ms "$a50")" -v a99="$(ms "$a99")" -v t="$(awk -v a="$a0" -v b="$a1" 'BEGIN{print b-a}')" \
    -v d="$(awk -v a="$b0" -v b="$b1" 'BEGIN{print b-a}')" -v my="$(awk -v a="$c0" -v b="$c1" 'BEGIN{print b-a}')" \
    -v s="$(awk -v a="$d0" -v b="$d1" 'BEGIN{print b-a}')" -v n="$N" -v lost="$lost" -v dup="$dup" \
    'BEGIN { printf "%s %s %s %d %d %d %d %.1f %.1f %.1f %.1f %s %s", m, r, acc, e50, e99, a50, a99, t*1000/n, d*1000/n, my*1000/n, s*1000/n, lost, dup }')")
}
# countHistory: history events and workflow tasks of one REST message.
countHistory() {

id=""
for _ in $(seq 1 30); do # a backlog refusal (429) is retried
  answer=$(curl -s -X POST http://127.0.0.1:18080/v1/messages -H 'Authorization: Bearer demo-key' \
    -d '{"from":"DEMO","to":"+61412345678","text":"one to count"}')
  id=$(echo "$answer" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  [ -n "$id" ] && break
  sleep 1
done
[ -n "$id" ] || { echo "the message to count was not accepted: $answer" >&2; exit 1; }
sleep 3
events=$("$BIN/temporal" workflow describe -w "$id" --address 127.0.0.1:17233 -o json | jq -r '.workflowExecutionInfo.historyLength')
tasks=$("$BIN/temporal" workflow show -w "$id" --address 127.0.0.1:17233 -o json | jq '[.events[] | select(.eventType == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED")] | length')

}

# FIRST=smpp runs the SMPP load first: on a machine whose speed drifts
# over the quarter of an hour a run takes, the load in the second slot
# meets the later stretch, and swapping the loads tells that apart from
# what each path costs.
if [ "${FIRST:-rest}" = smpp ]; then order=(smpp rest); else order=(rest smpp); fi
for mode in "${order[@]}"; do
  startStack "$mode"
  load "$mode"
  if [ "$mode" = rest ]; then countHistory; fi
  stopAll
  if [ "$mode" = "${order[0]}" ]; then bare between; else bare after; fi
done

# Each load against the mean of the bare runs either side of it (the first
# load: before and between; the second: between and after): rate and
# all-in CPU.
rows=()
i=0
for l in "${loads[@]}"; do
  mode=${l%% *}
  floor_rate=$(awk -v a="${bare_rates[i]}" -v b="${bare_rates[i+1]}" 'BEGIN {printf "%.2f", (a+b)/2}')
  floor_cpu=$(awk -v a="${bare_cpus[i]}" -v b="${bare_cpus[i+1]}" 'BEGIN {printf "%.1f", (a+b)/2}')
  rows+=("| bare workflow, mean either side of $mode | $floor_rate | 100% | – | – | – | – | – | – | – | $floor_cpu | 1.00× | – |")
  rows+=("$(echo "$l" | awk -v f="$floor_rate" -v fc="$floor_cpu" '{ all = $8+$9+$10+$11
    printf "| make dev, %s | %.1f | %.1f%% | %s | %d / %d ms | %d / %d ms | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f× | %s / %s |", $1, $2, 100*$2/f, $3, $4, $5, $6, $7, $8, $9, $10, $11, all, all/fc, $12, $13 }')")
  i=$((i + 1))
done

cat <<TABLE

$(date -u +%F) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), N=$N, $CONC in flight, rate ${RATE} (0: closed loop), $POLLERS pollers a kind
reporting database: $( [ -n "$mysql_addr" ] && echo "embedded MySQL-wire server" || echo "local MariaDB/MySQL")

| run | final/s | of bare | accepted/s | end to end p50 / p99 | accept p50 / p99 | CPU-ms/msg Temporal | MongoDB-wire | MySQL | smsgw | all | of bare | lost / dup |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${bare_rows[@]}")
$(printf '%s\n' "${rows[@]}")

A REST message's history: $events events, $tasks workflow tasks.
CPU per message on the same cores, not counted above: $(printf '%s; ' "${outside[@]}")
Every process started here but the Temporal server at nice $dev_nice$( [ "${lower[0]}" = chrt ] && echo ", in the batch scheduling class" || true)$( [ "$dev_procs" != 0 ] && echo ", Go on $dev_procs processor(s) each" || true)$( [ -z "$mysql_addr" ] && echo " (the local MariaDB/MySQL at its own)" || true).
$(printf '%s\n' "${fifthRows[@]}")
The machine during each phase, every process on it:
$(printf '%s\n' "${machineRows[@]}")
Temporal persistence requests per message (bare / REST / SMPP):
$(join -a1 -a2 -e- -o 0,1.2,2.2 "$WORK/persistence-before.txt" "$WORK/persistence-rest.txt" | join -a1 -a2 -e- -o 0,1.2,1.3,2.2 - "$WORK/persistence-smpp.txt" | column -t)
Logs and load reports: $WORK
TABLE
