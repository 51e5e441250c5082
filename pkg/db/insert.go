package db

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// CopyThreshold is the number of rows from which InsertRows uses COPY. Below
// it one multi-row INSERT is cheaper: COPY costs extra protocol round trips
// that only pay off for many rows.
const CopyThreshold = 16

// InsertRows writes rows (values in the order of columns) into table inside
// tx: with COPY from CopyThreshold rows on, otherwise with one INSERT.
func InsertRows(ctx context.Context, tx Tx, table string, columns []string, rows [][]any) error {
	switch {
	case len(rows) == 0:
		return nil
	case len(rows) >= CopyThreshold:
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copy %d rows into %s: %w", len(rows), table, err)
		}
		return nil
	}
	var sql strings.Builder
	sql.WriteString("INSERT INTO ")
	sql.WriteString(pgx.Identifier{table}.Sanitize())
	sql.WriteString(" (")
	for i, c := range columns {
		if i > 0 {
			sql.WriteString(", ")
		}
		sql.WriteString(pgx.Identifier{c}.Sanitize())
	}
	sql.WriteString(") VALUES ")
	args := make([]any, 0, len(rows)*len(columns))
	for i, r := range rows {
		if len(r) != len(columns) {
			return fmt.Errorf("insert into %s: row %d has %d values for %d columns", table, i, len(r), len(columns))
		}
		if i > 0 {
			sql.WriteString(", ")
		}
		sql.WriteByte('(')
		for j := range r {
			if j > 0 {
				sql.WriteString(", ")
			}
			sql.WriteByte('$')
			sql.WriteString(strconv.Itoa(len(args) + j + 1))
		}
		sql.WriteByte(')')
		args = append(args, r...)
	}
	if _, err := tx.Exec(ctx, sql.String(), args...); err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", len(rows), table, err)
	}
	return nil
}
