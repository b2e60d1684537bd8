package mongostore_test

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serverProcess finds the local process listening on the port of a
// mongodb:// URI (devdb, when testenv started it), from /proc: the
// listening socket's inode in /proc/net/tcp, then the process holding it.
// It returns 0 when there is none on this machine to read.
func serverProcess(b *testing.B, uri string) int {
	b.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		return 0
	}
	_, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return 0
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return 0
	}
	inode := ""
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			// local_address is HEX_IP:HEX_PORT; state 0A is LISTEN.
			if len(f) > 9 && f[3] == "0A" && strings.HasSuffix(f[1], fmt.Sprintf(":%04X", p)) {
				inode = f[9]
			}
		}
	}
	if inode == "" {
		return 0
	}
	want := "socket:[" + inode + "]"
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if link, err := os.Readlink(fd); err == nil && link == want {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid
		}
	}
	return 0
}

// processCPU is the CPU time (user and system) a process has used so far,
// 0 when pid is 0 or gone.
func processCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count from after it.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

// reportServerCPU reports the server's CPU per operation since cpu0, when
// the server is a process of this machine (/proc counts in 10 ms ticks:
// let the benchmark run long enough for its figure to mean something).
func reportServerCPU(b *testing.B, pid int, cpu0 time.Duration) {
	b.Helper()
	if pid == 0 {
		return
	}
	b.ReportMetric(float64(processCPU(b, pid)-cpu0)/float64(time.Microsecond)/float64(b.N), "server-cpu-µs/op")
}
