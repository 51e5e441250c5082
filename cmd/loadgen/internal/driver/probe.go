package driver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edubureau/studentaid/pkg/wait"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every
// Linux architecture Go runs on.
const clockTick = 10 * time.Millisecond

// ProcSample is what /proc says about one process.
type ProcSample struct {
	Pid  int
	PPid int
	Comm string
	// CPU is user plus system time.
	CPU time.Duration
	// ChildCPU is the user plus system time of children it has waited for.
	ChildCPU time.Duration
	// PeakRSS (VmHWM) and RSS (VmRSS) in bytes.
	PeakRSS int64
	RSS     int64
	// PSS is the proportional set size (smaps_rollup), in bytes: pages
	// shared with other processes count by their share, so a group's sum
	// counts PostgreSQL's shared buffers once. 0 when unreadable.
	PSS int64
}

// ReadProc reads /proc/<pid>/stat, /proc/<pid>/status and
// /proc/<pid>/smaps_rollup.
func ReadProc(pid int) (ProcSample, error) {
	return readProc("/proc", pid)
}

func readProc(root string, pid int) (ProcSample, error) {
	s := ProcSample{Pid: pid}
	stat, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return s, err
	}
	// comm is in parentheses and may contain spaces and parentheses.
	open, closeAt := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || closeAt < open {
		return s, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	s.Comm = string(stat[open+1 : closeAt])
	f := strings.Fields(string(stat[closeAt+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
	if len(f) < 15 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	num := func(i int) int64 { n, _ := strconv.ParseInt(f[i], 10, 64); return n }
	s.PPid = int(num(1))
	s.CPU = time.Duration(num(11)+num(12)) * clockTick
	s.ChildCPU = time.Duration(num(13)+num(14)) * clockTick
	st, err := os.Open(filepath.Join(root, strconv.Itoa(pid), "status"))
	if err != nil {
		return s, err
	}
	defer st.Close()
	sc := bufio.NewScanner(st)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "VmHWM:"):
			s.PeakRSS = kB(line)
		case strings.HasPrefix(line, "VmRSS:"):
			s.RSS = kB(line)
		}
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	if b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "smaps_rollup")); err == nil {
		for line := range strings.Lines(string(b)) {
			if strings.HasPrefix(line, "Pss:") {
				s.PSS = kB(line)
			}
		}
	}
	return s, nil
}

func kB(line string) int64 {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n * 1024
}

// Children returns the PIDs whose parent is ppid.
func Children(ppid int) []int {
	return children("/proc", ppid)
}

func children(root string, ppid int) []int {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := readProc(root, pid); err == nil && s.PPid == ppid {
			out = append(out, pid)
		}
	}
	return out
}

// ProcessGroup is a named process measured on its own, or with its children
// (PostgreSQL: the postmaster and its backends).
type ProcessGroup struct {
	Name         string
	Pid          int
	WithChildren bool
	// Tool marks a test tool, not deployed with the platform (the load
	// generator, the bank simulator, Jaeger's in-memory store): its figures
	// are reported, and a soak does not judge its memory.
	Tool bool
}

// GroupSample is a group's CPU time and memory at one moment.
type GroupSample struct {
	// CPU counts the process, its live children and the children it reaped.
	CPU time.Duration
	// PeakRSS is the largest VmHWM among the group's processes.
	PeakRSS int64
	// RSS sums VmRSS over the group (shared pages count once per process).
	RSS int64
	// PSS sums the proportional set sizes (shared pages once in all).
	PSS   int64
	Procs int
}

// Memory is the group's memory as a soak judges it: the RSS of a lone
// process; for a group with children (PostgreSQL) the PSS sum, since
// summing RSS would count the shared buffers once per backend.
func (s GroupSample) Memory(withChildren bool) int64 {
	if withChildren && s.PSS > 0 {
		return s.PSS
	}
	return s.RSS
}

// Sample reads the group's processes now.
func (g ProcessGroup) Sample() (GroupSample, error) {
	root, err := ReadProc(g.Pid)
	if err != nil {
		return GroupSample{}, err
	}
	out := GroupSample{CPU: root.CPU, PeakRSS: root.PeakRSS, RSS: root.RSS, PSS: root.PSS, Procs: 1}
	if !g.WithChildren {
		return out, nil
	}
	out.CPU += root.ChildCPU
	for _, pid := range Children(g.Pid) {
		c, err := ReadProc(pid)
		if err != nil {
			continue // exited meanwhile; its time is in the parent's ChildCPU
		}
		out.CPU += c.CPU
		out.PeakRSS = max(out.PeakRSS, c.PeakRSS)
		out.RSS += c.RSS
		out.PSS += c.PSS
		out.Procs++
	}
	return out, nil
}

