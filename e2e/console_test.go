package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edubureau/studentaid/internal/devtools/stack"
	"github.com/edubureau/studentaid/pkg/auth"
	"github.com/edubureau/studentaid/pkg/idnumber"
	"github.com/edubureau/studentaid/pkg/pii"
	bureaureviewv1 "github.com/edubureau/studentaid/proto/gen/aid/bureaureview/v1"
	datacomparisonv1 "github.com/edubureau/studentaid/proto/gen/aid/datacomparison/v1"
)

// browser is a headless Chromium driven by chromedp, writing a screenshot
// of every page it is asked to into dir.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
	shot int
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium missing in CI: .ci/run installs Debian's chromium")
	}
	t.Skip("chromium not installed (apt-get install chromium); skipping the browser tests")
	return ""
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	// The first run starts the browser, on a context without a deadline
	// (a deadline there would stop the browser with it).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	dir := os.Getenv("AID_CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir, _ = filepath.Abs(filepath.Join("..", ".cache", "console-screenshots"))
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return &browser{t: t, ctx: ctx, base: base, dir: dir}
}

// into runs a, keeping its value in dst.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, t)
		*dst = v
		return chromedp.Void{}, err
	}
}

// run runs actions with a deadline, failing the test with what the page
// showed when they fail.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		var body string
		body, _ = chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body")))
		b.t.Fatalf("%s: %v\npage:\n%s", what, err, body)
	}
}

// screenshot writes the page as NN-name.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	var buf []byte
	b.run("screenshot "+name, into(&buf, chromedp.FullScreenshot(100)))
	b.shot++
	if err := os.WriteFile(filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.shot, name)), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// checkLabels fails when an input of the page has no label.
