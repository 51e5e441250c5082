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
