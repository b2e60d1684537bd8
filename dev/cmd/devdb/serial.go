package main

import (
	"context"
	"strings"
	"sync"

	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"
	querypb "github.com/dolthub/vitess/go/vt/proto/query"
)

// serialHandler runs one statement or one transaction at a time across all
// connections. go-mysql-server's in-memory tables do not support concurrent
// writers: each transaction works on a copy of the table and a commit
// replaces the whole table, so two sessions writing at once lose each other's
// rows. Serialising makes the dev server behave like a (slow) real one.
//
// A connection that starts a transaction keeps its turn until COMMIT or
// ROLLBACK, or until it disconnects. GET_LOCK and RELEASE_LOCK run outside
// the turn, since a session waiting for a named lock must not stop the
// holder from finishing.
type serialHandler struct {
	mysql.Handler
	turn chan struct{} // holds one token while a connection has the turn

	mu      sync.Mutex
	holding map[uint32]bool // connections in an open transaction
}

func newSerialHandler(h mysql.Handler) *serialHandler {
	return &serialHandler{Handler: h, turn: make(chan struct{}, 1), holding: map[uint32]bool{}}
}

// run runs f, which executes query on c, in c's turn.
func (h *serialHandler) run(ctx context.Context, c *mysql.Conn, query string, f func() error) error {
	kind := classify(query)
	if kind == namedLock {
		return f()
	}
	id := c.ConnectionID
	h.mu.Lock()
	holding := h.holding[id]
	h.mu.Unlock()
	if !holding {
		select {
		case h.turn <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := f()
	keep := holding
	switch kind {
	case begin:
		keep = err == nil || holding
	case end:
		keep = false
	}
	h.mu.Lock()
	if keep {
		h.holding[id] = true
	} else {
		delete(h.holding, id)
	}
	h.mu.Unlock()
	if !keep {
		<-h.turn
	}
	return err
}

// ConnectionClosed gives the turn back if the connection left in a transaction.
func (h *serialHandler) ConnectionClosed(c *mysql.Conn) {
	h.mu.Lock()
	holding := h.holding[c.ConnectionID]
	delete(h.holding, c.ConnectionID)
	h.mu.Unlock()
	if holding {
		<-h.turn
	}
	h.Handler.ConnectionClosed(c)
}

func (h *serialHandler) ComQuery(ctx context.Context, c *mysql.Conn, query string, callback mysql.ResultSpoolFn) error {
	return h.run(ctx, c, query, func() error { return h.Handler.ComQuery(ctx, c, query, callback) })
}

func (h *serialHandler) ComMultiQuery(ctx context.Context, c *mysql.Conn, query string, callback mysql.ResultSpoolFn) (string, error) {
	var rest string
	err := h.run(ctx, c, query, func() error {
		var err error
		rest, err = h.Handler.ComMultiQuery(ctx, c, query, callback)
		return err
	})
	return rest, err
}

func (h *serialHandler) ComPrepare(ctx context.Context, c *mysql.Conn, query string, prepare *mysql.PrepareData) ([]*querypb.Field, error) {
	var fields []*querypb.Field
	err := h.run(ctx, c, query, func() error {
		var err error
		fields, err = h.Handler.ComPrepare(ctx, c, query, prepare)
		return err
	})
	return fields, err
}

func (h *serialHandler) ComStmtExecute(ctx context.Context, c *mysql.Conn, prepare *mysql.PrepareData, callback func(*sqltypes.Result) error) error {
	return h.run(ctx, c, prepare.PrepareStmt, func() error { return h.Handler.ComStmtExecute(ctx, c, prepare, callback) })
}

// statementKind is what a statement does to the turn.
type statementKind int

const (
	plain     statementKind = iota
	begin                   // START TRANSACTION, BEGIN
	end                     // COMMIT, ROLLBACK
	namedLock               // GET_LOCK, RELEASE_LOCK
)

func classify(query string) statementKind {
	q := strings.ToUpper(strings.TrimSpace(query))
	switch {
	case strings.HasPrefix(q, "START TRANSACTION"), q == "BEGIN", strings.HasPrefix(q, "BEGIN "), strings.HasPrefix(q, "BEGIN;"):
		return begin
	case strings.HasPrefix(q, "COMMIT"), strings.HasPrefix(q, "ROLLBACK") && !strings.Contains(q, " TO "):
		return end
	case strings.HasPrefix(q, "SELECT") && (strings.Contains(q, "GET_LOCK(") || strings.Contains(q, "RELEASE_LOCK(")):
		return namedLock
	}
	return plain
}
