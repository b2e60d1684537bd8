# Sourced by dev.sh and bench-e2e.sh: sets `lower`, the command prefix that
# starts a process below the Temporal server. On one small machine every
# message waits on the Temporal server, which reaches its SQLite file
# through a single connection, one statement at a time; each time another
# process takes the core from the thread on that connection, every
# workflow waits (docs/performance.md, steps 15 and 28). So the other
# processes run at nice SMSGW_DEV_NICE (10 by default; 0 turns off the
# nice and the class below) and, where chrt works, in the batch
# scheduling class: a thread of theirs that wakes up does not preempt the
# one running, it waits for an idle core or for the running thread to
# sleep or use up its slice (SMSGW_DEV_BATCH=0 turns that off). A local
# MariaDB keeps its own.
# They also run Go on one processor each (GOMAXPROCS=SMSGW_DEV_PROCS, 1
# by default; 0 leaves Go's own choice): each uses a fraction of a core,
# and with one processor its runtime has no second thread to wake and
# spin for each goroutine made ready; on two cores (runs 160 and 161
# against 158 and 159) that took about an eighth of smsgw's and the
# MongoDB-wire server's CPU a message away, and a third of their
# threads' waits for a core (docs/performance.md, step 31).
dev_nice=${SMSGW_DEV_NICE:-10}
[[ $dev_nice =~ ^(1?[0-9])$ ]] || { echo "SMSGW_DEV_NICE must be a number from 0 to 19, not '$dev_nice'" >&2; exit 2; }
dev_batch=${SMSGW_DEV_BATCH:-1}
[[ $dev_batch =~ ^[01]$ ]] || { echo "SMSGW_DEV_BATCH must be 0 or 1, not '$dev_batch'" >&2; exit 2; }
dev_procs=${SMSGW_DEV_PROCS:-1}
[[ $dev_procs =~ ^(0|[1-9][0-9]{0,2})$ ]] || { echo "SMSGW_DEV_PROCS must be a number (0: Go's own choice), not '$dev_procs'" >&2; exit 2; }
lower=(nice -n "$dev_nice")
if [ "$dev_procs" != 0 ]; then
  lower=(env GOMAXPROCS="$dev_procs" "${lower[@]}")
fi
if [ "$dev_nice" != 0 ] && [ "$dev_batch" = 1 ] && chrt --batch 0 true >/dev/null 2>&1; then
  lower=(chrt --batch 0 "${lower[@]}")
fi
