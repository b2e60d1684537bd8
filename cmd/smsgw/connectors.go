package main

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/smsgw/smsgw/config"
)

// connectorSupervisor runs the connectors of the configuration in force
// (only those named in only, when set) and follows its changes: a connector
// added is bound, one changed is drained and bound again with its new
// settings, one removed is drained; the others are left alone.
type connectorSupervisor struct {
	live   *config.Live
	only   []string
	logger *slog.Logger
	// run holds a connector's binds until ctx is done, then drains them.
	run func(ctx context.Context, co config.Connector) error
	// every is how often the configuration in force is checked (250 ms when 0).
	every time.Duration
}

type runningConnector struct {
	settings string // the connector's configuration, as YAML
	stop     context.CancelFunc
	done     chan struct{}
}

// Run supervises until ctx is done, then drains every connector.
func (s *connectorSupervisor) Run(ctx context.Context) error {
	every := s.every
	if every == 0 {
		every = 250 * time.Millisecond
	}
	running := map[string]*runningConnector{}
	defer func() {
		for _, r := range running {
			r.stop()
		}
		for _, r := range running {
			<-r.done
		}
	}()
	var seen *config.Config
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if cfg := s.live.Config(); cfg != seen {
			seen = cfg
			s.reconcile(ctx, cfg, running)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// reconcile makes the running connectors those of cfg.
func (s *connectorSupervisor) reconcile(ctx context.Context, cfg *config.Config, running map[string]*runningConnector) {
	want := map[string]config.Connector{}
	settings := map[string]string{}
	var order []string
	for _, co := range cfg.Connectors {
		if len(s.only) > 0 && !slices.Contains(s.only, co.ID) {
			continue
		}
		raw, err := yaml.Marshal(co)
		if err != nil {
			s.logger.Error("connector not started", "connector", co.ID, "err", err)
			continue
		}
		want[co.ID], settings[co.ID] = co, string(raw)
		order = append(order, co.ID)
	}
	// Drain the removed and the changed, all at once.
	var draining []string
	for id, r := range running {
		if settings[id] != r.settings {
			r.stop()
			draining = append(draining, id)
		}
	}
	for _, id := range draining {
		<-running[id].done
		delete(running, id)
		if _, ok := want[id]; ok {
			s.logger.Info("connector changed: drained, binding with the new settings", "connector", id)
		} else {
			s.logger.Info("connector removed: drained", "connector", id)
		}
	}
	for _, id := range order {
		if _, ok := running[id]; ok {
			continue
		}
		cctx, stop := context.WithCancel(ctx)
		r := &runningConnector{settings: settings[id], stop: stop, done: make(chan struct{})}
		running[id] = r
		co := want[id]
		go func() {
			defer close(r.done)
			if err := s.run(cctx, co); err != nil && cctx.Err() == nil {
				s.logger.Error("connector stopped", "connector", co.ID, "err", err)
			}
		}()
	}
}
