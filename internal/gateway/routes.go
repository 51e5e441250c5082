// Package gateway is the one entry point of the public API: it routes REST
// by path prefix to each service's HTTP port and gRPC by service name (the
// "/aid.<pkg>.v1." prefix of the :path) to each service's gRPC port over
// h2c, and enforces fair use per organisation (limit.go).
package gateway

import "strings"

// Route is one service behind the gateway. A new service is one line of
// Routes.
type Route struct {
	// Service is the service's name (its env prefix: APPLICATION_, …).
	Service string
	// GRPCPackage is the protobuf package of its gRPC services.
	GRPCPackage string
	// REST are the path prefixes of its REST resources.
	REST []string
	// GRPCAddr and HTTPAddr are the documented default ports of `make run`.
	GRPCAddr, HTTPAddr string
}

// Routes are the services of the public API.
var Routes = []Route{
	{"application", "aid.application.v1", []string{"/v1/applications", "/v1/programs", "/v1/trail", "/v1/policy", "/v1/schools"}, "127.0.0.1:9101", "127.0.0.1:8101"},
	{"school-review", "aid.schoolreview.v1", []string{"/v1/school-reviews", "/v1/working-calendars"}, "127.0.0.1:9102", "127.0.0.1:8102"},
	{"bureau-review", "aid.bureaureview.v1", []string{"/v1/bureau-reviews"}, "127.0.0.1:9103", "127.0.0.1:8103"},
	{"finance-confirmation", "aid.finance.v1", []string{"/v1/batches"}, "127.0.0.1:9104", "127.0.0.1:8104"},
	{"payout", "aid.payout.v1", []string{"/v1/payments", "/v1/loans"}, "127.0.0.1:9105", "127.0.0.1:8105"},
	{"data-comparison", "aid.datacomparison.v1", []string{"/v1/datacomparison"}, "127.0.0.1:9106", "127.0.0.1:8106"},
	{"reporting", "aid.reporting.v1", []string{"/v1/reporting"}, "127.0.0.1:9107", "127.0.0.1:8107"},
}

// EnvPrefix is the service's environment prefix: "school-review" → "SCHOOL_REVIEW_".
func EnvPrefix(service string) string {
	return strings.ToUpper(strings.ReplaceAll(service, "-", "_")) + "_"
}

// matchREST reports whether path is under prefix: the prefix itself, a
// sub-resource ("/…") or a custom method (":…").
func matchREST(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	rest := path[len(prefix):]
	return rest == "" || rest[0] == '/' || rest[0] == ':'
}

// routeREST returns the route serving a REST path.
func routeREST(routes []Route, path string) (Route, bool) {
	for _, r := range routes {
		for _, p := range r.REST {
			if matchREST(path, p) {
				return r, true
			}
		}
	}
	return Route{}, false
}

// routeGRPC returns the route serving a gRPC method path
// ("/aid.application.v1.ApplicationService/Submit").
func routeGRPC(routes []Route, path string) (Route, bool) {
	for _, r := range routes {
		if strings.HasPrefix(path, "/"+r.GRPCPackage+".") {
			return r, true
		}
	}
	return Route{}, false
}