// PostmasterPID reads the postmaster's PID from a cluster's data directory.
func PostmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// ParseMetric sums the samples of a Prometheus metric (every label set) in
// the text exposition format.
func ParseMetric(text, name string) (float64, bool) {
	sum, found := 0.0, false
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, name) || len(line) == len(name) {
			continue
		}
		if c := line[len(name)]; c != '{' && c != ' ' {
			continue // a longer metric name with this prefix
		}
		rest := line[len(name):]
		if i := strings.LastIndexByte(rest, '}'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// BacklogMetric is the gauge every service's outbox relay exports.
const BacklogMetric = "aid_outbox_backlog"

// LagMetric is the gauge of a service's consumer: messages not yet
// received plus those awaiting acknowledgement.
const LagMetric = "aid_consumer_lag"

// ScrapeMetrics fetches http://addr/metrics as text.
func ScrapeMetrics(ctx context.Context, hc *http.Client, addr string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s/metrics: %s", addr, resp.Status)
	}
	var b strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&b); err != nil {
		return "", err
	}
	return b.String(), nil
}

// ScrapeMetric fetches http://addr/metrics and returns the metric's sum.
func ScrapeMetric(ctx context.Context, hc *http.Client, addr, name string) (float64, error) {
	text, err := ScrapeMetrics(ctx, hc, addr)
	if err != nil {
		return 0, err
	}
	v, ok := ParseMetric(text, name)
	if !ok {
		return 0, fmt.Errorf("%s/metrics has no %s", addr, name)
	}
	return v, nil
}

// BacklogProbe polls every service's outbox backlog gauge, remembers the
// largest value seen per service and times how long the backlog takes to
// drain after a mark.
type BacklogProbe struct {
	// Services maps service name to its HTTP address.
	Services map[string]string
	HTTP     *http.Client
	Poll     time.Duration
	// Exact, when set, counts unpublished outbox rows per service straight
	// from the database. The gauge is refreshed only while a relay idles, so
	// it can read 0 while a busy relay still has rows; drains are then timed
	// by the exact count (and the gauge is still scraped for its maximum).
	Exact func(ctx context.Context) (map[string]float64, error)

	mu      sync.Mutex
	max     map[string]float64
	maxLag  map[string]float64
	last    map[string]float64
	marks   map[string]time.Time
	drained map[string]time.Duration
}

// Mark starts timing a drain named name from at: the first poll after at
// where every service reports 0 ends it.
func (p *BacklogProbe) Mark(name string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.marks == nil {
		p.marks = map[string]time.Time{}
	}
	p.marks[name] = at
}

// Drained returns how long the named drain took, if it finished.
func (p *BacklogProbe) Drained(name string) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.drained[name]
	return d, ok
}

// Max returns the largest backlog seen per service.
func (p *BacklogProbe) Max() map[string]float64 {
	return p.snapshot(func() map[string]float64 { return p.max })
}

// MaxLag returns the largest consumer lag (aid_consumer_lag) seen per service.
func (p *BacklogProbe) MaxLag() map[string]float64 {
	return p.snapshot(func() map[string]float64 { return p.maxLag })
}

// Last returns the latest backlog per service.
func (p *BacklogProbe) Last() map[string]float64 {
	return p.snapshot(func() map[string]float64 { return p.last })
}

// Run polls until ctx is done.
func (p *BacklogProbe) Run(ctx context.Context) {
	for wait.For(ctx, p.Poll) {
		_, _ = p.Once(ctx) // a failed poll times no drain; the next one tries again
	}
}

// Once polls every service once. It reports whether every backlog is 0.
func (p *BacklogProbe) Once(ctx context.Context) (bool, error) {
	now := time.Now()
	vals, lags := map[string]float64{}, map[string]float64{}
	var errs []error
	for name, addr := range p.Services {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		text, err := ScrapeMetrics(cctx, p.HTTP, addr)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		if lag, ok := ParseMetric(text, LagMetric); ok {
			lags[name] = lag
		}
		v, ok := ParseMetric(text, BacklogMetric)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no %s", name, BacklogMetric))
			continue
		}
		vals[name] = v
	}
	var exact map[string]float64
	if p.Exact != nil {
		var err error
		if exact, err = p.Exact(ctx); err != nil {
			errs = append(errs, fmt.Errorf("exact backlog: %w", err))
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.max == nil {
		p.max, p.last, p.drained = map[string]float64{}, map[string]float64{}, map[string]time.Duration{}
		p.maxLag = map[string]float64{}
	}
	for name, v := range lags {
		p.maxLag[name] = max(p.maxLag[name], v)
	}
	allZero := len(errs) == 0
	for name, v := range vals {
		p.last[name] = v
		p.max[name] = max(p.max[name], v)
		if v != 0 && exact == nil {
			allZero = false
		}
	}
	for name, v := range exact {
		p.max[name+" (rows)"] = max(p.max[name+" (rows)"], v)
		if v != 0 {
			allZero = false
		}
	}
	if allZero {
		for name, at := range p.marks {
			if _, done := p.drained[name]; !done && !now.Before(at) {
				p.drained[name] = now.Sub(at)
			}
		}
	}
	return allZero, errors.Join(errs...)
}

// snapshot copies the probe's map that field returns, under the probe's lock
// (the maps are made on the first sample).
func (p *BacklogProbe) snapshot(field func() map[string]float64) map[string]float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := field()
	out := make(map[string]float64, len(m))
	maps.Copy(out, m)
	return out
}
