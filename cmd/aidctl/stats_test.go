package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	reportingv1 "github.com/edubureau/studentaid/proto/gen/aid/reporting/v1"
)

func TestPrintStats(t *testing.T) {
	var b strings.Builder
	err := printStats(&b, &reportingv1.Statistics{AsOf: timestamppb.New(time.Date(2018, 1, 2, 3, 4, 5, 0, time.UTC)),
		PaidFen: 1_096_501, Persons: 14, PersonTimes: 16,
		Programs: []*reportingv1.ProgramFigure{{ProgramCode: "PRESCHOOL_AID", PaidFen: 200_000, Persons: 4, PersonTimes: 4}},
		Steps: []*reportingv1.StepFigure{{Step: "notice", Applications: 3, Left: 5, MedianSeconds: 4*3600 + 90},
			{Step: "paid", Applications: 7}},
		Rejections: []*reportingv1.RejectionReason{{Step: "school_rejected", Reason: "income above the line", Count: 2},
			{Step: "school_rejected", Other: true, Count: 9}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"10965.01 yuan (1.096501 万元)", "14 / 16", "PRESCHOOL_AID", "2000.00 yuan (0.200000 万元)", "2018-01-02T03:04:05.000000Z",
		"notice 3 5 4h1m30s", "paid 7 0 -", "school_rejected income above the line 2", "school_rejected (other reasons) 9"} {
		// The table's columns collapsed to single spaces.
		if !strings.Contains(strings.Join(strings.Fields(b.String()), " "), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}
