package mongostore_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
)

// wireCounter is a TCP proxy in front of a MongoDB-wire server that counts
// the commands clients send through it: one command is one round trip. The
// driver's own housekeeping (hello, ping, authentication, sessions) is not
// counted. The benchmarks use it to report round trips per item.
type wireCounter struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	counts map[string]int64 // by "command collection"
}

// ignoredCommands are the driver's housekeeping, not the store's work.
var ignoredCommands = map[string]bool{
	"hello": true, "isMaster": true, "ismaster": true, "ping": true, "buildInfo": true,
	"endSessions": true, "saslStart": true, "saslContinue": true, "getParameter": true,
}

// startWireCounter starts a counting proxy to the server of uri and returns
// a URI that goes through it.
func startWireCounter(t testing.TB, uri string) (string, *wireCounter) {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatalf("wire counter: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("wire counter: %v", err)
	}
	w := &wireCounter{ln: ln, target: u.Host, counts: map[string]int64{}}
	t.Cleanup(func() { _ = ln.Close() })
	go w.accept()
	u.Host = ln.Addr().String()
	q := u.Query()
	q.Set("directConnection", "true")
	u.RawQuery = q.Encode()
	return u.String(), w
}

func (w *wireCounter) accept() {
	for {
		c, err := w.ln.Accept()
		if err != nil {
			return
		}
		go w.serve(c)
	}
}

func (w *wireCounter) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", w.target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() {
		_, _ = io.Copy(client, server)
		_ = client.Close()
	}()
	header := make([]byte, 16)
	for {
		if _, err := io.ReadFull(client, header); err != nil {
			return
		}
		n := int(binary.LittleEndian.Uint32(header))
		if n < 16 {
			return
		}
		body := make([]byte, n-16)
		if _, err := io.ReadFull(client, body); err != nil {
			return
		}
		if binary.LittleEndian.Uint32(header[12:]) == 2013 { // OP_MSG
			if name, coll, err := commandOf(body); err == nil && !ignoredCommands[name] {
				w.mu.Lock()
				w.counts[strings.TrimSpace(name+" "+coll)]++
				w.mu.Unlock()
			}
		}
		if _, err := server.Write(append(header, body...)); err != nil {
			return
		}
		header = make([]byte, 16)
	}
}

// commandOf reads an OP_MSG's command name and, when it is a string, the
// collection it names, from its body section.
func commandOf(msg []byte) (name, coll string, err error) {
	if len(msg) < 4 {
		return "", "", errors.New("short OP_MSG")
	}
	p := msg[4:] // flag bits
	for len(p) > 0 {
		kind := p[0]
		p = p[1:]
		if len(p) < 4 {
			return "", "", errors.New("short section")
		}
		size := int(binary.LittleEndian.Uint32(p))
		if size < 5 || size > len(p) {
			return "", "", errors.New("bad section size")
		}
		if kind != 0 {
			p = p[size:] // a document sequence
			continue
		}
		doc := p[4:size]
		if len(doc) < 2 {
			return "", "", errors.New("empty command")
		}
		typ := doc[0]
		end := strings.IndexByte(string(doc[1:]), 0)
		if end < 0 {
			return "", "", errors.New("unterminated command name")
		}
		name = string(doc[1 : 1+end])
		rest := doc[2+end:]
		if typ == 0x02 && len(rest) >= 4 { // a string: the collection
			l := int(binary.LittleEndian.Uint32(rest))
			if l >= 1 && 4+l <= len(rest) {
				coll = string(rest[4 : 4+l-1])
			}
		}
		return name, coll, nil
	}
	return "", "", errors.New("no body section")
}

// count is how many commands of one kind ("insert correlations") were
// counted.
func (w *wireCounter) count(key string) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts[key]
}

// reset forgets the counts so far.
func (w *wireCounter) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.counts = map[string]int64{}
}

// total is how many commands were counted.
func (w *wireCounter) total() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var n int64
	for _, c := range w.counts {
		n += c
	}
	return n
}

// breakdown lists the commands per item, most frequent first.
func (w *wireCounter) breakdown(items int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := make([]string, 0, len(w.counts))
	for k := range w.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if w.counts[keys[i]] != w.counts[keys[j]] {
			return w.counts[keys[i]] > w.counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.2f", k, float64(w.counts[k])/float64(max(items, 1)))
	}
	return strings.Join(parts, ", ")
}
