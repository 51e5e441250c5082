// Command finance-confirmation gathers bureau-approved items into payment
// batches and lets the finance bureau confirm them against their control
// totals, ordering one payment per item.
package main

import (
	"github.com/edubureau/studentaid/pkg/service"
	"github.com/edubureau/studentaid/services/finance-confirmation/internal/server"
)

func main() { service.Main(server.Spec()) }
