package natsx_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/edubureau/studentaid/pkg/natsx"
)

var update = flag.Bool("update", false, "rewrite deploy/nats/streams/ from natsx.Streams")

// streamsDir holds one stream definition per stream, as the production
// cluster runs them (R3), in the JetStream API's JSON
// (`nats stream add --config <file>`).
const streamsDir = "../../deploy/nats/streams"

// productionReplicas is the stream replication of the three-node cluster
// (AID_NATS_STREAM_REPLICAS=3 for `aidctl nats-setup`).
const productionReplicas = 3

// TestStreamDefinitions fails when the committed stream definitions differ
// from natsx.Streams at R3; `make nats-streams` (go test -run
// TestStreamDefinitions -update) rewrites them.
func TestStreamDefinitions(t *testing.T) {
	t.Parallel()
	want := map[string][]byte{}
	for _, cfg := range natsx.Streams() {
		cfg.Replicas = productionReplicas
		data, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		want[cfg.Name+".json"] = append(data, '\n')
	}
	if *update {
		old, _ := filepath.Glob(filepath.Join(streamsDir, "*.json"))
		for _, f := range old {
			if _, keep := want[filepath.Base(f)]; !keep {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
		}
		for name, data := range want {
			if err := os.WriteFile(filepath.Join(streamsDir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	got, err := filepath.Glob(filepath.Join(streamsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range got {
		if _, ok := want[filepath.Base(f)]; !ok {
			t.Errorf("%s: no stream of natsx.Streams has this name: run make nats-streams", f)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		data, err := os.ReadFile(filepath.Join(streamsDir, name))
		if err != nil {
			t.Errorf("%v: run make nats-streams", err)
			continue
		}
		if !bytes.Equal(data, want[name]) {
			t.Errorf("%s/%s differs from natsx.Streams at R%d: run make nats-streams and commit", streamsDir, name, productionReplicas)
		}
	}
}
