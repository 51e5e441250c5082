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

// TestSoakResults: a process that grew by 5 % since the baseline is within
// the soak's 10 %, one that grew by 15 % is not, and the run fails with it;
// a test tool's growth is reported and does not decide the verdict.
func TestSoakResults(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	groups := []driver.ProcessGroup{{Name: "payout", Pid: 1}, {Name: "application", Pid: 2}, {Name: "loadgen", Pid: 3, Tool: true},
		{Name: "postgres", Pid: 4, WithChildren: true}}
	start := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	ch := chain{
		soakAt: start.Add(10 * time.Minute),
		end:    start.Add(60 * time.Minute),
		soakBaseline: map[string]driver.GroupSample{"payout": {RSS: 100 * mib}, "application": {RSS: 200 * mib}, "loadgen": {RSS: 100 * mib},
			"postgres": {RSS: 3000 * mib, PSS: 200 * mib}},
		cpuAfter: map[string]driver.GroupSample{"payout": {RSS: 105 * mib}, "application": {RSS: 230 * mib}, "loadgen": {RSS: 300 * mib},
			"postgres": {RSS: 3600 * mib, PSS: 210 * mib}},
	}
	got := soakResults(groups, ch, 10*time.Minute)
	if got == nil || len(got.Processes) != 4 || got.Within || got.Judged != 3 || got.EndAfterS != 3600 {
		t.Fatalf("soak: %+v", got)
	}
	if p := got.Processes[2]; !p.Tool || p.ChangePct != 200 || p.Within {
		t.Errorf("loadgen: %+v, want a tool at +200 %%", p)
	}
	if p := got.Processes[3]; !p.PSS || p.ChangePct != 5 || !p.Within {
		t.Errorf("postgres: %+v, want its PSS sum at +5 %% (its RSS sum grew 20 %% with the shared buffers)", p)
	}
	ch.cpuAfter["application"] = driver.GroupSample{RSS: 210 * mib}
	if ok := soakResults(groups, ch, 10*time.Minute); !ok.Within || ok.Judged != 3 {
		t.Errorf("platform within 10 %%, the tool at +200 %%: %+v, want within", ok)
	}
	ch.cpuAfter["application"] = driver.GroupSample{RSS: 230 * mib}
	if p := got.Processes[0]; p.Name != "payout" || p.ChangePct != 5 || !p.Within {
		t.Errorf("payout: %+v, want +5 %% within", p)
	}
	if p := got.Processes[1]; p.Name != "application" || p.ChangePct != 15 || p.Within {
		t.Errorf("application: %+v, want +15 %% not within", p)
	}
	if none := soakResults(groups, chain{}, 10*time.Minute); none.Problem == "" {
		t.Error("a chain that ended before the baseline: no problem said")
	}
	if off := soakResults(groups, ch, 0); off != nil {
		t.Errorf("no soak asked, got %+v", off)
	}
}
