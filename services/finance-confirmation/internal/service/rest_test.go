package service_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/edubureau/studentaid/pkg/auth"
)

func TestRESTGateway(t *testing.T) {
	t.Parallel()
	h := start(t)
	a1, a2 := newApproval("S001", "PRESCHOOL_AID", 50000), newApproval("S002", "PRESCHOOL_AID", 50000)
	batchID := h.batchOf(a1, a2)[a1.app]
	token := h.keys.Token(t, "fin-rest", auth.RoleFinanceOfficer, auth.OrgFinance)

	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+h.run.HTTPAddr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]any{}
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
		return resp.StatusCode, out
	}

	code, b := call(http.MethodGet, "/v1/batches/"+batchID, "")
	if code != http.StatusOK || b["batch_id"] != batchID || b["status"] != "BATCH_STATUS_OPEN" || b["control_sum_fen"] != "100000" {
		t.Fatalf("GET batch: %d %v", code, b)
	}
	code, b = call(http.MethodPost, "/v1/batches/"+batchID+":confirm", `{"control_count": "2", "control_sum_fen": "100000"}`)
	if code != http.StatusBadRequest || !strings.Contains(b["message"].(string), "still open") {
		t.Fatalf("confirm an open batch: %d %v", code, b)
	}
	h.closeBatch(batchID)
	code, b = call(http.MethodPost, "/v1/batches/"+batchID+":confirm", `{"control_count": "2", "control_sum_fen": "99999"}`)
	if code != http.StatusBadRequest || !strings.Contains(b["message"].(string), "batch totals changed") {
		t.Fatalf("confirm with wrong totals: %d %v", code, b)
	}
	code, b = call(http.MethodPost, "/v1/batches/"+batchID+":confirm", `{"control_count": "2", "control_sum_fen": "100000"}`)
	if code != http.StatusOK || b["status"] != "BATCH_STATUS_CONFIRMED" || b["confirmed_by"] != "fin-rest" {
		t.Fatalf("confirm: %d %v", code, b)
	}
	code, b = call(http.MethodGet, "/v1/batches/"+batchID+"/items?status=ITEM_STATUS_ORDERED&page_size=1", "")
	if code != http.StatusOK || len(b["items"].([]any)) != 1 || b["next_page_token"] == "" {
		t.Fatalf("items: %d %v", code, b)
	}
}
