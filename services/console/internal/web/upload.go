package web

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	"github.com/edubureau/studentaid/pkg/sheet"
	applicationv1 "github.com/edubureau/studentaid/proto/gen/aid/application/v1"
)

const (
	// maxUploadBytes caps an uploaded list (about 100,000 rows of CSV).
	maxUploadBytes = 16 << 20
	// submitChunk is how many applications one call checks or submits: the
	// service's maximum, so that a list of up to this many is all or
	// nothing in one transaction.
	submitChunk = 1000
	// uploadTTL is how long an uploaded list waits for its submission.
	uploadTTL       = time.Hour
	uploadKeyCookie = "aid_upload"
)

// Job kinds.
const (
	jobCheck   = "check"
	jobSubmit  = "submit"
	jobDecide  = "decide"
	jobCompare = "compare"
)

// The columns of a school's list, by the headings accepted for each
// (Chinese as school offices keep them, or the API's field names).
var columns = []struct {
	field    string
	headings []string
	required bool
}{
	{"student_id_number", []string{"身份证号", "身份证号码", "student_id_number"}, true},
	{"student_name", []string{"姓名", "学生姓名", "student_name"}, true},
	{"stage", []string{"学段", "stage"}, true},
	{"program_code", []string{"资助项目", "项目", "program_code", "program"}, true},
	{"boarding", []string{"寄宿", "是否寄宿", "boarding"}, false},
	{"rural", []string{"农村", "是否农村", "rural"}, false},
	{"registered_poor", []string{"建档立卡", "是否建档立卡", "registered_poor"}, false},
	{"bank_card_number", []string{"银行卡号", "bank_card_number"}, true},
	{"account_name", []string{"户名", "开户名", "account_name"}, true},
	{"requested_amount_yuan", []string{"申请金额(元)", "申请金额（元）", "申请金额", "requested_amount_yuan"}, false},
	// A back-pay (补发) row names the school's back-pay order.
	{"back_pay_clue_id", []string{"补发单号", "back_pay_clue_id"}, false},
}

// stageNames are the Chinese names of the stages.
var stageNames = map[string]string{
	"学前": "preschool", "学前教育": "preschool", "小学": "primary", "初中": "junior",
	"高中": "high_school", "普通高中": "high_school", "中职": "vocational", "中等职业教育": "vocational",
	"大学": "university", "高等教育": "university",
}

// badRow is one problem of an uploaded list, where the officer finds it.
type badRow struct {
	Line   int64  `json:"line"`
	Column string `json:"column"`
	Reason string `json:"reason"`
}

// uploadResult is what a check or submission of an upload found.
type uploadResult struct {
	UploadID  string   `json:"upload_id"`
	FileName  string   `json:"file_name"`
	Term      string   `json:"term"`
	Rows      int      `json:"rows"`
	Bad       []badRow `json:"bad,omitempty"`
	Problem   string   `json:"problem,omitempty"`
	AmountFen int64    `json:"amount_fen"`
	Submitted int      `json:"submitted"`
}

// parsedList is an uploaded list read into applications, with the
// spreadsheet line of each.
type parsedList struct {
	apps  []*applicationv1.NewApplication
	lines []int64
	bad   []badRow
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "否", "no", "n", "false", "0":
		return false, true
	case "是", "yes", "y", "true", "1":
		return true, true
	}
	return false, false
}

var yuanPattern = regexp.MustCompile(`^\d{1,9}(\.\d{1,2})?$`)

// parseYuan reads "1250" or "1250.5" yuan as fen, exactly.
func parseYuan(s string) (int64, bool) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	if !yuanPattern.MatchString(s) {
		return 0, false
	}
	whole, frac, _ := strings.Cut(s, ".")
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, false
	}
	frac = (frac + "00")[:2]
	f, _ := strconv.ParseInt(frac, 10, 64)
	return w*100 + f, true
}

// parseList reads an uploaded list. programs maps a program's code and its
// Chinese and English names to its code.
func parseList(in io.Reader, programs map[string]string) (parsedList, error) {
	rows, closeRows, err := sheet.Open(in, "")
	if err != nil {
		return parsedList{}, err
	}
	defer closeRows()
	var out parsedList
	var pos map[string]int
	for {
		rec, line, err := rows.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if le, ok := errors.AsType[*sheet.LineError](err); ok {
				out.bad = append(out.bad, badRow{Line: le.Line, Reason: le.Reason})
				continue
			}
			return parsedList{}, err
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if pos == nil {
			var bad []badRow
			pos, bad = headerOf(line, rec)
			if len(bad) > 0 {
				out.bad = append(out.bad, bad...)
				return out, nil
			}
			continue
		}
		a, bad := rowOf(line, rec, pos, programs)
		out.bad = append(out.bad, bad...)
		out.apps = append(out.apps, a)
		out.lines = append(out.lines, line)
	}
	if pos == nil {
		out.bad = append(out.bad, badRow{Line: 1, Reason: "the file is empty: the first row must hold the column headings"})
	}
	return out, nil
}

