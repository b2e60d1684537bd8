package promreg_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw/internal/promreg"
)

func counter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"l"})
}

func TestSecondRegistrationSharesTheFirstCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := promreg.Register(reg, counter())
	if err != nil {
		t.Fatal(err)
	}
	second, err := promreg.Register(reg, counter())
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Fatal("the second registration got a collector of its own")
	}
	first.WithLabelValues("a").Inc()
	second.WithLabelValues("a").Inc()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 || mfs[0].GetMetric()[0].GetCounter().GetValue() != 2 {
		t.Fatalf("registry holds %v, want one x_total series counted twice", mfs)
	}
}

func TestConflictingRegistrationIsAnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := promreg.Register(reg, counter()); err != nil {
		t.Fatal(err)
	}
	other := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"other"})
	if _, err := promreg.Register(reg, other); err == nil {
		t.Fatal("a family of the same name with other labels was accepted")
	}
	// The same family under another Go type cannot be handed back.
	if _, err := promreg.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x_total", Help: "x"}, []string{"l"})); err == nil {
		t.Fatal("a gauge was accepted where a counter of the same name is registered")
	}
}

func TestNilRegistererRegistersNothing(t *testing.T) {
	c := counter()
	got, err := promreg.Register(nil, c)
	if err != nil || got != c {
		t.Fatalf("Register(nil) = %v, %v; want the collector itself", got, err)
	}
}
