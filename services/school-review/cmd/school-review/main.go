// Command school-review runs the school review service: hardship
// determination, approval or rejection, and the public notice (公示).
package main

import (
	"github.com/edubureau/studentaid/pkg/service"
	srservice "github.com/edubureau/studentaid/services/school-review/internal/service"
)

func main() { service.Main(srservice.Spec()) }