// headerOf finds each column's position from the headings row.
func headerOf(line int64, rec []string) (map[string]int, []badRow) {
	pos := map[string]int{}
	for i, h := range rec {
		h = strings.TrimSpace(h)
		for _, c := range columns {
			if slices.ContainsFunc(c.headings, func(name string) bool { return strings.EqualFold(h, name) }) {
				pos[c.field] = i
			}
		}
	}
	var bad []badRow
	for _, c := range columns {
		if _, ok := pos[c.field]; !ok && c.required {
			bad = append(bad, badRow{Line: line, Column: c.headings[0], Reason: "missing column (heading " + c.headings[0] + " or " + c.field + ")"})
		}
	}
	return pos, bad
}

// rowOf reads one row into an application, with what is wrong in it that
// the service would not say better itself.
func rowOf(line int64, rec []string, pos map[string]int, programs map[string]string) (*applicationv1.NewApplication, []badRow) {
	var out []badRow
	{
		cell := func(field string) string {
			if i, ok := pos[field]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		bad := func(field, reason string) {
			out = append(out, badRow{Line: line, Column: headingOf(field), Reason: reason})
		}
		a := &applicationv1.NewApplication{
			StudentIdNumber: strings.ToUpper(cell("student_id_number")), StudentName: cell("student_name"),
			BankCardNumber: strings.ReplaceAll(cell("bank_card_number"), " ", ""), AccountName: cell("account_name"),
			BackPayClueId: strings.ToLower(cell("back_pay_clue_id")),
		}
		a.Stage = cell("stage")
		if code, ok := stageNames[a.GetStage()]; ok {
			a.Stage = code
		}
		a.ProgramCode = cell("program_code")
		if code, ok := programs[a.GetProgramCode()]; ok {
			a.ProgramCode = code
		}
		for _, f := range []struct {
			field string
			to    *bool
		}{{"boarding", &a.Boarding}, {"rural", &a.Rural}, {"registered_poor", &a.RegisteredPoor}} {
			v, ok := parseBool(cell(f.field))
			if !ok {
				bad(f.field, "write 是 or 否 (yes or no)")
			}
			*f.to = v
		}
		if s := cell("requested_amount_yuan"); s != "" {
			fen, ok := parseYuan(s)
			if !ok {
				bad("requested_amount_yuan", "write the amount in yuan, e.g. 1250 or 1250.50")
			}
			a.RequestedAmountFen = fen
		}
		return a, out
	}
}

func headingOf(field string) string {
	for _, c := range columns {
		if c.field == field {
			return c.headings[0]
		}
	}
	return field
}

var violationField = regexp.MustCompile(`^applications\[(\d+)\]\.([a-z_]+)$`)

// badRowsOf maps a service's refusal of one chunk (starting at list index
// from) to the rows and columns of the spreadsheet. A refusal without
// field violations is a problem of the whole list.
func badRowsOf(err error, from int, lines []int64) ([]badRow, string) {
	st, _ := status.FromError(err)
	var out []badRow
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, v := range br.GetFieldViolations() {
			m := violationField.FindStringSubmatch(v.GetField())
			if m == nil {
				out = append(out, badRow{Column: v.GetField(), Reason: v.GetDescription()})
				continue
			}
			i, _ := strconv.Atoi(m[1])
			line := int64(0)
			if from+i < len(lines) {
				line = lines[from+i]
			}
			field := m[2]
			if field == "requested_amount_fen" {
				field = "requested_amount_yuan"
			}
			out = append(out, badRow{Line: line, Column: headingOf(field), Reason: v.GetDescription()})
		}
	}
	if len(out) == 0 {
		return nil, st.Message()
	}
	return out, ""
}

// seal encrypts b with a new key and returns the key and the sealed bytes.
func seal(b []byte) (key, sealed []byte, err error) {
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, nil, err
	}
	g, err := gcm(key)
	if err != nil {
		return nil, nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	return key, g.Seal(nonce, nonce, b, nil), nil
}

