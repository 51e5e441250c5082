package ports

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edubureau/studentaid/services/application/internal/domain"
)

// StatusGauge publishes the number of applications in each status as
// aid_applications_by_status, refreshed by Run from counts the database
// maintains (app.Service.StatusCounts): a status that has none reports 0,
// and a refresh reads a handful of rows however many applications there
// are.
type StatusGauge struct {
	counts func(context.Context) (map[domain.Status]int64, error)
	gauge  *prometheus.GaugeVec
	every  time.Duration
	log    *slog.Logger
}

// NewStatusGauge registers the gauge with reg; counts is
// app.Service.StatusCounts.
func NewStatusGauge(counts func(context.Context) (map[domain.Status]int64, error), reg prometheus.Registerer, log *slog.Logger) *StatusGauge {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aid_applications_by_status", Help: "Applications per status."}, []string{"status"})
	reg.MustRegister(g)
	return &StatusGauge{counts: counts, gauge: g, every: 5 * time.Second, log: log}
}

// Run refreshes the gauge until ctx is done. A failed refresh keeps the last
// values and is logged.
func (s *StatusGauge) Run(ctx context.Context) error {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "applications by status: refresh failed; keeping the last values", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh sets the gauge from the current counts.
func (s *StatusGauge) Refresh(ctx context.Context) error {
	counts, err := s.counts(ctx)
	if err != nil {
		return err
	}
	for st, n := range counts {
		s.gauge.WithLabelValues(string(st)).Set(float64(n))
	}
	return nil
}

// AnchorMetrics are the trail anchor's: the last checkpoint signed, failed
// attempts, and VerifyTrail answers that found a problem.
type AnchorMetrics struct {
	treeSize       prometheus.Gauge
	signedAt       prometheus.Gauge
	failures       prometheus.Counter
	verifyFailures prometheus.Counter
}

// NewAnchorMetrics registers the anchor's metrics with reg.
func NewAnchorMetrics(reg prometheus.Registerer) *AnchorMetrics {
	m := &AnchorMetrics{
		treeSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aid_trail_checkpoint_tree_size", Help: "Tree size of the last trail checkpoint this process signed."}),
		signedAt: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aid_trail_checkpoint_signed_timestamp_seconds", Help: "When this process last signed a trail checkpoint (Unix time)."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "aid_trail_checkpoint_failures_total", Help: "Checkpoint attempts that failed."}),
		verifyFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "aid_trail_verify_failures_total",
			Help: "VerifyTrail answers that were not ok: a trail that does not match its chain, head or checkpoint."}),
	}
	reg.MustRegister(m.treeSize, m.signedAt, m.failures, m.verifyFailures)
	return m
}

// Signed records a signed checkpoint of size leaves at t.
func (m *AnchorMetrics) Signed(size uint64, t time.Time) {
	m.treeSize.Set(float64(size))
	m.signedAt.Set(float64(t.Unix()))
}

// Failed counts a failed checkpoint attempt.
func (m *AnchorMetrics) Failed() { m.failures.Inc() }
