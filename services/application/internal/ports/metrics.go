package ports

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// StatusGauge publishes the number of applications in each status as
// aid_applications_by_status, refreshed by Run.
type StatusGauge struct {
	pool  *pgxpool.Pool
	gauge *prometheus.GaugeVec
	every time.Duration
}

// NewStatusGauge registers the gauge with reg.
func NewStatusGauge(pool *pgxpool.Pool, reg prometheus.Registerer) *StatusGauge {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aid_applications_by_status", Help: "Applications per status."}, []string{"status"})
	reg.MustRegister(g)
	return &StatusGauge{pool: pool, gauge: g, every: 5 * time.Second}
}

// Run refreshes the gauge until ctx is done. A failed count keeps the last values.
func (s *StatusGauge) Run(ctx context.Context) error {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		s.refresh(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *StatusGauge) refresh(ctx context.Context) {
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM applications GROUP BY status`)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var status string
		var n int64
		if rows.Scan(&status, &n) == nil {
			s.gauge.WithLabelValues(status).Set(float64(n))
		}
	}
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
