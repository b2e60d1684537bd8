package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/smsgw/smsgw/config"
)

func TestHashPassword(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"hash-password", "s3cret"}, func(string) string { return "" }, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	form := strings.TrimSpace(out.String())
	if !strings.HasPrefix(form, "bcrypt:$2a$") || !config.PasswordMatches(form, "s3cret") || config.PasswordMatches(form, "other") {
		t.Fatalf("hash-password printed %q", form)
	}

	out.Reset()
	if err := hashPassword([]string{"-"}, strings.NewReader("from stdin\n"), &out); err != nil {
		t.Fatal(err)
	}
	if !config.PasswordMatches(strings.TrimSpace(out.String()), "from stdin") {
		t.Fatalf("password from stdin hashed as %q", out.String())
	}
	for _, args := range [][]string{nil, {"a", "b"}, {""}} {
		if err := hashPassword(args, strings.NewReader(""), &out); err == nil {
			t.Errorf("hash-password %q: no error", args)
		}
	}
}
