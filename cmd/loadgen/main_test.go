package main

import (
	"testing"
	"time"

	"github.com/edubureau/studentaid/cmd/loadgen/internal/driver"
)

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		check   func(t *testing.T, c config)
	}{
		{name: "defaults", args: nil, check: func(t *testing.T, c config) {
			t.Helper()
			if c.N != 2000 || c.Batch != 100 || !c.Start || c.Seed == 0 || c.Notice != "1ms" || c.SampleRatio != 0.01 {
				t.Errorf("defaults %+v", c)
			}
		}},
		{name: "single batch approves everything of one program", args: []string{"-single-batch", "-reject-school", "0.3"}, check: func(t *testing.T, c config) {
			t.Helper()
			if c.RejectSchool != 0 || c.RejectBureau != 0 || c.Program != "POVERTY_EXTENSION" {
				t.Errorf("single batch %+v", c)
			}
		}},
		{name: "batch too large", args: []string{"-batch", "1001"}, wantErr: true},
		{name: "no applications", args: []string{"-n", "0"}, wantErr: true},
		{name: "reject rate above one", args: []string{"-reject-bureau", "1.5"}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
		{name: "single batch and submit only", args: []string{"-single-batch", "-submit-only"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseFlags(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestParseEndpointsAndPIDs(t *testing.T) {
	t.Parallel()
	eps, err := parseEndpoints(defaultEndpoints)
	if err != nil {
		t.Fatal(err)
	}
	if got := eps["finance-confirmation"]; got.GRPC != "127.0.0.1:9104" || got.HTTP != "127.0.0.1:8104" {
		t.Fatalf("finance endpoint %+v", got)
	}
	for _, bad := range []string{"application=127.0.0.1:9101", "application=127.0.0.1:9101/127.0.0.1:8101"} {
		if _, err := parseEndpoints(bad); err == nil {
			t.Errorf("%q: want an error (malformed or incomplete)", bad)
		}
	}
	groups, err := parsePIDs("postgres=10,payout=11")
	if err != nil || len(groups) != 2 || !groups[0].WithChildren || groups[1].WithChildren || groups[1].Pid != 11 {
		t.Fatalf("groups %+v, %v", groups, err)
	}
	if _, err := parsePIDs("payout=x"); err == nil {
		t.Fatal("want an error for a bad pid")
	}
}

// TestSoakResults: over the baseline's and the end's windows, a process
// whose mean grew by 5 % is within the soak's 10 %, one that grew by 15 % is
// not, and the run fails with it; one that swings by 40 % from sample to
// sample around a steady mean is within; a test tool's growth is reported
// and does not decide the verdict; PostgreSQL is judged by its PSS.
func TestSoakResults(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	groups := []driver.ProcessGroup{{Name: "payout", Pid: 1}, {Name: "application", Pid: 2}, {Name: "loadgen", Pid: 3, Tool: true},
		{Name: "postgres", Pid: 4, WithChildren: true}, {Name: "nats", Pid: 5}}
	start := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	end := start.Add(60 * time.Minute)
	// A sample every 10 s; the first window is [10 m, 15 m), the last
	// (55 m, 60 m], 30 samples each. Odd and even samples differ.
	at := func(odd bool, a, b int64) int64 {
		if odd {
			return b * mib
		}
		return a * mib
	}
	var samples []timedSample
	for k := 0; start.Add(time.Duration(k) * 10 * time.Second).Before(end.Add(time.Second)); k++ {
		ts := start.Add(time.Duration(k) * 10 * time.Second)
		odd := k%2 == 1
		first := ts.Before(start.Add(30 * time.Minute))
		s := map[string]driver.GroupSample{"nats": {RSS: at(odd, 90, 130)}}
		if first {
			s["payout"] = driver.GroupSample{RSS: at(odd, 95, 105)}
			s["application"] = driver.GroupSample{RSS: 200 * mib}
			s["loadgen"] = driver.GroupSample{RSS: 100 * mib}
			s["postgres"] = driver.GroupSample{RSS: 3000 * mib, PSS: 200 * mib}
		} else {
			s["payout"] = driver.GroupSample{RSS: at(odd, 100, 110)}
			s["application"] = driver.GroupSample{RSS: 230 * mib}
			s["loadgen"] = driver.GroupSample{RSS: 300 * mib}
			s["postgres"] = driver.GroupSample{RSS: 3600 * mib, PSS: 210 * mib}
		}
		samples = append(samples, timedSample{at: ts, s: s})
	}
	ch := chain{soakStart: start, end: end, soakSamples: samples}
	got := soakResults(groups, ch, 10*time.Minute, 5*time.Minute)
	if got == nil || got.Problem != "" || len(got.Processes) != 5 || got.Within || got.Judged != 4 || got.EndAfterS != 3600 || got.Samples != 60 {
		t.Fatalf("soak: %+v", got)
	}
	want := []struct {
		name   string
		change float64
		within bool
	}{{"payout", 5, true}, {"application", 15, false}, {"loadgen", 200, false}, {"postgres", 5, true}, {"nats", 0, true}}
	for i, w := range want {
		if p := got.Processes[i]; p.Name != w.name || p.ChangePct != w.change || p.Within != w.within {
			t.Errorf("%s: %+v, want %+.0f %% within=%t", w.name, p, w.change, w.within)
		}
	}
	if p := got.Processes[2]; !p.Tool {
		t.Errorf("loadgen: %+v, want a test tool", p)
	}
	if p := got.Processes[3]; !p.PSS || p.BaselineMiB != 200 {
		t.Errorf("postgres: %+v, want its PSS sum (its RSS sum grew 20 %% with the shared buffers)", p)
	}
	if p := got.Processes[4]; p.PeakMiB != 130 {
		t.Errorf("nats: %+v, want peak 130 MiB", p)
	}
	for i := range samples {
		if !samples[i].at.Before(start.Add(30 * time.Minute)) {
			samples[i].s["application"] = driver.GroupSample{RSS: 210 * mib}
		}
	}
	if ok := soakResults(groups, ch, 10*time.Minute, 5*time.Minute); !ok.Within || ok.Judged != 4 {
		t.Errorf("platform within 10 %%, the tool at +200 %%: %+v, want within", ok)
	}
	short := chain{soakStart: start, end: start.Add(19 * time.Minute), soakSamples: samples}
	if none := soakResults(groups, short, 10*time.Minute, 5*time.Minute); none.Problem == "" {
		t.Error("a chain too short for both windows: no problem said")
	}
	if off := soakResults(groups, ch, 0, 5*time.Minute); off != nil {
		t.Errorf("no soak asked, got %+v", off)
	}
}
