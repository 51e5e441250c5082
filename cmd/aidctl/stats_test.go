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
		Programs: []*reportingv1.ProgramFigure{{ProgramCode: "PRESCHOOL_AID", PaidFen: 200_000, Persons: 4, PersonTimes: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"10965.01 yuan (1.096501 万元)", "14 / 16", "PRESCHOOL_AID", "2000.00 yuan (0.200000 万元)", "2018-01-02T03:04:05.000000Z"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}
