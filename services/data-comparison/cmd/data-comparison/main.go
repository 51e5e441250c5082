// Command data-comparison runs the bureau's data office (大数据比对): it
// keeps its own copy of what was applied for and paid, imports reference data,
// compares them and works the problem clues through to refunds.
package main

import (
	"github.com/edubureau/studentaid/pkg/service"
	dcservice "github.com/edubureau/studentaid/services/data-comparison/internal/service"
)

func main() { service.Main(dcservice.Spec()) }
