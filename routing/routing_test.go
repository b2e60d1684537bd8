package routing

import (
	"testing"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
)

func TestMatchLongestPrefix(t *testing.T) {
	cfg, err := config.Parse([]byte(`
connectors:
  - {id: au, address: "127.0.0.1:1"}
  - {id: nz, address: "127.0.0.1:2"}
  - {id: agg, address: "127.0.0.1:3"}
routes:
  - {name: australia, prefixes: ["+61"], connectors: [au, agg]}
  - {name: telstra, prefixes: ["+6141"], connectors: [agg]}
  - {name: nz, prefixes: ["+64"], connectors: [nz]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		to, route string
		first     string
	}{
		{"+61412345678", "telstra", "agg"},
		{"+61312345678", "australia", "au"},
		{"+6421123456", "nz", "nz"},
	}
	for _, c := range cases {
		d, err := Match(cfg, c.to)
		if err != nil {
			t.Fatalf("%s: %v", c.to, err)
		}
		if d.Route != c.route || d.Connectors[0] != c.first {
			t.Errorf("%s: got %+v, want route %s via %s", c.to, d, c.route, c.first)
		}
	}
	if _, err := Match(cfg, "+4915112345678"); smsgw.ErrorCode(err) != smsgw.EINVALID {
		t.Errorf("unrouted destination: got %v, want EINVALID", err)
	}
}
