package testenv_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/smsgw/smsgw/internal/testenv"
)

func TestMySQLDSNGivesAFreshDatabaseAndDropsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a MySQL server; run without -short")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var name, server string
	t.Run("use", func(t *testing.T) {
		dsn := testenv.MySQLDSN(t)
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.ParseTime || cfg.Loc != time.UTC || !strings.HasPrefix(cfg.DBName, "smsgw_test_") {
			t.Fatalf("DSN %q: want parseTime, loc=UTC and a smsgw_test_ database", dsn)
		}
		name = cfg.DBName
		cfg.DBName = ""
		server = cfg.FormatDSN()
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("fresh database has %d tables", n)
		}
	})
	db, err := sql.Open("mysql", server)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s is still there after the test", name)
	}
}

func TestMongoURIServesATest(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uri := testenv.MongoURI(t)
	a, b := testenv.MongoDatabase(t), testenv.MongoDatabase(t)
	if a == b {
		t.Fatalf("MongoDatabase gave %s twice", a)
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	if _, err := client.Database(a).Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatalf("insert into %s at %s: %v", a, uri, err)
	}
}
