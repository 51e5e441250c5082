// Command finance-confirmation gathers bureau-approved items into payment
// batches and lets the finance bureau confirm them against their control
// totals, ordering one payment per item.
package main

import (
	"github.com/edubureau/studentaid/pkg/service"
	financeservice "github.com/edubureau/studentaid/services/finance-confirmation/internal/service"
)

func main() { service.Main(financeservice.Spec()) }
