package db

import (
	"reflect"
	"testing"
)

func TestWhere(t *testing.T) {
	t.Parallel()
	var w Where
	if w.SQL() != "" {
		t.Fatalf("empty: %q", w.SQL())
	}
	w.Add("state = ?", "PENDING")
	w.AddIf("school_code = ?", "")
	w.AddIf("term = ?", "2017-autumn")
	limit := w.Arg(50)
	if got := w.SQL() + " LIMIT " + limit; got != " WHERE state = $1 AND term = $2 LIMIT $3" {
		t.Fatalf("SQL = %q", got)
	}
	if !reflect.DeepEqual(w.Args, []any{"PENDING", "2017-autumn", 50}) {
		t.Fatalf("Args = %v", w.Args)
	}
}
