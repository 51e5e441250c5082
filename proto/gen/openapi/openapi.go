// Package openapi embeds the OpenAPI (Swagger 2.0) document generated from
// the services' proto definitions.
package openapi

import _ "embed"

// Spec is the merged OpenAPI document of the REST gateways.
//
//go:embed studentaid.swagger.json
var Spec []byte
