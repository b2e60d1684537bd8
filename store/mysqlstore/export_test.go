package mysqlstore

import "github.com/smsgw/smsgw"

// SearchSQL is the statement SearchMessages runs for q, for EXPLAIN in the
// benchmark.
func SearchSQL(q smsgw.MessageQuery) (string, []any) {
	query, args, _, _ := searchSQL(q)
	return query, args
}

// UnsafeQuoting is unsafeQuoting, for its test.
var UnsafeQuoting = unsafeQuoting
