package openapidoc

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strconv"
	"testing"
)

var update = flag.Bool("update", false, "fill in the document buf generated, in place")

const docPath = "../../proto/gen/openapi/studentaid.swagger.json"

// TestOpenAPIDoc checks the committed document is enriched (Enrich leaves it
// as it is) and that every operation declares the bearer scheme and at
// least one error response. With -update it enriches the file first.
func TestOpenAPIDoc(t *testing.T) {
	raw, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	enriched, err := Enrich(raw)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(docPath, enriched, 0o644); err != nil {
			t.Fatal(err)
		}
		raw = enriched
	}
	if !bytes.Equal(raw, enriched) {
		t.Fatalf("%s is not enriched: run make generate", docPath)
	}
	var doc struct {
		Info struct {
			Title   string `json:"title"`
			Version string `json:"version"`
		} `json:"info"`
		Host                string `json:"host"`
		SecurityDefinitions map[string]struct {
			Type string `json:"type"`
			In   string `json:"in"`
			Name string `json:"name"`
		} `json:"securityDefinitions"`
		Paths map[string]map[string]struct {
			Description string                     `json:"description"`
			Security    []map[string][]string      `json:"security"`
			Responses   map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Info.Title != "Student aid platform API" || doc.Info.Version == "version not set" || doc.Host == "" {
		t.Errorf("info %+v, host %q: want a real title, version and host", doc.Info, doc.Host)
	}
	if s := doc.SecurityDefinitions["bearer"]; s.In != "header" || s.Name != "Authorization" {
		t.Errorf("security scheme bearer = %+v, want the Authorization header", s)
	}
	ops := 0
	for path, item := range doc.Paths {
		for method, op := range item {
			ops++
			where := method + " " + path
			if len(op.Security) == 0 {
				t.Errorf("%s declares no security", where)
			} else if _, ok := op.Security[0]["bearer"]; !ok {
				t.Errorf("%s: security %v lacks bearer", where, op.Security)
			}
			if op.Description == "" {
				t.Errorf("%s has no description", where)
			}
			errors := 0
			for status := range op.Responses {
				if n, err := strconv.Atoi(status); err == nil && n >= 400 {
					errors++
				}
			}
			if errors == 0 {
				t.Errorf("%s declares no error response", where)
			}
			for _, want := range []string{"400", "401", "403", "429"} {
				if _, ok := op.Responses[want]; !ok {
					t.Errorf("%s does not declare %s", where, want)
				}
			}
		}
	}
	if ops < 40 {
		t.Errorf("%d operations in the document; the services have more than 40", ops)
	}
}
