package app

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edubureau/studentaid/services/payout/internal/domain"
)

// Metrics count payout's results and bank calls.
type Metrics struct {
	payouts   *prometheus.CounterVec
	amountFen *prometheus.CounterVec
	bankCalls *prometheus.CounterVec
	refused   *prometheus.CounterVec
}

// NewMetrics registers payout's metrics with reg (nil skips registering).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		payouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_payouts_total",
			Help: "Payments settled by the bank's verdict, by result (paid, failed)."}, []string{"result"}),
		amountFen: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_payout_amount_fen_total",
			Help: "Fen of payments settled by the bank's verdict, by result (paid, failed)."}, []string{"result"}),
		bankCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_payout_bank_calls_total",
			Help: "Calls to the bank by call (pay, lookup) and outcome (credited, rejected, not_found, invalid, unknown)."}, []string{"call", "outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_payout_orders_refused_total",
			Help: "Payment orders, and manifests that would prove orders, refused for good and dead-lettered, by reason (domain.RefusedReasons). Any is a page."}, []string{"reason"}),
	}
	for _, r := range domain.RefusedReasons {
		m.refused.WithLabelValues(r)
	}
	for _, r := range []string{"paid", "failed"} {
		m.payouts.WithLabelValues(r)
		m.amountFen.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.payouts, m.amountFen, m.bankCalls, m.refused)
	}
	return m
}

// CountRefusal counts err if it is a refusal (domain.RefusedError) and
// reports whether it was.
func (m *Metrics) CountRefusal(err error) bool {
	refused, ok := errors.AsType[*domain.RefusedError](err)
	if ok {
		m.refused.WithLabelValues(refused.Reason).Inc()
	}
	return ok
}
