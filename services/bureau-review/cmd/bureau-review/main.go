// Command bureau-review runs the education bureau's review of
// school-approved applications.
package main

import (
	"github.com/edubureau/studentaid/pkg/service"
	brservice "github.com/edubureau/studentaid/services/bureau-review/internal/service"
)

func main() { service.Main(brservice.Spec()) }
