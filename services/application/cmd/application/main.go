// Command application runs the application service: schools submit
// applications here, and it keeps every application's status and trail.
package main

import (
	"github.com/edubureau/studentaid/pkg/service"
	appservice "github.com/edubureau/studentaid/services/application/internal/service"
)

func main() { service.Main(appservice.Spec()) }
