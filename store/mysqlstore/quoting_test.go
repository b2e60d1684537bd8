package mysqlstore_test

import (
	"testing"

	"github.com/smsgw/smsgw/store/mysqlstore"
)

// Arguments are quoted by the driver only where that is safe: a DSN naming
// one of the multibyte encodings in which a byte of a character reads as a
// backslash keeps prepared statements.
func TestArgumentsQuotedInTheClientOnlyWhereSafe(t *testing.T) {
	for dsn, unsafe := range map[string]bool{
		"root@tcp(127.0.0.1:3306)/test":                                      false,
		"root@tcp(127.0.0.1:3306)/test?charset=utf8mb4":                      false,
		"root@tcp(127.0.0.1:3306)/test?parseTime=true&collation=utf8mb4_bin": false,
		"root@tcp(127.0.0.1:3306)/test?charset=sjis":                         true,
		"root@tcp(127.0.0.1:3306)/test?charset=utf8mb4,GBK":                  true,
		"root@tcp(127.0.0.1:3306)/test?collation=big5_chinese_ci":            true,
		"root@tcp(127.0.0.1:3306)/test?charset=cp932&parseTime=true":         true,
		"root@tcp(127.0.0.1:3306)/test?charset=gb2312":                       true,
	} {
		if got := mysqlstore.UnsafeQuoting(dsn); got != unsafe {
			t.Errorf("UnsafeQuoting(%q) = %v, want %v", dsn, got, unsafe)
		}
	}
}
