package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/jackc/pgx/v5"
)

// Keyboard-only driving: Tab to move, Enter and Space to act, typed text,
// arrow keys in selects and radio groups. Nothing here clicks or calls an
// element's click(); scripts only read the page (which element has the
// focus, what a field holds) and tag the page's controls to see which ones
// Tab reached. A file input is the one exception a keyboard user meets
// too: Tab reaches it and Enter opens the system's file chooser, which a
// headless browser does not draw, so the test hands the chosen file to the
// focused input (chromedp.SetUploadFiles) as the chooser would.

// press sends keys (kb.Tab, kb.Enter, " ", kb.ArrowDown …) to whatever has
// the focus.
func (b *browser) press(keys string, opts ...chromedp.KeyOption) {
	b.t.Helper()
	b.run(fmt.Sprintf("press %q", keys), chromedp.KeyEvent(keys, opts...))
}

// focused describes the element with the focus: its id, or its tag and name.
func (b *browser) focused() string {
	b.t.Helper()
	var s string
	b.run("focused element", into(&s, chromedp.Evaluate[string](`(() => { const e = document.activeElement;
		if (!e || e === document.body) return "";
		return e.id ? "#" + e.id : e.tagName.toLowerCase() + (e.name ? "[name=" + e.name + "]" : "") + (e.getAttribute("href") ? "[href=" + e.getAttribute("href") + "]" : ""); })()`)))
	return s
}

// tabTo presses Tab until the element matching sel has the focus, failing
// when a whole round of the page's controls passes without reaching it.
func (b *browser) tabTo(sel string) {
	b.t.Helper()
	js := fmt.Sprintf(`document.activeElement !== null && document.activeElement.matches(%q)`, sel)
	for range 400 {
		var ok bool
		b.run("focus on "+sel, into(&ok, chromedp.Evaluate[bool](js)))
		if ok {
			return
		}
		b.press(kb.Tab)
	}
	b.t.Fatalf("Tab never reached %s (focus on %s)", sel, b.focused())
}

// typeInto tabs to the field sel, selects what it holds and types text
// over it, a few hundred keys at a time.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	b.tabTo(sel)
	b.press("a", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	b.press(kb.Delete)
	rs := []rune(text)
	for from := 0; from < len(rs); from += 400 {
		b.press(string(rs[from:min(from+400, len(rs))]))
	}
	var got string
	b.run("value of "+sel, into(&got, chromedp.Evaluate[string](`document.activeElement.value`)))
	if got != text {
		b.t.Fatalf("typed %q into %s, it holds %q", text, sel, got)
	}
}

// chooseOption tabs to the select sel and moves down its options with the
// arrow key until value is selected.
func (b *browser) chooseOption(sel, value string) {
	b.t.Helper()
	b.tabTo(sel)
	for range 40 {
		var got string
		b.run("value of "+sel, into(&got, chromedp.Evaluate[string](`document.activeElement.value`)))
		if got == value {
			return
		}
		b.press(kb.ArrowDown)
	}
	b.t.Fatalf("option %q of %s not reached with the arrow key", value, sel)
}

