package lifecycle

import (
	"context"
	"log/slog"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/workflows"
)

// A low-balance crossing starts one delivery per notification channel of
// the customer (notify.channels, else its webhook), each under an ID that
// names the crossing and the channel, so that the same movement seen again
// starts nothing more.
func TestLowBalanceAlertGoesToEachOfTheCustomersChannels(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := config.Parse([]byte(`
smtp: {address: "127.0.0.1:2525", from: "gw@gw.test"}
customers:
  - id: all
    webhook: {url: "https://all.test/hook", secret: s}
    smpp: {systemId: all, password: "plain:pw"}
    notify: {channels: [webhook, smpp, email], email: [ops@all.test], retryFor: 1h}
    billing: {lowBalance: ["10"]}
  - id: smpponly
    webhook: {url: "https://smpponly.test/hook", secret: s}
    smpp: {systemId: smpponly, password: "plain:pw"}
    notify: {channels: [smpp]}
    billing: {lowBalance: ["10"]}
  - id: hookonly
    webhook: {url: "https://hookonly.test/hook", secret: s}
    billing: {lowBalance: ["10"]}
priceLists:
  - {id: std, currency: EUR, customers: [all, smpponly, hookonly], default: 0.05}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.Dial(client.Options{HostPort: testenv.TemporalAddress(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	alerts := &BalanceAlerts{Temporal: tc, Config: config.Static(cfg), Logger: slog.New(slog.DiscardHandler)}

	at := time.Now().UTC()
	moved := func(customer string) smsgw.Movement {
		return smsgw.Movement{CustomerID: customer, Currency: "EUR", Key: "m-" + customer, Step: smsgw.StepReserve,
			Kind: smsgw.MoveReserve, Reserved: 100_000, At: at, New: true, Before: 10_050_000, After: 9_950_000}
	}
	// started reads the delivery a workflow was started with, and its run.
	started := func(id string) (smsgw.Delivery, time.Duration, string) {
		t.Helper()
		d, err := tc.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			t.Fatalf("workflow %s: %v", id, err)
		}
		run := d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
		it := tc.GetWorkflowHistory(ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		var in workflows.RedeliverInput
		if err := converter.GetDefaultDataConverter().FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil {
			t.Fatal(err)
		}
		return in.Delivery, in.RetryFor, run
	}
	notStarted := func(id string) {
		t.Helper()
		if _, err := tc.DescribeWorkflowExecution(ctx, id, ""); err == nil {
			t.Errorf("workflow %s was started", id)
		}
	}

	for _, customer := range []string{"all", "smpponly", "hookonly"} {
		alerts.Moved(ctx, moved(customer))
	}
	runs := map[string]string{}
	alertID := "lowbalance-all-EUR-10000000-m-all-reserve"
	for ch, id := range map[string]string{smsgw.ChannelWebhook: alertID, smsgw.ChannelSMPP: alertID + "-smpp", smsgw.ChannelEmail: alertID + "-email"} {
		d, retryFor, run := started(id)
		runs[id] = run
		if d.Channel != ch || d.CustomerID != "all" || d.Balance == nil || d.Balance.ID != alertID || d.Balance.Threshold != "10.00" ||
			d.Balance.Available != "9.95" || retryFor != time.Hour {
			t.Errorf("%s: delivery %+v (balance %+v), retry for %s", id, d, d.Balance, retryFor)
		}
	}
	// notify.channels wins over the webhook; without them the webhook.
	if d, _, _ := started("lowbalance-smpponly-EUR-10000000-m-smpponly-reserve-smpp"); d.Channel != smsgw.ChannelSMPP {
		t.Errorf("smpponly: %+v", d)
	}
	notStarted("lowbalance-smpponly-EUR-10000000-m-smpponly-reserve")
	if d, _, _ := started("lowbalance-hookonly-EUR-10000000-m-hookonly-reserve"); d.Channel != smsgw.ChannelWebhook {
		t.Errorf("hookonly: %+v", d)
	}
	notStarted("lowbalance-hookonly-EUR-10000000-m-hookonly-reserve-smpp")

	// The same movement again (a retried step): no second run anywhere.
	alerts.Moved(ctx, moved("all"))
	for id, run := range runs {
		if _, _, again := started(id); again != run {
			t.Errorf("%s: a second run %s after %s", id, again, run)
		}
	}
}
