package main

import (
	"fmt"
	"io"

	"github.com/smsgw/smsgw/workflows"
)

// temporalDevArgs are the arguments `make dev`, `make bench-e2e` and the
// soak give `temporal server start-dev` beside their own address, ports
// and database file, so that all three run the same server:
//
//   - SQLite in WAL mode, a commit synced at checkpoints; a 64 MiB page
//     cache and the file mapped, so the database (about 25 KB a message
//     until retention removes it) is not read back through system calls as
//     it grows.
//   - The gateway's search attributes exist from the start, so the server
//     keeps them and the namespace cached as a cluster does: the dev
//     server's default reads them back from the database on every use (six
//     reads a message).
//   - The transfer and visibility queues checkpoint every second instead of
//     every 30 s: the server keeps each task it ran in memory until the next
//     checkpoint, and once its single shard holds thousands of them, every
//     new task can cost a pass over all of them (5-11% of the server's CPU
//     in benchmark loads, 19% in one, growing as a load goes on;
//     docs/performance.md, step 30).
func temporalDevArgs() []string {
	args := []string{
		"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
		"--sqlite-pragma", "cache_size=-65536", "--sqlite-pragma", "mmap_size=268435456",
		"--dynamic-config-value", "history.cacheMaxSize=8192",
		"--dynamic-config-value", "system.forceSearchAttributesCacheRefreshOnRead=false",
		"--dynamic-config-value", `history.transferProcessorUpdateAckInterval="1s"`,
		"--dynamic-config-value", `history.visibilityProcessorUpdateAckInterval="1s"`,
		"--log-level", "warn",
	}
	for _, sa := range workflows.SearchAttributeFlags {
		args = append(args, "--search-attribute", sa)
	}
	return args
}

// printTemporalDevArgs is `smsgw temporal-dev-args`: temporalDevArgs, one
// a line, for the scripts (mapfile -t).
func printTemporalDevArgs(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("takes no arguments, got %q", args)
	}
	for _, a := range temporalDevArgs() {
		if _, err := fmt.Fprintln(stdout, a); err != nil {
			return err
		}
	}
	return nil
}
