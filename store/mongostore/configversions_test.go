package mongostore_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/smsgw/smsgw"
)

func TestConfigVersionsFollowEachOtherAndListAsAudit(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t)
	c := ctx(t)
	if _, err := s.LatestConfigVersion(c); smsgw.ErrorCode(err) != smsgw.ENOTFOUND {
		t.Fatalf("latest of none: %v", err)
	}
	if n, err := s.ConfigVersionNumber(c); n != 0 || err != nil {
		t.Fatalf("number of none: %d, %v", n, err)
	}
	if err := s.PutConfigVersion(c, smsgw.ConfigVersion{Version: 2, At: t0}); smsgw.ErrorCode(err) != smsgw.ECONFLICT {
		t.Fatalf("version 2 first: %v", err)
	}
	keys := []smsgw.APIKeyInfo{{ID: "0123456789ab", CustomerID: "acme", Prefix: "sk_0123", CreatedAt: t0}}
	for v := int64(1); v <= 3; v++ {
		err := s.PutConfigVersion(c, smsgw.ConfigVersion{Version: v, At: t0, Who: "ops", Action: fmt.Sprintf("change %d", v),
			Changes: []string{fmt.Sprintf("+ customer c%d", v)}, Config: []byte(fmt.Sprintf("customers: [{id: c%d}]\n", v)), Keys: keys})
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
	}

	// Two replicas race for version 4: one wins, the other is told.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.PutConfigVersion(c, smsgw.ConfigVersion{Version: 4, At: t0, Who: fmt.Sprint(i), Config: []byte("{}")})
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) || smsgw.ErrorCode(errs[0])+smsgw.ErrorCode(errs[1]) != smsgw.ECONFLICT {
		t.Fatalf("the race for version 4: %v, %v", errs[0], errs[1])
	}

	latest, err := s.LatestConfigVersion(c)
	if err != nil || latest.Version != 4 {
		t.Fatalf("latest: %+v, %v", latest, err)
	}
	if n, _ := s.ConfigVersionNumber(c); n != 4 {
		t.Fatalf("number: %d", n)
	}
	three, err := s.ListConfigVersions(c, 4, 10)
	if err != nil || len(three) != 3 || three[0].Version != 3 || three[2].Version != 1 {
		t.Fatalf("audit before 4: %+v, %v", three, err)
	}
	if three[0].Config != nil || three[0].Action != "change 3" || three[0].Changes[0] != "+ customer c3" || !three[0].At.Equal(t0) {
		t.Errorf("audit entry: %+v", three[0])
	}
	page, err := s.ListConfigVersions(c, 0, 2)
	if err != nil || len(page) != 2 || page[0].Version != 4 {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	// The latest version keeps the key descriptions.
	if err := s.PutConfigVersion(c, smsgw.ConfigVersion{Version: 5, At: t0, Config: []byte("{}"), Keys: keys}); err != nil {
		t.Fatal(err)
	}
	latest, _ = s.LatestConfigVersion(c)
	if len(latest.Keys) != 1 || latest.Keys[0] != keys[0] || string(latest.Config) != "{}" {
		t.Errorf("latest keys: %+v", latest)
	}
}