// activate presses key (Enter on a link or button, Space on a checkbox)
// on the focused element and, when it leaves the page, waits for the next
// page to load.
func (b *browser) activate(key string, loads bool) {
	b.t.Helper()
	if !loads {
		b.press(key)
		return
	}
	var ok bool
	b.run("mark the page", into(&ok, chromedp.Evaluate[bool](`window.__kbdOld = true`)))
	b.press(key)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var loaded bool
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`true`))
		if err == nil {
			loaded, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__kbdOld !== true && document.readyState === "complete"`))
		}
		cancel()
		if err == nil && loaded {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("no new page after %q (focus on %s)", key, b.focused())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// follow tabs to the link or button sel and presses Enter, waiting for the
// page it leads to.
func (b *browser) follow(sel string) {
	b.t.Helper()
	b.tabTo(sel)
	b.activate(kb.Enter, true)
}

// checkKeyboard fails when a control of the page (link, button, field)
// cannot be reached with Tab from the top of the page, or when a field has
// no label. A radio group counts as reached when one of its buttons is
// (the arrow keys move within the group).
func (b *browser) checkKeyboard(page string) {
	b.t.Helper()
	b.checkLabels(page)
	var n int
	b.run("tag the controls of "+page, into(&n, chromedp.Evaluate[int](`(() => {
		// Every link, button and field, whatever its tabindex says (one of -1
		// takes it out of the Tab order: that is what this looks for), and
		// anything else made focusable; not main, the skip link's target.
		const els = Array.from(document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex='-1'])")).
			filter(e => !e.disabled && e.getClientRects().length > 0);
		els.forEach((e, i) => { e.dataset.kbd = e.type === "radio" ? "radio:" + e.name : String(i); });
		if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
		return els.length; })()`)))
	if n == 0 {
		b.t.Errorf("%s: no control to reach", page)
		return
	}
	seen := map[string]bool{}
	for range 2*n + 10 {
		b.press(kb.Tab)
		var k string
		b.run("focus", into(&k, chromedp.Evaluate[string](`(document.activeElement && document.activeElement.dataset.kbd) || ""`)))
		if k != "" && seen[k] {
			break // round the page once
		}
		if k != "" {
			seen[k] = true
		}
	}
	var missed []string
	b.run("controls Tab missed on "+page, into(&missed, chromedp.Evaluate[[]string](fmt.Sprintf(`(() => { const seen = %s;
		return Array.from(document.querySelectorAll("[data-kbd]")).filter(e => !seen.includes(e.dataset.kbd)).map(e => e.outerHTML.slice(0, 160)); })()`,
		mustJSON(slices.Collect(maps.Keys(seen)))))))
	if len(missed) > 0 {
		b.t.Errorf("%s: controls Tab does not reach: %v", page, missed)
	}
}

func mustJSON(v any) string {
	out, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(out)
}

// signInByKeyboard signs in through the development sign-in with the keys
// only: Tab to the users, the arrow keys to the user, Tab to the button,
// Enter.
func (b *browser) signInByKeyboard(user string) {
	b.t.Helper()
	b.run("sign-in page", chromedp.Navigate(b.base+"/signin"), chromedp.WaitVisible(chromedp.CSS("#signin-dev")))
	b.tabTo(`input[name=user]`)
	for range 40 {
		var ok bool
		b.run("checked user", into(&ok, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q).checked`, "#user-"+user))))
		if ok {
			break
		}
		b.press(kb.ArrowDown)
	}
	b.follow("#signin-submit")
	if got := b.text("#whoami"); !strings.HasPrefix(got, user+" ") {
		b.t.Fatalf("signed in by keyboard as %q, want %s", got, user)
	}
}

func (b *browser) signOutByKeyboard() {
	b.t.Helper()
	b.follow("#signout")
	b.run("signed out", chromedp.WaitVisible(chromedp.CSS("#signin-dev")))
}

// page checks the page by keyboard and takes its screenshot.
func (b *browser) page(name string) {
	b.t.Helper()
	b.checkKeyboard(name)
	b.screenshot(name)
}

