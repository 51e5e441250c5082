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

	loanContracts     prometheus.Counter
	loanContractedFen prometheus.Counter
	loanRepayments    *prometheus.CounterVec
	loanRepaidFen     *prometheus.CounterVec
}

// NewMetrics registers payout's metrics with reg (nil skips registering).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		payouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_payouts_total",
			Help: "Payments settled by the bank's verdict, by result (paid, failed)."}, []string{"result"}),
		amountFen: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_payout_amount_fen_total",
			Help: "Fen of payments settled by the bank's verdict, by result (paid, failed)."}, []string{"result"}),
		bankCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_payout_bank_calls_total",
			Help: "Calls to the bank by call (pay, lookup, open_loan, lookup_loan) and outcome (credited, rejected, opened, not_found, invalid, unknown)."}, []string{"call", "outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_payout_orders_refused_total",
			Help: "Payment orders, and manifests that would prove orders, refused for good and dead-lettered, by reason (domain.RefusedReasons). Any is a page."}, []string{"reason"}),
	}
	m.loanContracts = prometheus.NewCounter(prometheus.CounterOpts{Name: "aid_payout_loan_contracts_total",
		Help: "Loan payments (funding source bank_loan) settled by a loan contract the bank opened; they credit no card and are not in aid_payouts_total."})
	m.loanContractedFen = prometheus.NewCounter(prometheus.CounterOpts{Name: "aid_payout_loan_contracted_fen_total",
		Help: "Fen lent under the loan contracts of aid_payout_loan_contracts_total."})
	m.loanRepayments = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_payout_loan_repayments_total",
		Help: "Repayments and recoveries recorded against loan contracts, by kind (repayment, recovery); a repeated request is not counted again."}, []string{"kind"})
	m.loanRepaidFen = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aid_payout_loan_repaid_fen_total",
		Help: "Fen of the repayments and recoveries of aid_payout_loan_repayments_total, by kind (repayment, recovery)."}, []string{"kind"})
	for _, k := range []string{"repayment", "recovery"} {
		m.loanRepayments.WithLabelValues(k)
		m.loanRepaidFen.WithLabelValues(k)
	}
	for _, r := range domain.RefusedReasons {
		m.refused.WithLabelValues(r)
	}
	for _, r := range []string{"paid", "failed"} {
		m.payouts.WithLabelValues(r)
		m.amountFen.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.payouts, m.amountFen, m.bankCalls, m.refused, m.loanContracts, m.loanContractedFen, m.loanRepayments, m.loanRepaidFen)
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
