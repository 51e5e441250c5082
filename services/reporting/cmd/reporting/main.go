// Command reporting runs the bureau's statistics and annual report: it
// builds its own read model from the chain's events and answers figures
// from paid payouts minus refunds recovered.
package main

import (
	"github.com/edubureau/studentaid/pkg/service"
	rpservice "github.com/edubureau/studentaid/services/reporting/internal/service"
)

func main() { service.Main(rpservice.Spec()) }