func (b *browser) checkLabels(page string) {
	b.t.Helper()
	var unlabelled []string
	b.run("labels of "+page, into(&unlabelled, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea")).
		filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")).map(e => e.name || e.id || e.outerHTML)`)))
	if len(unlabelled) > 0 {
		b.t.Errorf("%s: inputs without a label: %v", page, unlabelled)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.run("read "+sel, into(&s, chromedp.Text(chromedp.CSS(sel))))
	return strings.TrimSpace(s)
}

func (b *browser) signIn(user string) {
	b.t.Helper()
	b.run("sign in as "+user,
		chromedp.Navigate(b.base+"/signin"),
		chromedp.Click(chromedp.CSS("#user-"+user)),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		chromedp.WaitVisible(chromedp.CSS("#whoami")),
	)
	if got := b.text("#whoami"); !strings.HasPrefix(got, user+" ") {
		b.t.Fatalf("signed in as %q, want %s", got, user)
	}
}

func (b *browser) signOut() {
	b.t.Helper()
	b.run("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signin-dev")))
}

// until reloads url until the element sel shows and cond holds on the page's text.
func (b *browser) until(what, url, sel string, cond func(text string) bool) {
	b.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var text string
		var nodes []*chromedp.Node
		ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
		err := chromedp.Do(ctx, chromedp.Navigate(b.base+url), chromedp.WaitReady(chromedp.CSS("body")),
			into(&nodes, chromedp.Nodes(chromedp.CSS(sel), chromedp.AtLeast(0))), into(&text, chromedp.Text(chromedp.CSS("body"))))
		cancel()
		if err == nil && len(nodes) > 0 && cond(text) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: not reached (last error %v)\npage:\n%s", what, err, text)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// consoleStudent is one row of the uploaded list.
type consoleStudent struct{ id, name, card, account string }

func consoleStudents(n int, seq int) []consoleStudent {
	out := make([]consoleStudent, n)
	for i := range out {
		out[i] = consoleStudent{
			id:   idnumber.Generate("420102", time.Date(2008, 3, 1+i, 0, 0, 0, 0, time.UTC), seq+i),
			name: []string{"王小明", "李华", "张静", "刘洋"}[i%4],
			card: pii.GenerateCardNumber("621700", int64(seq*100+i), 19),
		}
		out[i].account = out[i].name
	}
	return out
}

// listCSV is the school's list as its office keeps it, with Chinese headings.
func listCSV(rows []consoleStudent, badIDRow int) []byte {
	var b strings.Builder
	b.WriteString("身份证号,姓名,学段,资助项目,寄宿,农村,建档立卡,银行卡号,户名\n")
	for i, r := range rows {
		id := r.id
		if i == badIDRow {
			// A typo in the check digit.
			last := id[17]
			id = id[:17] + map[bool]string{true: "1", false: "0"}[last == '0']
		}
		fmt.Fprintf(&b, "%s,%s,小学,BOARDING_SUBSIDY,是,是,否,%s,%s\n", id, r.name, r.card, r.account)
	}
	return []byte(b.String())
}

// TestConsoleJourney walks the chain through the console in a real
// browser, as the people do: the school's officer uploads a list with a bad
// row, sees it, fixes it and submits; the school's reviewer approves in
// bulk and prints the public notice; the bureau approves by keyboard only;
// one finance officer closes the batch and a second confirms it by
// re-typing the count and sum; the applications are paid; the auditor sees
// the trail verified; the reports page draws the figures. Then the
// refusals: a form without its CSRF token, another school's application by
// URL, and a session after sign-out.
func TestConsoleJourney(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts the stack and a browser")
	}
	s := startStack(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "2s"}, true)
	base := "http://" + s.Console
	b := newBrowser(t, base)
	dir := t.TempDir()
	students := consoleStudents(4, 710)
	// The bank returns the fourth student's payment: the account name does
	// not match the card (the bank simulator's 错名).
	students[3].account = "错名"

	// The school's officer: a list with a bad ID number is refused whole,
	// with the row and column named; the corrected list goes in.
	b.signIn("officer1")
	b.screenshot("applications-empty")
	badFile, goodFile := filepath.Join(dir, "名单-有误.csv"), filepath.Join(dir, "名单.csv")
	if err := os.WriteFile(badFile, listCSV(students, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goodFile, listCSV(students, -1), 0o600); err != nil {
		t.Fatal(err)
	}
	b.run("open upload", chromedp.Navigate(base+"/upload"), chromedp.WaitVisible(chromedp.CSS("#upload-form")))
	b.checkLabels("upload")
	b.screenshot("upload")
	b.run("upload the bad list",
		chromedp.SetValue(chromedp.CSS("#term"), "2017-autumn"),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{badFile}),
		chromedp.Click(chromedp.CSS("#check")),
		chromedp.WaitVisible(chromedp.CSS("#upload-bad")))
	rows := b.text("#bad-rows tbody")
	if !strings.Contains(rows, "3") || !strings.Contains(rows, "身份证号") {
		t.Fatalf("bad rows %q: want line 3, column 身份证号", rows)
	}
	if n := strings.Count(b.text("#bad-rows tbody"), "\n") + 1; n != 1 {
		t.Errorf("bad rows listed %d, want 1: %q", n, rows)
	}
	b.screenshot("upload-bad-row")
	b.run("upload the corrected list",
		chromedp.Navigate(base+"/upload"),
		chromedp.SetValue(chromedp.CSS("#term"), "2017-autumn"),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{goodFile}),
		chromedp.Click(chromedp.CSS("#check")),
		chromedp.WaitVisible(chromedp.CSS("#upload-ok")))
	if got := b.text("#upload-ok"); !strings.Contains(got, "2,000.00") {
		t.Errorf("checked list %q: want the total 2,000.00 (4 × 500 yuan)", got)
	}
	b.screenshot("upload-ok")
	b.run("submit", chromedp.Click(chromedp.CSS("#submit")), chromedp.WaitVisible(chromedp.CSS("#upload-submitted")))
	if got := b.text("#submitted-count"); got != "4" {
		t.Fatalf("submitted %q, want 4", got)
	}
	b.screenshot("upload-submitted")
	b.until("four submitted applications", "/applications?term=2017-autumn", "#applications", func(text string) bool {
		return strings.Count(text, "BOARDING_SUBSIDY") == 4
	})
	var appIDs []string
	b.run("application IDs", into(&appIDs, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#applications tbody tr")).map(r => r.dataset.id)`)))
	if len(appIDs) != 4 {
		t.Fatalf("application IDs %v", appIDs)
	}
	b.checkLabels("applications")
	b.screenshot("applications-submitted")
	b.signOut()

	// The school's reviewer approves all four at once, then the notice.
	b.signIn("reviewer1")
	b.run("inbox", chromedp.WaitVisible(chromedp.CSS("#reviews")))
	b.checkLabels("school inbox")
	b.screenshot("school-inbox")
	b.run("approve in bulk",
		chromedp.Click(chromedp.CSS("#select-all")),
		chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#decide-summary")))
	if got := b.text("#decided"); got != "4" {
		t.Fatalf("decided %q, want 4 (failed %s)", got, b.text("#decide-failed"))
	}
	b.screenshot("school-bulk-result")
	b.run("notice", chromedp.Navigate(base+"/school/notice?term=2017-autumn"), chromedp.WaitVisible(chromedp.CSS("#notice-list")))
	notice := b.text("#notice-list")
	for _, st := range students {
		if strings.Contains(notice, st.id) || !strings.Contains(notice, idnumber.Mask(st.id)) {
			t.Errorf("notice should show %s masked, never in full: %q", st.id[:6], notice)
		}
	}
	if got := b.text("#notice-total"); got != "2,000.00" {
		t.Errorf("notice total %q", got)
	}
	if !regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`).MatchString(b.text("#notice-ends")) {
		t.Errorf("notice end date %q", b.text("#notice-ends"))
	}
	b.checkLabels("notice")
	b.screenshot("public-notice")
	b.signOut()

	// The data office has the school's roster, without the third student:
	// the bureau's inbox flags that one, and only that one.
	data := newUser(t, s, "data1", auth.RoleDataOfficer, auth.OrgBureau)
	var roster strings.Builder
	roster.WriteString("id_number,name,stage\n")
	for i, st := range students {
		if i != 2 {
			roster.WriteString(st.id + "," + st.name + ",primary\n")
		}
	}
	if res, err := data.data.ImportReference(ctxT(t), &datacomparisonv1.ImportReferenceRequest{Kind: datacomparisonv1.ReferenceKind_REFERENCE_KIND_ROSTER,
		SchoolCode: "S001", Term: "2017-autumn", FileName: "roster.csv", Content: []byte(roster.String())}); err != nil || !res.GetImported() {
		t.Fatalf("import the roster: %v %v", err, res.GetBadRows())
	}

	// The bureau: the whole decision by keyboard.
	b.signIn("bureau1")
	b.until("four items in the bureau's inbox, the data office knowing them", "/bureau/reviews?term=2017-autumn", "#reviews", func(text string) bool {
		return strings.Count(text, "BOARDING_SUBSIDY") == 4 && !strings.Contains(text, "数据比对尚未收到")
	})
	var flagged []string
	b.run("flagged rows", into(&flagged, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#reviews tbody tr")).filter(r => r.querySelector(".flag")).map(r => r.textContent)`)))
	if len(flagged) != 1 || !strings.Contains(flagged[0], idnumber.Mask(students[2].id)) || !strings.Contains(flagged[0], "不在学校花名册") {
		t.Fatalf("flagged rows %q: want only the third student's, not on the roster", flagged)
	}
	b.checkLabels("bureau inbox")
	b.screenshot("bureau-inbox")
	b.run("approve by keyboard",
		chromedp.Focus(chromedp.CSS("#select-all")),
		chromedp.KeyEvent(" "),
		chromedp.Focus(chromedp.CSS("#approve")),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("#decide-summary")))
	if got := b.text("#decided"); got != "4" {
		t.Fatalf("bureau decided %q, want 4", got)
	}
	// Each decision recorded the flags its reviewer was shown.
	bureau := newUser(t, s, "auditor-x", auth.RoleAuditor, auth.OrgBureau)
	for _, id := range appIDs {
		rv, err := bureau.bureau.GetReview(ctxT(t), &bureaureviewv1.GetReviewRequest{ApplicationId: id})
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		if strings.HasSuffix(rv.GetStudentIdMasked(), students[2].id[14:]) {
			want = "not_on_roster"
		}
		if got := strings.Join(rv.GetFlagsShown(), ","); got != want {
			t.Errorf("review %s: flags shown %q, want %q", id, got, want)
		}
	}
	b.screenshot("bureau-bulk-result")
	b.signOut()

	// Finance: one officer closes the batch, a second confirms it.
	b.signIn("finance1")
	b.until("an open batch of four", "/finance/batches?state=OPEN", "#batches", func(text string) bool { return strings.Contains(text, "2,000.00") })
	var batchID string
	b.run("batch id", into(&batchID, chromedp.Evaluate[string](`document.querySelector("#batches tbody tr").dataset.id`)))
	b.screenshot("batches")
	b.run("close", chromedp.Navigate(base+"/finance/batches/"+batchID), chromedp.Click(chromedp.CSS("#close")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	b.screenshot("batch-closed")
	b.signOut()
	b.signIn("finance2")
	b.run("open batch", chromedp.Navigate(base+"/finance/batches/"+batchID), chromedp.WaitVisible(chromedp.CSS("#confirm-form")))
	b.checkLabels("batch")
	b.run("confirm with a wrong sum",
		chromedp.SendKeys(chromedp.CSS("#count"), "4"), chromedp.SendKeys(chromedp.CSS("#sum"), "2000.01"),
		chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#error")))
	b.screenshot("batch-confirm-refused")
	if got := b.text("#batch-status"); !strings.Contains(got, "已关闭") {
		t.Fatalf("a wrong sum changed the batch: %s", got)
	}
	b.run("confirm",
		chromedp.Navigate(base+"/finance/batches/"+batchID), chromedp.WaitVisible(chromedp.CSS("#confirm-form")),
		chromedp.SendKeys(chromedp.CSS("#count"), "4"), chromedp.SendKeys(chromedp.CSS("#sum"), "2000.00"),
		chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := b.text("#batch-status"); !strings.Contains(got, "已确认") {
		t.Fatalf("batch %s after confirmation", got)
	}
	b.screenshot("batch-confirmed")
	b.signOut()

	// Paid, as the school sees it: three; the bank returned the fourth.
	b.signIn("officer1")
	b.until("three paid", "/applications?term=2017-autumn&status=PAID", "#applications", func(text string) bool {
		return strings.Count(text, "BOARDING_SUBSIDY") == 3
	})
	b.until("one returned", "/applications?term=2017-autumn&status=PAYMENT_FAILED", "#applications", func(text string) bool {
		return strings.Count(text, "BOARDING_SUBSIDY") == 1
	})
	var failedID string
	b.run("failed id", into(&failedID, chromedp.Evaluate[string](`document.querySelector("#applications tbody tr").dataset.id`)))
	b.screenshot("applications-returned")
	// The officer enters the right card and name; a reviewer approves it.
	b.run("correct the payee", chromedp.Navigate(base+"/applications/"+failedID), chromedp.WaitVisible(chromedp.CSS("#payee-form")))
	b.checkLabels("application")
	b.run("enter the correction",
		chromedp.SendKeys(chromedp.CSS("#bank_card_number"), pii.GenerateCardNumber("621700", 7777123, 19)),
		chromedp.SendKeys(chromedp.CSS("#account_name"), students[3].name),
		chromedp.Click(chromedp.CSS("#payee-submit")), chromedp.WaitVisible(chromedp.CSS("#payee-pending")))
	b.screenshot("payee-correction-entered")
	b.signOut()
	b.signIn("reviewer1")
	b.run("payee queue", chromedp.Navigate(base+"/school/payees"), chromedp.WaitVisible(chromedp.CSS("#payees")))
	var queued []string
	b.run("queued", into(&queued, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#payees tbody tr")).map(r => r.dataset.id)`)))
	if len(queued) != 1 || queued[0] != failedID {
		t.Fatalf("payee queue %v: want only %s", queued, failedID)
	}
	b.checkLabels("payees")
	b.screenshot("payee-queue")
	b.run("approve the correction", chromedp.Click(chromedp.CSS("#payees tbody button[value=approve]")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	b.signOut()
	// Finance pays it again, once it has seen the approval.
	b.signIn("finance1")
	deadline := time.Now().Add(60 * time.Second)
	for {
		var flash []*chromedp.Node
		b.run("reissue", chromedp.Navigate(base+"/finance/batches/"+batchID), chromedp.WaitVisible(chromedp.CSS("#items")),
			chromedp.Click(chromedp.CSS("#items button.reissue")), chromedp.WaitVisible(chromedp.CSS("#flash, #error")),
			into(&flash, chromedp.Nodes(chromedp.CSS("#flash"), chromedp.AtLeast(0))))
		if len(flash) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reissue refused: %s", b.text("main"))
		}
		time.Sleep(time.Second)
	}
	b.screenshot("batch-reissued")
	b.signOut()
	b.signIn("officer1")
	b.until("four paid", "/applications?term=2017-autumn&status=PAID", "#applications", func(text string) bool {
		return strings.Count(text, "BOARDING_SUBSIDY") == 4
	})
	b.screenshot("applications-paid")
	b.signOut()

	// The auditor: the trail, verified, with its traces.
	b.signIn("auditor1")
	b.run("audit form", chromedp.WaitVisible(chromedp.CSS("#audit-form")))
	b.checkLabels("audit")
	b.run("audit", chromedp.SendKeys(chromedp.CSS("#application_id"), appIDs[0]), chromedp.SendKeys(chromedp.CSS("#purpose"), "年度审计抽查"),
		chromedp.Click(chromedp.CSS("#show")), chromedp.WaitVisible(chromedp.CSS("#verify")))
	var verifyClass, jaegerHref chromedp.AttributeResult
	b.run("verify", into(&verifyClass, chromedp.AttributeValue(chromedp.CSS("#verify"), "class")),
		into(&jaegerHref, chromedp.AttributeValue(chromedp.CSS("#jaeger"), "href")))
	if verifyClass.Value != "flash" {
		t.Errorf("trail not verified: %s", b.text("#verify"))
	}
	if !strings.Contains(b.text("#trail"), "PAID") && !strings.Contains(b.text("#trail"), "已发放") {
		t.Errorf("trail lacks the payment: %s", b.text("#trail"))
	}
	if !strings.Contains(jaegerHref.Value, url.QueryEscape(appIDs[0])) && !strings.Contains(jaegerHref.Value, appIDs[0]) {
		t.Errorf("Jaeger link %q does not name the application", jaegerHref.Value)
	}
	if b.text("#app-id") != appIDs[0] {
		t.Errorf("audited %q", b.text("#app-id"))
	}
	b.screenshot("audit-trail")
	// The reports, in English this time.
	b.run("reports in English", chromedp.Navigate(base+"/lang/en?back=/reports%3Fyear%3D2017"), chromedp.WaitVisible(chromedp.CSS("svg")))
	if got := b.text("h1"); got != "Reports" {
		t.Errorf("English heading %q", got)
	}
	var bars int
	if got := b.text("#gov-total"); got != "2,000.00" {
		t.Errorf("government total %q, want 2,000.00", got)
	}
	b.run("bars", into(&bars, chromedp.Evaluate[int](`document.querySelectorAll("svg rect.bar").length`)))
	// One bar for the one program paid, two for the funding split, six for the terms.
	if bars != 1+2+6 {
		t.Errorf("%d bars drawn", bars)
	}
	var paidRow string
	b.run("steps", into(&paidRow, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#steps tbody tr")).map(r => r.textContent).find(t => t.startsWith("Paid")) || ""`)))
	if !strings.HasPrefix(paidRow, "Paid4") {
		t.Errorf("steps: the paid row reads %q, want 4 applications there now", paidRow)
	}
	b.screenshot("reports-en")
	b.signOut()

	// Refusals, over plain HTTP with the browser's way of signing in.
	officer := signInHTTP(t, base, "officer1")
	other := signInHTTP(t, base, "officer2")
	reviewer := signInHTTP(t, base, "reviewer1")
	// A form without its token.
	resp := reviewer.post(t, "/school/decide", url.Values{"id": {appIDs[0]}, "action": {"approve"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a decision without its CSRF token: %d, want 403", resp.StatusCode)
	}
	resp = reviewer.post(t, "/school/decide", url.Values{"id": {appIDs[0]}, "action": {"approve"}, "csrf": {officer.csrf}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a decision with another session's CSRF token: %d, want 403", resp.StatusCode)
	}
	// Another school's application by URL.
	code, body := other.get(t, "/applications/"+appIDs[0])
	if code < 400 || strings.Contains(body, students[0].name) || strings.Contains(body, appIDs[0]+"</dd>") {
		t.Errorf("another school's application by URL: %d", code)
	}
	if code, _ := officer.get(t, "/applications/"+appIDs[0]); code != http.StatusOK {
		t.Errorf("own school's application: %d", code)
	}
	// A session after sign-out.
	old := officer.cookie(t)
	officer.post(t, "/signout", url.Values{"csrf": {officer.csrf}})
	replay := newHTTPClient(t, base)
	replay.setCookie(t, old)
	if code, _ := replay.get(t, "/applications"); code != http.StatusSeeOther {
		t.Errorf("a signed-out session's cookie: %d, want 303 to sign-in", code)
	}
	if resp := replay.post(t, "/upload", url.Values{"csrf": {officer.csrf}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a form with a signed-out session: %d, want 401", resp.StatusCode)
	}
	// The headers every page carries.
	resp = other.post(t, "/school/decide", url.Values{"csrf": {other.csrf}})
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a school officer at the reviewer's form: %d", resp.StatusCode)
	}
	_ = s
}

// httpUser is a console session driven over plain HTTP.
type httpUser struct {
	c    *http.Client
	base string
	csrf string
}

func newHTTPClient(t *testing.T, base string) *httpUser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &httpUser{base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signInHTTP signs in through the development sign-in as a browser would.
func signInHTTP(t *testing.T, base, user string) *httpUser {
	t.Helper()
	u := newHTTPClient(t, base)
	_, page := u.get(t, "/signin")
	m := csrfField.FindStringSubmatch(page)
	idx := regexp.MustCompile(`id="user-` + regexp.QuoteMeta(user) + `" value="(\d+)"`).FindStringSubmatch(page)
	if m == nil || idx == nil {
		t.Fatalf("sign-in page lacks the form or %s", user)
	}
	resp := u.post(t, "/signin/dev", url.Values{"csrf": {m[1]}, "user": {idx[1]}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in %s: %d", user, resp.StatusCode)
	}
	// Any page of the user carries the session's CSRF token.
	_, page = u.get(t, "/reports")
	if m = csrfField.FindStringSubmatch(page); m == nil {
		_, page = u.get(t, "/applications")
		if m = csrfField.FindStringSubmatch(page); m == nil {
			t.Fatalf("no CSRF token on %s's pages", user)
		}
	}
	u.csrf = m[1]
	return u
}

func (u *httpUser) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := u.c.Get(u.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// posted is the answer to a form: its status and headers.
type posted struct {
	StatusCode int
	Header     http.Header
}

func (u *httpUser) post(t *testing.T, path string, form url.Values) posted {
	t.Helper()
	resp, err := u.c.PostForm(u.base+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	return posted{resp.StatusCode, resp.Header}
}

func (u *httpUser) cookie(t *testing.T) *http.Cookie {
	t.Helper()
	base, _ := url.Parse(u.base)
	for _, c := range u.c.Jar.Cookies(base) {
		if c.Name == "aid_session" {
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}

func (u *httpUser) setCookie(t *testing.T, c *http.Cookie) {
	t.Helper()
	base, _ := url.Parse(u.base)
	u.c.Jar.SetCookies(base, []*http.Cookie{c})
}

var _ = stack.Services

// TestConsoleDataOffice: the data officer's work in the browser — a
// history file with a bad row is refused whole with the row listed, the
// corrected one is imported; a comparison run finds the planted duplicate
// payment; the clue is assigned, verified as ineligible, and its refund
// recovered in two receipts until it closes.
func TestConsoleDataOffice(t *testing.T) {
	s := startStack(t, nil, false)
	base := "http://" + s.Console
	b := newBrowser(t, base)
	dir := t.TempDir()
	id := idnumber.Generate("420102", time.Date(2001, 5, 6, 0, 0, 0, 0, time.UTC), 731)
	other := idnumber.Generate("420102", time.Date(2001, 7, 8, 0, 0, 0, 0, time.UTC), 732)
	header := "身份证号,姓名,学校代码,项目代码,学期,学段,金额\n"
	// The same student paid the high-school grant by two schools in one term.
	good := header + id + ",陈晨,S008,HS_NATIONAL_GRANT,2016-autumn,high_school,1000\n" +
		id + ",陈晨,S013,HS_NATIONAL_GRANT,2016-autumn,high_school,1000\n" +
		other + ",周舟,S008,HS_NATIONAL_GRANT,2016-autumn,high_school,1250\n"
	bad := header + id + ",陈晨,S008,HS_NATIONAL_GRANT,2016-autumn,high_school,1000\n" +
		other + ",周舟,S008,HS_NATIONAL_GRANT,2016-autumn,high_school,-5\n"
	badFile, goodFile := filepath.Join(dir, "history-bad.csv"), filepath.Join(dir, "history.csv")
	if err := os.WriteFile(badFile, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goodFile, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	b.signIn("data1")
	b.run("imports", chromedp.Navigate(base+"/data/imports"), chromedp.WaitVisible(chromedp.CSS("#import-form")))
	b.checkLabels("imports")
	b.run("import the bad file",
		chromedp.SetValue(chromedp.CSS("#kind"), "HISTORY"), chromedp.SendKeys(chromedp.CSS("#source"), "schools-2016"),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{badFile}),
		chromedp.Click(chromedp.CSS("#import")), chromedp.WaitVisible(chromedp.CSS("#import-bad")))
	if rows := b.text("#bad-rows tbody"); !strings.HasPrefix(rows, "3") || strings.Count(rows, "\n") != 0 {
		t.Errorf("bad rows %q: want line 3 only", rows)
	}
	b.screenshot("import-bad-row")
	b.run("import the corrected file", chromedp.Navigate(base+"/data/imports"),
		chromedp.SetValue(chromedp.CSS("#kind"), "HISTORY"), chromedp.SendKeys(chromedp.CSS("#source"), "schools-2016"),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{goodFile}),
		chromedp.Click(chromedp.CSS("#import")), chromedp.WaitVisible(chromedp.CSS("#import-ok")))
	if got := b.text("#import-ok"); !strings.Contains(got, "3") {
		t.Errorf("imported %q, want 3 rows", got)
	}
	b.screenshot("import-ok")

	b.run("run a comparison", chromedp.Navigate(base+"/data/clues"),
		chromedp.SetValue(chromedp.CSS("#from_term"), "2016-autumn"), chromedp.SetValue(chromedp.CSS("#to_term"), "2016-autumn"),
		chromedp.Click(chromedp.CSS("#compare")), chromedp.WaitVisible(chromedp.CSS("#compare-summary")))
	if got := b.text("#compare-summary"); !strings.Contains(got, "3 ") {
		t.Errorf("comparison %q: want 3 records compared", got)
	}
	b.screenshot("comparison-done")
	b.until("the duplicate clue", "/data/clues?state=OPEN", "#clues", func(text string) bool { return strings.Contains(text, idnumber.Mask(id)) })
	var clueIDs []string
	b.run("clue ids", into(&clueIDs, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#clues tbody tr")).map(r => r.dataset.id)`)))
	if len(clueIDs) == 0 {
		t.Fatal("no clue")
	}
	b.checkLabels("clues")
	b.screenshot("clues-open")
	b.run("assign to me", chromedp.Click(chromedp.CSS("#select-all")), chromedp.Click(chromedp.CSS("#assign")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	b.run("verify as ineligible", chromedp.Navigate(base+"/data/clues?state=ASSIGNED"), chromedp.WaitVisible(chromedp.CSS("#clues")),
		chromedp.Click(chromedp.CSS("#select-all")),
		chromedp.SendKeys(chromedp.CSS("#findings"), "同一学期两校重复发放"), chromedp.SendKeys(chromedp.CSS("#evidence"), "两校花名册"),
		chromedp.Click(chromedp.CSS("#ineligible")), chromedp.SendKeys(chromedp.CSS("#recover"), "1000"),
		chromedp.Click(chromedp.CSS("#verify")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	b.screenshot("clue-verified")
	b.until("an open refund of 1,000.00", "/data/refunds", "#refunds", func(text string) bool { return strings.Contains(text, "1,000.00") })
	var refundID string
	b.run("refund id", into(&refundID, chromedp.Evaluate[string](`document.querySelector("#refunds tbody tr").dataset.id`)))
	b.checkLabels("refunds")
	for i, amount := range []string{"400", "600"} {
		b.run("receipt "+amount, chromedp.Navigate(base+"/data/refunds"), chromedp.WaitVisible(chromedp.CSS("#amt-"+refundID)),
			chromedp.SendKeys(chromedp.CSS("#amt-"+refundID), amount), chromedp.SendKeys(chromedp.CSS("#ref-"+refundID), fmt.Sprintf("BANK-%d", i+1)),
			chromedp.Click(chromedp.CSS("#refunds tbody tr button")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	}
	row := b.text("#refunds tbody tr")
	if !strings.Contains(row, "已关闭") || strings.Count(row, "1,000.00") != 2 {
		t.Errorf("refund after 400 + 600 received: %q, want CLOSED with 1,000.00 received", row)
	}
	if got := b.text("#refunds tbody tr td.receipts"); got != "400.00 BANK-1\n600.00 BANK-2" {
		t.Errorf("receipts listed %q, want 400.00 BANK-1 and 600.00 BANK-2", got)
	}
	b.screenshot("refund-closed")
}