// TestConsoleKeyboard walks every page the console registers, for each
// role that has it, by keyboard only, and does the work of each page with
// the keys: sign in, the navigation, upload and submit, the school's bulk
// approval with a hardship level, the public notice and an objection on
// one of its lines, the bureau's bulk
// approval, a batch item sent back, the batch closed and confirmed by a
// second officer typing its count and sum, a comparison run, the data
// exchange's export, the auditor's trail, a policy draft typed in and
// approved by a second administrator re-typing its SHA-256, the reports in
// English, sign-out. On every page every field must have a label and every
// control must be reachable with Tab (checkKeyboard).
func TestConsoleKeyboard(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts the stack and a browser")
	}
	exportDir := t.TempDir()
	// Long enough to walk the notice page by keyboard, short enough for the
	// bureau to get the items soon after.
	s := startStack(t, map[string]string{"SCHOOL_REVIEW_NOTICE_PERIOD": "20s", "DATA_COMPARISON_EXPORT_DIR": exportDir}, false)
	base := "http://" + s.Console
	b := newBrowser(t, base)
	dir := t.TempDir()
	students := consoleStudents(4, 760)
	list := filepath.Join(dir, "名单.csv")
	if err := os.WriteFile(list, listCSV(students, -1), 0o600); err != nil {
		t.Fatal(err)
	}

	// The sign-in page itself.
	b.run("sign-in page", chromedp.Navigate(base+"/signin"), chromedp.WaitVisible(chromedp.CSS("#signin-dev")))
	b.page("signin")

	// The school's officer: the navigation, the upload, the applications.
	b.signInByKeyboard("officer1")
	b.page("officer-home")
	b.follow(`nav a[href="/school/back-pay"]`)
	b.page("back-pay")
	b.follow(`nav a[href="/upload"]`)
	b.page("upload")
	b.typeInto("#term", "2017-autumn")
	b.tabTo("#file")
	b.run("the file the chooser would give", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{list}))
	b.follow("#check")
	b.run("checked", chromedp.WaitVisible(chromedp.CSS("#upload-ok")))
	b.page("upload-checked")
	b.follow("#submit")
	b.run("submitted", chromedp.WaitVisible(chromedp.CSS("#upload-submitted")))
	if got := b.text("#submitted-count"); got != "4" {
		t.Fatalf("submitted %q, want 4", got)
	}
	b.follow(`main a[href="/applications"]`)
	b.until("four submitted", "/applications?term=2017-autumn", "#applications", func(text string) bool {
		return strings.Count(text, "BOARDING_SUBSIDY") == 4
	})
	b.page("applications")
	b.follow("#applications tbody tr:first-child a")
	b.run("application", chromedp.WaitVisible(chromedp.CSS("#app-id")))
	b.page("application")
	b.signOutByKeyboard()

	// The school's reviewer: all three approved in bulk with a level.
	b.signInByKeyboard("reviewer1")
	b.run("inbox", chromedp.WaitVisible(chromedp.CSS("#reviews")))
	b.page("school-inbox")
	b.tabTo("#select-all")
	b.activate(" ", false)
	var ticked int
	b.run("ticked", into(&ticked, chromedp.Evaluate[int](`document.querySelectorAll("#reviews tbody input[name=id]:checked").length`)))
	if ticked != 4 {
		t.Fatalf("Space on select-all ticked %d, want 4", ticked)
	}
	b.chooseOption("#level", "difficult")
	b.follow("#approve")
	b.run("decided", chromedp.WaitVisible(chromedp.CSS("#decide-summary")))
	if got := b.text("#decided"); got != "4" {
		t.Fatalf("decided %q, want 4 (failed %s)", got, b.text("#decide-failed"))
	}
	// The notice first, while the items are in it; the result page has
	// no control of its own (the bureau's is walked below).
	b.screenshot("school-bulk-result")
	b.follow(`nav a[href="/school/notice"]`)
	b.run("notice", chromedp.WaitVisible(chromedp.CSS("#notice-list")))
	if n := strings.Count(b.text("#notice-list tbody"), "BOARDING_SUBSIDY"); n != 4 {
		t.Fatalf("notice lists %d, want 4 (the notice period is 20 s)", n)
	}
	b.page("public-notice")
	// An objection raised during the notice, on the last line, sends that
	// item back to the school.
	var objected string
	b.run("the last line", into(&objected, chromedp.Evaluate[string](`document.querySelector("#notice-list tbody tr:last-child").dataset.id`)))
	b.typeInto("#obj-"+objected, "家庭情况与公示不符")
	b.follow(`#notice-list tr[data-id="` + objected + `"] button`)
	b.run("objection", chromedp.WaitVisible(chromedp.CSS("#flash")))
	if rows := b.text("#notice-list tbody"); strings.Count(rows, "BOARDING_SUBSIDY") != 3 {
		t.Errorf("notice after the objection lists %q, want the other three", rows)
	}
	b.page("public-notice-objection")
	b.follow(`nav a[href="/school/payees"]`)
	b.page("payees")
	b.follow(`nav a[href="/applications"]`)
	b.page("reviewer-applications")
	b.signOutByKeyboard()

	// The bureau: the three once the notice has passed, approved in bulk.
	b.signInByKeyboard("bureau1")
	b.until("three in the bureau's inbox", "/bureau/reviews?term=2017-autumn", "#reviews", func(text string) bool {
		return strings.Count(text, "BOARDING_SUBSIDY") == 3
	})
	b.page("bureau-inbox")
	b.tabTo("#select-all")
	b.activate(" ", false)
	b.follow("#approve")
	b.run("decided", chromedp.WaitVisible(chromedp.CSS("#decide-summary")))
	if got := b.text("#decided"); got != "3" {
		t.Fatalf("bureau decided %q, want 3", got)
	}
	b.page("bureau-bulk-result")
	b.follow(`nav a[href="/policy"]`)
	b.page("bureau-policy")
	b.follow(`nav a[href="/reports"]`)
	b.page("bureau-reports")
	b.signOutByKeyboard()

	// Finance: one item sent back, the batch closed; a second officer
	// confirms by typing the count and sum.
	b.signInByKeyboard("finance1")
	b.until("an open batch of three", "/finance/batches?state=OPEN", "#batches", func(text string) bool { return strings.Contains(text, "1,500.00") })
	b.page("batches")
	b.follow("#batches tbody tr:first-child a")
	b.run("batch", chromedp.WaitVisible(chromedp.CSS("#close")))
	b.page("batch-open")
	var returned string
	b.run("the item to send back", into(&returned, chromedp.Evaluate[string](`document.querySelector("#items tbody tr").dataset.id`)))
	b.typeInto("#ret-"+returned, "银行卡号待核实")
	b.follow(`#items tbody tr[data-id="` + returned + `"] button`)
	b.run("returned", chromedp.WaitVisible(chromedp.CSS("#flash")))
	b.follow("#close")
	b.run("closed", chromedp.WaitVisible(chromedp.CSS("#confirm-form")))
	control := b.text("#batch-control")
	b.signOutByKeyboard()
	m := regexp.MustCompile(`^(\d+) · ([\d,.]+)$`).FindStringSubmatch(control)
	if m == nil || m[1] != "2" || m[2] != "1,000.00" {
		t.Fatalf("control after one item sent back: %q, want 2 · 1,000.00", control)
	}
	b.signInByKeyboard("finance2")
	b.until("the closed batch", "/finance/batches?state=CLOSED", "#batches", func(text string) bool { return strings.Contains(text, "1,000.00") })
	b.follow("#batches tbody tr:first-child a")
	b.run("batch", chromedp.WaitVisible(chromedp.CSS("#confirm-form")))
	b.page("batch-closed")
	b.typeInto("#count", "2")
	b.typeInto("#sum", "1000.00")
	b.follow("#confirm")
	b.run("confirmed", chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := b.text("#batch-status"); !strings.Contains(got, "已确认") {
		t.Fatalf("batch %s after the keyboard confirmation", got)
	}
	b.page("batch-confirmed")
	b.signOutByKeyboard()

	// The data office: every page, a comparison run, the export.
	b.signInByKeyboard("data1")
	b.page("clues")
	b.typeInto("#from_term", "2017-autumn")
	b.typeInto("#to_term", "2017-autumn")
	b.follow("#compare")
	b.run("compared", chromedp.WaitVisible(chromedp.CSS("#compare-summary")))
	b.page("comparison-done")
	b.follow(`nav a[href="/data/imports"]`)
	b.page("imports")
	b.follow(`nav a[href="/data/refunds"]`)
	b.page("refunds")
	b.follow(`nav a[href="/data/exchange"]`)
	b.page("exchange")
	b.typeInto("#from_term", "2017-autumn")
	b.typeInto("#to_term", "2017-autumn")
	b.chooseOption("#format", "XLSX")
	b.follow("#export-folder")
	b.run("exported", chromedp.WaitVisible(chromedp.CSS("#export-done")))
	path := b.text("#export-path")
	if st, err := os.Stat(filepath.Join(exportDir, path)); err != nil || st.Size() == 0 {
		t.Errorf("exported file %s: %v", path, err)
	}
	b.page("exchange-exported")
	b.follow(`nav a[href="/reports"]`)
	b.page("data-reports")
	b.follow("#lang")
	if got := b.text("h1"); got != "Reports" {
		t.Errorf("English heading %q", got)
	}
	b.page("data-reports-en")
	b.follow("#lang")
	b.signOutByKeyboard()

	// The auditor: a trail, read for a purpose.
	b.signInByKeyboard("auditor1")
	b.page("audit")
	b.typeInto("#application_id", returned)
	b.typeInto("#purpose", "键盘审计抽查")
	b.follow("#show")
	b.run("trail", chromedp.WaitVisible(chromedp.CSS("#verify")))
	b.page("audit-trail")
	// The read of the student's personal data is recorded with its purpose.
	conn, err := pgx.Connect(ctxT(t), s.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var reads int
	if err := conn.QueryRow(ctxT(t), `SELECT count(*) FROM application.pii_reads WHERE user_id = 'auditor1' AND role = 'auditor'
		AND purpose = '键盘审计抽查' AND $1::uuid = ANY(application_ids)`, returned).Scan(&reads); err != nil || reads != 1 {
		t.Errorf("the auditor's read of %s recorded %d times (%v), want once with its purpose", returned, reads, err)
	}
	// The data office's work, read-only: no forms to work clues or record
	// receipts.
	for _, p := range []string{"/data/clues", "/data/imports", "/data/refunds"} {
		b.follow(`nav a[href="` + p + `"]`)
		var forms int
		b.run("forms", into(&forms, chromedp.Evaluate[int](`document.querySelectorAll("main form[method=post]").length`)))
		if forms != 0 {
			t.Errorf("auditor on %s: %d forms to post, want none", p, forms)
		}
		b.page("auditor" + strings.ReplaceAll(p, "/", "-"))
	}
	b.follow(`nav a[href="/policy"]`)
	b.page("auditor-policy")
	b.signOutByKeyboard()

	// Policy: a draft typed in, approved by the second administrator.
	b.signInByKeyboard("policy1")
	b.page("policy")
	b.follow("#draft-programs")
	b.run("draft page", chromedp.WaitVisible(chromedp.CSS("#document")))
	b.page("policy-draft")
	var doc map[string]any
	var published string
	b.run("the published document", into(&published, chromedp.Evaluate[string](`document.querySelector("#document").value`)))
	if err := json.Unmarshal([]byte(published), &doc); err != nil {
		t.Fatalf("the draft page's document: %v", err)
	}
	doc["effective_from"], doc["summary"] = "2018-spring", "键盘起草"
	for _, p := range doc["programs"].([]any) {
		if p := p.(map[string]any); p["code"] == "PRESCHOOL_AID" {
			p["standard_fen"].(map[string]any)["preschool"] = 70000
		}
	}
	b.typeInto("#document", mustJSON(doc))
	b.follow("#draft")
	b.run("drafted", chromedp.WaitVisible(chromedp.CSS("#version-sha")))
	sha := b.text("#version-sha")
	b.page("policy-version")
	b.signOutByKeyboard()
	b.signInByKeyboard("policy2")
	b.follow(`#versions-programs tr[data-status="DRAFT"] a`)
	b.run("the draft", chromedp.WaitVisible(chromedp.CSS("#approve-form")))
	b.typeInto("#sha256", sha)
	b.follow("#approve")
	b.run("approved", chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := b.text("#version-status"); got != "已发布" {
		t.Errorf("approved by keyboard: %q, want 已发布", got)
	}
	b.page("policy-published")
	// The policy in English, by the language link; the navigation offers
	// no reports (the reporting service does not serve the role).
	b.follow(`nav a[href="/policy"]`)
	b.follow("#lang")
	if got := b.text("#in-force"); !strings.Contains(got, "In force for the term") {
		t.Errorf("English heading %q", got)
	}
	var navs []string
	b.run("navigation", into(&navs, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("nav a")).map(a => a.getAttribute("href"))`)))
	if !slices.Equal(navs, []string{"/policy"}) {
		t.Errorf("policy administrator's navigation %v, want /policy only", navs)
	}
	b.page("policy-en")
	b.signOutByKeyboard()
}
