package db

import (
	"strconv"
	"strings"
)

// Where builds the conditions of a dynamic query with numbered placeholders.
type Where struct {
	conds []string
	// Args are the query's arguments, in placeholder order.
	Args []any
}

// Add appends cond, whose "?" stands for v.
func (w *Where) Add(cond string, v any) {
	w.Args = append(w.Args, v)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "?", w.next()))
}

// AddIf is Add when v is not the empty string.
func (w *Where) AddIf(cond, v string) {
	if v != "" {
		w.Add(cond, v)
	}
}

// Arg appends v and returns its placeholder, for parts after the WHERE
// clause (LIMIT $n).
func (w *Where) Arg(v any) string {
	w.Args = append(w.Args, v)
	return w.next()
}

func (w *Where) next() string { return "$" + strconv.Itoa(len(w.Args)) }

// SQL is " WHERE c1 AND c2 …", or "" without conditions.
func (w *Where) SQL() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}
