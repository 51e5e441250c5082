// Command payout pays every confirmed item exactly once through the bank
// gateway and reports each outcome.
package main

import (
	"github.com/edubureau/studentaid/pkg/service"
	payoutservice "github.com/edubureau/studentaid/services/payout/internal/service"
)

func main() { service.Main(payoutservice.Spec()) }
