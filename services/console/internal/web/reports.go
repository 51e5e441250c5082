package web

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/edubureau/studentaid/pkg/auth"
	reportingv1 "github.com/edubureau/studentaid/proto/gen/aid/reporting/v1"
)

func (s *Server) reportRoutes(mux *http.ServeMux) {
	// The reporting service's readers (its ports.Readers): a policy
	// administrator or ops would only be shown its refusal.
	readers := []auth.Role{auth.RoleBureauReviewer, auth.RoleFinanceOfficer, auth.RoleDataOfficer, auth.RoleAuditor}
	mux.Handle("GET /reports", s.role(s.report, readers...))
	mux.Handle("GET /reports/{year}/export.xlsx", s.role(s.reportExport, readers...))
}

// bar is one bar of a chart, laid out in the SVG's coordinates.
type bar struct {
	Label, Value string
	X, Y, W, H   int
	TextX, TextY int
}

// chart is a server-rendered SVG bar chart.
type chart struct {
	Title  string
	Width  int
	Height int
	Bars   []bar
}

const (
	chartWidth = 720
	labelWidth = 260
	barHeight  = 22
	barGap     = 8
)

// hbars lays out horizontal bars, the longest filling the chart.
func hbars(title string, labels []string, values []int64, format func(int64) string) chart {
	c := chart{Title: title, Width: chartWidth, Height: len(values)*(barHeight+barGap) + barGap}
	var top int64
	for _, v := range values {
		top = max(top, v)
	}
	span := chartWidth - labelWidth - 140
	for i, v := range values {
		w := 0
		if top > 0 {
			w = int(v * int64(span) / top)
		}
		y := barGap + i*(barHeight+barGap)
		c.Bars = append(c.Bars, bar{Label: labels[i], Value: format(v), X: labelWidth, Y: y, W: max(w, 1), H: barHeight,
			TextX: labelWidth + max(w, 1) + 6, TextY: y + barHeight - 6})
	}
	return c
}

type reportView struct {
	Year   int
	Report *reportingv1.AnnualReport
	Charts []chart
	// Year are the year's statistics: the applications by step with the
	// median time spent in each, and the rejections by reason.
	Stats *reportingv1.Statistics
}

// hours renders a duration in seconds as hours with one decimal.
func hours(sec float64) string { return strconv.FormatFloat(sec/3600, 'f', 1, 64) }

func (s *Server) report(q *request) {
	year := s.now().UTC().Year() - 1
	if y := q.r.URL.Query().Get("year"); y != "" {
		v, err := strconv.Atoi(y)
		if err != nil || v < 2000 || v > 2100 {
			q.fail(http.StatusBadRequest, q.t("err.filter"))
			return
		}
		year = v
	}
	ctx, err := q.ctx()
	if err != nil {
		q.upstreamError(err)
		return
	}
	rep, err := s.up.Reporting.GetAnnualReport(ctx, &reportingv1.GetAnnualReportRequest{Year: int32(year), Language: q.lang, Live: true}) //nolint:gosec // G115: checked above
	if err != nil {
		q.upstreamError(err)
		return
	}
	v := reportView{Year: year, Report: rep}
	for _, sec := range rep.GetSections() {
		if sec.GetKey() != "programs" {
			continue
		}
		var labels []string
		var values []int64
		for _, l := range sec.GetLines() {
			if !l.GetTotal() && l.GetAmountFen() > 0 {
				labels, values = append(labels, l.GetLabel()), append(values, l.GetAmountFen())
			}
		}
		v.Charts = append(v.Charts, hbars(q.t("chart.programs"), labels, values, func(f int64) string { return wanYuan(f) + " " + q.t("unit.wan") }))
	}
	v.Charts = append(v.Charts, hbars(q.t("chart.funding"),
		[]string{q.t("fund.central_provincial"), q.t("fund.municipal")},
		[]int64{rep.GetCentralProvincialFen(), rep.GetMunicipalFen()}, func(f int64) string { return wanYuan(f) + " " + q.t("unit.wan") }))
	var labels []string
	var values []int64
	for y := year - 2; y <= year; y++ {
		for _, season := range []string{"spring", "autumn"} {
			term := fmt.Sprintf("%d-%s", y, season)
			st, err := s.up.Reporting.GetStatistics(ctx, &reportingv1.GetStatisticsRequest{FromTerm: term, ToTerm: term})
			if err != nil {
				q.upstreamError(err)
				return
			}
			labels, values = append(labels, term), append(values, st.GetPaidFen())
		}
	}
	v.Charts = append(v.Charts, hbars(q.t("chart.trend"), labels, values, func(f int64) string { return wanYuan(f) + " " + q.t("unit.wan") }))
	st, err := s.up.Reporting.GetStatistics(ctx, &reportingv1.GetStatisticsRequest{FromTerm: fmt.Sprintf("%d-spring", year), ToTerm: fmt.Sprintf("%d-autumn", year)})
	if err != nil {
		q.upstreamError(err)
		return
	}
	v.Stats = st
	q.render("report.html", "report.title", v)
}

// reportExport streams the annual report's XLSX from the reporting
// service through the entry point, with the user's token.
func (s *Server) reportExport(q *request) {
	year, err := strconv.Atoi(q.r.PathValue("year"))
	if err != nil {
		q.fail(http.StatusBadRequest, q.t("err.filter"))
		return
	}
	tok, err := s.up.Token(q.sess.ID)
	if err != nil {
		q.upstreamError(err)
		return
	}
	lang := "zh"
	if q.lang == "en" {
		lang = "en"
	}
	req, err := http.NewRequestWithContext(q.r.Context(), http.MethodGet,
		fmt.Sprintf("%s/v1/reporting/annual/%d/export?format=xlsx&live=true&language=%s", s.cfg.APIBase, year, lang), nil)
	if err != nil {
		q.fail(http.StatusInternalServerError, q.t("err.unavailable"))
		return
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.http.Do(req)
	if err != nil {
		s.log.ErrorContext(q.r.Context(), "export", "err", err)
		q.fail(http.StatusBadGateway, q.t("err.unavailable"))
		return
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		q.fail(resp.StatusCode, string(msg))
		return
	}
	for _, h := range []string{"Content-Type", "Content-Disposition"} {
		q.w.Header().Set(h, resp.Header.Get(h))
	}
	if _, err := io.Copy(q.w, resp.Body); err != nil {
		s.log.WarnContext(q.r.Context(), "export copy", "err", err)
	}
}
