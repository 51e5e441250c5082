// Package openapidoc fills in what protoc-gen-openapiv2 leaves out of the
// API document (proto/gen/openapi/studentaid.swagger.json): a real title
// and version, the base URL of the entry point, the bearer-token security
// scheme on every operation, and every error of the catalog
// (pkg/apperr.Catalog) with its HTTP status, gRPC code and reason. `make
// generate` runs it after buf (TestOpenAPIDoc -update); Enrich is
// idempotent, so the committed document is its own fixed point.
package openapidoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/edubureau/studentaid/pkg/apperr"
)

// Title, Version and Host are what the document says about itself.
const (
	Title   = "Student aid platform API"
	Version = "v1"
	// Host is the entry point of `make run`; a deployment serves the same
	// paths on its own host (deploy/k8s/ingress.yaml).
	Host = "127.0.0.1:8080"
	// SecurityScheme is the name of the bearer-token scheme.
	SecurityScheme = "bearer"
)

const description = `The public API of the student financial aid platform, for school portals
and the bureau's tools. Every path is served under one base URL, the
gateway (http://127.0.0.1:8080 in ` + "`make run`" + `; a deployment's host in
production); gRPC is served on the same address, routed by service name.

Authentication: every operation needs 'Authorization: Bearer <token>', an
Ed25519-signed JWT naming the user, the role and the organisation (the
school code for school roles). A missing or bad token is 401 with reason
'unauthenticated'.

Fair use: each organisation has a token bucket at the entry point; past it
the answer is 429 with Retry-After (REST) or RESOURCE_EXHAUSTED (gRPC), both
with reason 'resource-exhausted'. Request bodies over the limit are 413.

Units and formats: money is integer fen (1 yuan = 100 fen), never a
fraction; a term is '<year>-autumn' or '<year>-spring' (e.g. 2017-autumn);
an ID number is the 18-character resident identity number (GB 11643: 17
digits and a check character, 0-9 or X, the birth date valid), compared
with X in upper case; times are RFC 3339 in UTC.

Errors: every error is a google.rpc.Status with an ErrorInfo detail
(domain 'studentaid') whose reason is one of the catalog below (docs/api.md
says what a portal should do about each), and BadRequest field violations
where fields are wrong.`

// Enrich returns the document with the gaps filled.
func Enrich(raw []byte) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parse the OpenAPI document: %w", err)
	}
	doc["info"] = map[string]any{"title": Title, "version": Version, "description": description}
	doc["host"] = Host
	doc["basePath"] = "/"
	doc["schemes"] = []any{"http", "https"}
	doc["securityDefinitions"] = map[string]any{SecurityScheme: map[string]any{
		"type":        "apiKey",
		"in":          "header",
		"name":        "Authorization",
		"description": "'Bearer <token>': an Ed25519-signed JWT (role, organisation, user). Swagger 2.0 has no bearer type; the header carries the word Bearer, a space and the token.",
	}}
	doc["security"] = []any{map[string]any{SecurityScheme: []any{}}}
	describeUnits(doc)
	paths, _ := doc["paths"].(map[string]any)
	// Declared once under "responses" and referred to by every operation:
	// the catalog written out per operation would make the document
	// many megabytes.
	errs := errorResponses()
	shared := make(map[string]any, len(errs))
	refs := make(map[string]any, len(errs))
	for status, r := range errs {
		name := "Error" + status
		shared[name] = r
		refs[status] = map[string]any{"$ref": "#/responses/" + name}
	}
	doc["responses"] = shared
	for _, item := range paths {
		ops, _ := item.(map[string]any)
		for method, op := range ops {
			o, ok := op.(map[string]any)
			if !ok || !isMethod(method) {
				continue
			}
			o["security"] = []any{map[string]any{SecurityScheme: []any{}}}
			if _, ok := o["description"]; !ok {
				if s, ok := o["summary"].(string); ok {
					o["description"] = s
				}
			}
			resp, _ := o["responses"].(map[string]any)
			if resp == nil {
				resp = map[string]any{}
				o["responses"] = resp
			}
			maps.Copy(resp, refs)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func isMethod(m string) bool {
	return slices.Contains([]string{"get", "put", "post", "delete", "patch", "head", "options"}, m)
}

// errorResponses are the catalog's errors grouped by HTTP status, each with
// its gRPC code and reasons, in the description and in x-errors.
func errorResponses() map[string]any {
	byStatus := map[int][]apperr.Entry{}
	for _, e := range apperr.Catalog {
		byStatus[e.HTTP] = append(byStatus[e.HTTP], e)
	}
	out := map[string]any{}
	for status, entries := range byStatus {
		var d strings.Builder
		text := http.StatusText(status)
		if status == 499 {
			text = "Client Closed Request"
		}
		fmt.Fprintf(&d, "%s. A google.rpc.Status whose ErrorInfo reason is one of:", text)
		x := make([]any, 0, len(entries))
		for _, e := range entries {
			fmt.Fprintf(&d, "\n- `%s` (gRPC %s): %s %s", e.Reason, strings.ToUpper(codeName(e.GRPC.String())), e.Means, e.Do)
			x = append(x, map[string]any{"reason": string(e.Reason), "grpcCode": e.GRPC.String(), "grpcCodeNumber": int(e.GRPC), "httpStatus": status})
		}
		r := map[string]any{
			"description": d.String(),
			"schema":      map[string]any{"$ref": "#/definitions/rpcStatus"},
			"x-errors":    x,
		}
		if status == http.StatusTooManyRequests {
			r["headers"] = map[string]any{"Retry-After": map[string]any{"type": "integer", "description": "Seconds to wait before the organisation's next request is admitted."}}
		}
		out[strconv.Itoa(status)] = r
	}
	return out
}

// codeName turns "InvalidArgument" into "INVALID_ARGUMENT".
func codeName(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// describeUnits gives the fields that carry a unit or a format and have no
// description of their own one saying it: amounts in fen, terms, ID numbers.
func describeUnits(doc map[string]any) {
	defs, _ := doc["definitions"].(map[string]any)
	for _, d := range defs {
		props, _ := d.(map[string]any)["properties"].(map[string]any)
		for name, p := range props {
			prop, ok := p.(map[string]any)
			if !ok {
				continue
			}
			if _, has := prop["description"]; has {
				continue
			}
			if _, has := prop["title"]; has {
				continue
			}
			switch {
			case strings.HasSuffix(name, "Fen"):
				prop["description"] = "An amount of money in fen (integer; 1 yuan = 100 fen)."
			case name == "term" || strings.HasSuffix(name, "Term"):
				prop["description"] = "A term: '<year>-autumn' or '<year>-spring', e.g. 2017-autumn."
			case strings.HasSuffix(name, "IdNumber"):
				prop["description"] = "An 18-character resident identity number (GB 11643): 17 digits and a check character, 0-9 or X."
			}
		}
	}
}
