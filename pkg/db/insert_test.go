package db_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/internal/devtools/testenv"
	"github.com/edubureau/studentaid/pkg/db"
)

// InsertRows writes the same rows whether it takes the INSERT path (few
// rows) or COPY (many): NULLs, bytes, times and numbers alike.
func TestInsertRowsBothPaths(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := testenv.Pool(t, "insertrows")
	if _, err := pool.Exec(ctx, `CREATE SCHEMA insertrows`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE items (id int PRIMARY KEY, name text, data bytea, at timestamptz, fen bigint, ref uuid)`); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2017, 9, 1, 8, 0, 0, 0, time.UTC)
	row := func(i int) []any {
		var ref any // NULL for odd rows
		if i%2 == 0 {
			ref = "0193a1b2-0000-7000-8000-00000000000" + string(rune('0'+i%10))
		}
		return []any{i, "名字", []byte{byte(i), 0xff}, at.Add(time.Duration(i) * time.Second), int64(i) * 50000, ref}
	}
	cols := []string{"id", "name", "data", "at", "fen", "ref"}
	for _, n := range []int{1, db.CopyThreshold - 1, db.CopyThreshold, 40} {
		if _, err := pool.Exec(ctx, `TRUNCATE items`); err != nil {
			t.Fatal(err)
		}
		rows := make([][]any, n)
		for i := range rows {
			rows[i] = row(i)
		}
		if err := db.InTx(ctx, pool, func(tx pgx.Tx) error { return db.InsertRows(ctx, tx, "items", cols, rows) }); err != nil {
			t.Fatalf("%d rows: %v", n, err)
		}
		var count, nulls int
		var sum int64
		var last time.Time
		if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE ref IS NULL), sum(fen), max(at) FROM items
			WHERE name = '名字' AND get_byte(data, 1) = 255`).Scan(&count, &nulls, &sum, &last); err != nil {
			t.Fatal(err)
		}
		if count != n || nulls != n/2 || sum != int64(n*(n-1)/2)*50000 || !last.Equal(at.Add(time.Duration(n-1)*time.Second)) {
			t.Errorf("%d rows: stored %d, %d NULL refs, %d fen, last at %s", n, count, nulls, sum, last)
		}
	}
	err := db.InTx(ctx, pool, func(tx pgx.Tx) error { return db.InsertRows(ctx, tx, "items", cols, [][]any{{1, "short"}}) })
	if err == nil || !strings.Contains(err.Error(), "row 0 has 2 values for 6 columns") {
		t.Fatalf("short row: %v", err)
	}
}
