package e2e

import (
	"encoding/csv"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edubureau/studentaid/pkg/idnumber"
)

// TestConsolePolicy: a policy administrator reads the programs in force
// and proposes a new version from the published one (a bad document is
// refused with its problems listed), may not approve her own draft; a
// second administrator restates the draft's SHA-256 and publishes it, and
// the next term's policy shows the new amount.
func TestConsolePolicy(t *testing.T) {
	s := startStack(t, nil, false)
	base := "http://" + s.Console
	b := newBrowser(t, base)

	b.signIn("policy1")
	b.run("policy", chromedp.Navigate(base+"/policy?term=2017-autumn"), chromedp.WaitVisible(chromedp.CSS("#programs")))
	if row := b.text(`#programs tr[data-code="PRESCHOOL_AID"]`); !strings.Contains(row, "500.00") || !strings.Contains(row, "学前") {
		t.Errorf("PRESCHOOL_AID in force for 2017-autumn: %q, want 500.00 for 学前", row)
	}
	if row := b.text(`#programs tr[data-code="HS_NATIONAL_GRANT"]`); !strings.Contains(row, "分档") {
		t.Errorf("HS_NATIONAL_GRANT: %q, want tiered (分档)", row)
	}
	b.checkLabels("policy")
	b.screenshot("policy")

	b.run("propose", chromedp.Click(chromedp.CSS("#draft-programs")), chromedp.WaitVisible(chromedp.CSS("#document")))
	b.checkLabels("policy draft")
	// The document as published, edited the way an administrator would.
	edit := func(preschoolFen int) string {
		return `(() => { const ta = document.querySelector("#document"); const d = JSON.parse(ta.value);
			d.effective_from = "2018-spring"; d.summary = "学前资助标准调整";
			d.programs.find(p => p.code === "PRESCHOOL_AID").standard_fen.preschool = ` + strconv.Itoa(preschoolFen) + `;
			ta.value = JSON.stringify(d, null, 2); return true; })()`
	}
	var ok bool
	b.run("a negative standard", into(&ok, chromedp.Evaluate[bool](edit(-100))), chromedp.Click(chromedp.CSS("#draft")),
		chromedp.WaitVisible(chromedp.CSS("#problem")))
	if got := b.text("#problems"); !strings.Contains(got, "PRESCHOOL_AID") && !strings.Contains(got, "standard") {
		t.Errorf("problems of a negative standard: %q", got)
	}
	b.screenshot("policy-draft-refused")
	b.run("the corrected draft", into(&ok, chromedp.Evaluate[bool](edit(60000))), chromedp.Click(chromedp.CSS("#draft")),
		chromedp.WaitVisible(chromedp.CSS("#version-status")))
	if got := b.text("#version-status"); got != "待批准" {
		t.Errorf("new version: %q, want 待批准", got)
	}
	if got := b.text("#flash"); !strings.Contains(got, "待另一位政策管理员批准") {
		t.Errorf("flash %q", got)
	}
	sha := b.text("#version-sha")
	number := b.text("#version-number")
	if len(sha) != 64 || number != "2" {
		t.Fatalf("draft %q with SHA-256 %q", number, sha)
	}
	b.checkLabels("policy version")
	b.screenshot("policy-draft")
	// The drafter may not approve her own draft.
	b.run("approve one's own", chromedp.SendKeys(chromedp.CSS("#sha256"), sha), chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#problem")))
	if got := b.text("#version-status"); got != "待批准" {
		t.Errorf("after the drafter's approval: %q, want still 待批准", got)
	}
	b.screenshot("policy-own-approval-refused")
	b.signOut()

	b.signIn("policy2")
	b.run("the draft", chromedp.Navigate(base+"/policy"), chromedp.WaitVisible(chromedp.CSS(`#versions-programs tr[data-status="DRAFT"] a`)),
		chromedp.Click(chromedp.CSS(`#versions-programs tr[data-status="DRAFT"] a`)), chromedp.WaitVisible(chromedp.CSS("#approve-form")))
	b.run("a mistyped digest", chromedp.SendKeys(chromedp.CSS("#sha256"), strings.Repeat("0", 64)), chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#problem")))
	b.run("approve", chromedp.SendKeys(chromedp.CSS("#sha256"), sha), chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := b.text("#version-status"); got != "已发布" {
		t.Errorf("approved version: %q, want 已发布", got)
	}
	if got := b.text("#version-approver"); !strings.HasPrefix(got, "policy2") {
		t.Errorf("approver %q, want policy2", got)
	}
	b.screenshot("policy-published")
	b.run("in force next term", chromedp.Navigate(base+"/policy?term=2018-spring"), chromedp.WaitVisible(chromedp.CSS("#programs")))
	if row := b.text(`#programs tr[data-code="PRESCHOOL_AID"]`); !strings.Contains(row, "600.00") {
		t.Errorf("PRESCHOOL_AID for 2018-spring: %q, want 600.00", row)
	}
	b.run("in English", chromedp.Click(chromedp.CSS("#lang")), chromedp.WaitVisible(chromedp.CSS("#programs")))
	if got := b.text("#in-force"); !strings.Contains(got, "In force for the term") {
		t.Errorf("English heading %q", got)
	}
	b.screenshot("policy-en")

	// The policy pages are the policy roles' and readers': a school officer is refused.
	officer := signInHTTP(t, base, "officer1")
	if code, _ := officer.get(t, "/policy"); code != http.StatusForbidden {
		t.Errorf("school officer on /policy: %d, want 403", code)
	}
	admin := signInHTTP(t, base, "policy1")
	if resp := admin.post(t, "/policy/programs/draft", url.Values{"document": {"{}"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a draft without its CSRF token: %d, want 403", resp.StatusCode)
	}
}

// TestConsoleExchange: the data officer exports a term range's records
// (download and the export folder, with person-times by stage), then
// imports the clue list the big-data office returned: refused whole with
// its bad row listed, then imported, and its clue is in the queue.
func TestConsoleExchange(t *testing.T) {
	exportDir := t.TempDir()
	s := startStack(t, map[string]string{"DATA_COMPARISON_EXPORT_DIR": exportDir}, false)
	base := "http://" + s.Console
	b := newBrowser(t, base)
	dir := t.TempDir()
	id := idnumber.Generate("420102", time.Date(2001, 5, 6, 0, 0, 0, 0, time.UTC), 741)
	other := idnumber.Generate("420102", time.Date(2001, 7, 8, 0, 0, 0, 0, time.UTC), 742)
	history := "身份证号,姓名,学校代码,项目代码,学期,学段,金额\n" +
		id + ",陈晨,S008,HS_NATIONAL_GRANT,2016-autumn,high_school,1000\n" +
		other + ",周舟,S008,HS_NATIONAL_GRANT,2016-autumn,high_school,1250\n"
	historyFile := filepath.Join(dir, "history.csv")
	if err := os.WriteFile(historyFile, []byte(history), 0o600); err != nil {
		t.Fatal(err)
	}
	b.signIn("data1")
	b.run("import the history", chromedp.Navigate(base+"/data/imports"),
		chromedp.SetValue(chromedp.CSS("#kind"), "HISTORY"), chromedp.SendKeys(chromedp.CSS("#source"), "schools-2016"),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{historyFile}),
		chromedp.Click(chromedp.CSS("#import")), chromedp.WaitVisible(chromedp.CSS("#import-ok")))

	b.run("exchange", chromedp.Navigate(base+"/data/exchange"), chromedp.WaitVisible(chromedp.CSS("#export-form")))
	b.checkLabels("exchange")
	b.screenshot("exchange")
	b.run("export to the folder", chromedp.SetValue(chromedp.CSS("#from_term"), "2016-autumn"), chromedp.SetValue(chromedp.CSS("#to_term"), "2016-autumn"),
		chromedp.SetValue(chromedp.CSS("#format"), "XLSX"), chromedp.Click(chromedp.CSS("#export-folder")), chromedp.WaitVisible(chromedp.CSS("#export-done")))
	summary := b.text("#export-summary")
	if !strings.Contains(summary, "高中") || !strings.Contains(summary, "2,250.00") {
		t.Errorf("export summary %q: want high school, 2 person-times, 2,250.00", summary)
	}
	path := b.text("#export-path")
	if st, err := os.Stat(filepath.Join(exportDir, path)); err != nil || st.Size() == 0 {
		t.Errorf("exported file %s: %v", path, err)
	}
	b.screenshot("export-written")

	// The download, as the browser would save it.
	officer := signInHTTP(t, base, "data1")
	resp, err := officer.c.PostForm(base+"/data/exchange/export", url.Values{"csrf": {officer.csrf}, "from_term": {"2016-autumn"},
		"to_term": {"2016-autumn"}, "format": {"CSV"}, "to": {"download"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(readAll(t, resp), "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") || len(rows) != 3 || rows[0][0] != "record_id" {
		t.Fatalf("download: %d %q, %d lines %v", resp.StatusCode, resp.Header.Get("Content-Disposition"), len(rows), rows)
	}
	if resp := officer.post(t, "/data/exchange/export", url.Values{"from_term": {"2016-autumn"}, "to_term": {"2016-autumn"}, "format": {"CSV"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an export without its CSRF token: %d, want 403", resp.StatusCode)
	}
	record := rows[1][0]

	header := "record_ids,kind,detail,amount_yuan,clue_no\n"
	bad := header + record + ",duplicate_payment,两校重复,1000,BD-1\n" + record + ",bogus,未知类型,,BD-2\n"
	good := header + record + ",deceased,户籍注销后仍发放,1000,BD-1\n"
	badFile, goodFile := filepath.Join(dir, "clues-bad.csv"), filepath.Join(dir, "clues.csv")
	if err := os.WriteFile(badFile, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goodFile, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	b.run("the list with a bad row", chromedp.Navigate(base+"/data/exchange"), chromedp.SetUploadFiles(chromedp.CSS("#clue-file"), []string{badFile}),
		chromedp.Click(chromedp.CSS("#import-clues")), chromedp.WaitVisible(chromedp.CSS("#clues-bad")))
	if got := b.text("#bad-rows tbody"); !strings.HasPrefix(got, "3") || strings.Count(got, "\n") != 0 {
		t.Errorf("bad rows %q: want line 3 only", got)
	}
	b.screenshot("clue-list-refused")
	b.run("the corrected list", chromedp.Navigate(base+"/data/exchange"), chromedp.SetUploadFiles(chromedp.CSS("#clue-file"), []string{goodFile}),
		chromedp.Click(chromedp.CSS("#import-clues")), chromedp.WaitVisible(chromedp.CSS("#clues-ok")))
	if got := b.text("#clues-ok"); !strings.Contains(got, "新增线索 1") {
		t.Errorf("imported %q, want 1 clue added", got)
	}
	b.screenshot("clue-list-imported")
	// The clue names its record's student, masked, as an office's clue from the list (big_data_office).
	masked := rows[1][2]
	b.until("the returned clue in the queue", "/data/clues?state=OPEN", "#clues", func(text string) bool {
		return strings.Contains(text, masked) && strings.Contains(text, "big_data_office")
	})
	b.screenshot("clue-queue")
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