func unseal(key, sealed []byte) ([]byte, error) {
	g, err := gcm(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize() {
		return nil, errors.New("sealed upload too short")
	}
	return g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], nil)
}

func gcm(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// programNames maps the term's programs' codes and names to their codes.
func (s *Server) programNames(ctx context.Context, term string) (map[string]string, error) {
	resp, err := s.up.Applications.ListPrograms(ctx, &applicationv1.ListProgramsRequest{Term: term})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range resp.GetPrograms() {
		out[p.GetCode()], out[p.GetName()], out[p.GetNameEn()] = p.GetCode(), p.GetCode(), p.GetCode()
	}
	return out, nil
}

type uploadForm struct {
	Term string
}

func (s *Server) uploadPage(q *request) {
	q.render("upload.html", "upload.title", uploadForm{Term: currentTerm(s.now())})
}

// currentTerm is the term a date falls in: spring until August.
func currentTerm(t time.Time) string {
	if t.UTC().Month() >= time.September {
		return fmt.Sprintf("%d-autumn", t.UTC().Year())
	}
	return fmt.Sprintf("%d-spring", t.UTC().Year())
}

// upload takes a school's list, keeps it sealed and starts its check.
func (s *Server) upload(q *request) {
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	term := strings.TrimSpace(q.r.PostFormValue("term"))
	f, hdr, err := q.r.FormFile("file")
	if err != nil {
		q.fail(http.StatusBadRequest, q.t("upload.nofile"))
		return
	}
	defer func() { _ = f.Close() }()
	body, err := io.ReadAll(io.LimitReader(f, maxUploadBytes+1))
	if err != nil || len(body) > maxUploadBytes {
		q.fail(http.StatusRequestEntityTooLarge, q.t("upload.toolarge"))
		return
	}
	programs, err := s.programNames(ctx, term)
	if err != nil {
		q.upstreamError(err)
		return
	}
	list, err := parseList(bytes.NewReader(body), programs)
	if err != nil {
		q.fail(http.StatusBadRequest, q.explain(err))
		return
	}
	key, sealed, err := seal(body)
	if err != nil {
		q.fail(http.StatusInternalServerError, q.t("err.unavailable"))
		return
	}
	id, err := uuid.NewV7()
	if err != nil {
		q.fail(http.StatusInternalServerError, q.t("err.unavailable"))
		return
	}
	now := s.now().UTC()
	name := hdr.Filename
	if len([]rune(name)) > 120 {
		name = string([]rune(name)[:120])
	}
	if _, err := s.pool.Exec(q.r.Context(), `DELETE FROM uploads WHERE expires_at < $1`, now); err != nil {
		s.log.WarnContext(q.r.Context(), "expire uploads", "err", err)
	}
	if _, err := s.pool.Exec(q.r.Context(), `INSERT INTO uploads (id, user_id, org, term, file_name, sealed, rows, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		id, q.sess.ID.UserID, q.sess.ID.Org, term, name, sealed, len(list.apps), now, now.Add(uploadTTL)); err != nil {
		s.log.ErrorContext(q.r.Context(), "store upload", "err", err)
		q.fail(http.StatusInternalServerError, q.t("err.unavailable"))
		return
	}
	http.SetCookie(q.w, s.cookie(uploadKeyCookie, base64.RawURLEncoding.EncodeToString(key), "/uploads/"+id.String(), int(uploadTTL.Seconds())))
	res := uploadResult{UploadID: id.String(), FileName: name, Term: term, Rows: len(list.apps), Bad: list.bad}
	school := q.sess.ID.Org
	jid, err := s.jobs.Start(q.r.Context(), q.sess.ID, jobCheck, name, len(list.apps), func(bg context.Context, p Progress) (any, error) {
		if len(res.Bad) > 0 {
			return res, nil
		}
		return s.sendList(bg, q, p, school, term, list, res, "")
	})
	if err != nil {
		q.fail(http.StatusInternalServerError, q.t("err.unavailable"))
		return
	}
	http.Redirect(q.w, q.r, "/jobs/"+jid.String(), http.StatusSeeOther)
}

// sendList checks (keyPrefix "") or submits the list in chunks, reporting
// progress. A submission checks the whole list first, so that a list with
// a bad row is refused whole; each chunk then goes with an idempotency key
// of the upload, so a submission started again after an interruption
// completes it without doubling anything.
func (s *Server) sendList(bg context.Context, q *request, p Progress, school, term string, list parsedList, res uploadResult, keyPrefix string) (uploadResult, error) {
	passes := []bool{true}
	if keyPrefix != "" {
		passes = []bool{true, false}
	}
	steps := 0
	for _, validate := range passes {
		res.AmountFen, res.Bad, res.Problem = 0, nil, ""
		for from := 0; from < len(list.apps); from += submitChunk {
			to := min(from+submitChunk, len(list.apps))
			ctx, err := s.up.As(bg, q.sess.ID)
			if err != nil {
				return res, err
			}
			req := &applicationv1.SubmitApplicationsRequest{SchoolCode: school, Term: term, Applications: list.apps[from:to], ValidateOnly: validate}
			if !validate {
				req.IdempotencyKey = fmt.Sprintf("%s-%d", keyPrefix, from/submitChunk)
			}
			resp, err := s.up.Applications.SubmitApplications(ctx, req)
			if err != nil {
				bad, problem := badRowsOf(err, from, list.lines)
				if problem != "" {
					s.log.WarnContext(bg, "list refused", "err", err)
				}
				res.Bad, res.Problem = append(res.Bad, bad...), problem
				if validate && problem == "" {
					continue // every chunk is checked, to list every bad row
				}
				return res, nil
			}
			for _, a := range resp.GetApplications() {
				res.AmountFen += a.GetAmountFen()
			}
			if !validate {
				res.Submitted += len(resp.GetApplications())
			}
			steps += to - from
			p.Step(bg, steps/len(passes))
		}
		if len(res.Bad) > 0 || res.Problem != "" {
			return res, nil
		}
	}
	return res, nil
}

// submitUpload submits a checked list: its key comes from the uploader's
// cookie, so nobody else (and no copy of the database) can.
func (s *Server) submitUpload(q *request) {
	id, err := uuid.Parse(q.r.PathValue("id"))
	if err != nil {
		q.fail(http.StatusNotFound, q.t("err.notfound"))
		return
	}
	c, err := q.r.Cookie(uploadKeyCookie)
	var key []byte
	if err == nil {
		key, err = base64.RawURLEncoding.DecodeString(c.Value)
	}
	var sealed []byte
	var term, name string
	var submitted *time.Time
	qerr := s.pool.QueryRow(q.r.Context(), `SELECT sealed, term, file_name, submitted_at FROM uploads WHERE id = $1 AND user_id = $2 AND org = $3 AND expires_at > $4`,
		id, q.sess.ID.UserID, q.sess.ID.Org, s.now().UTC()).Scan(&sealed, &term, &name, &submitted)
	if errors.Is(qerr, pgx.ErrNoRows) || err != nil {
		q.fail(http.StatusNotFound, q.t("upload.gone"))
		return
	}
	if qerr != nil {
		s.log.ErrorContext(q.r.Context(), "read upload", "err", qerr)
		q.fail(http.StatusInternalServerError, q.t("err.unavailable"))
		return
	}
	body, err := unseal(key, sealed)
	if err != nil {
		q.fail(http.StatusNotFound, q.t("upload.gone"))
		return
	}
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	programs, err := s.programNames(ctx, term)
	if err != nil {
		q.upstreamError(err)
		return
	}
	list, err := parseList(bytes.NewReader(body), programs)
	if err != nil || len(list.bad) > 0 {
		q.fail(http.StatusBadRequest, q.t("upload.hasbad"))
		return
	}
	res := uploadResult{UploadID: id.String(), FileName: name, Term: term, Rows: len(list.apps)}
	school := q.sess.ID.Org
	keyPrefix := "up-" + strings.ReplaceAll(id.String(), "-", "")
	jid, err := s.jobs.Start(q.r.Context(), q.sess.ID, jobSubmit, name, len(list.apps), func(bg context.Context, p Progress) (any, error) {
		out, err := s.sendList(bg, q, p, school, term, list, res, keyPrefix)
		if err == nil && out.Submitted == len(list.apps) {
			if _, err := s.pool.Exec(bg, `UPDATE uploads SET submitted_at = $2, sealed = '' WHERE id = $1`, id, s.now().UTC()); err != nil {
				s.log.ErrorContext(bg, "mark upload submitted", "err", err)
			}
		}
		return out, err
	})
	if err != nil {
		q.fail(http.StatusInternalServerError, q.t("err.unavailable"))
		return
	}
	http.Redirect(q.w, q.r, "/jobs/"+jid.String(), http.StatusSeeOther)
}
