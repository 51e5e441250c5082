// Command payout pays every confirmed item exactly once through the bank
// gateway and reports each outcome.
package main

import (
	"fmt"
	"os"

	"github.com/edubureau/studentaid/pkg/service"
	"github.com/edubureau/studentaid/services/payout/internal/server"
)

func main() {
	opts, err := server.OptionsFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "payout:", err)
		os.Exit(1)
	}
	service.Main(server.Spec(opts))
}
