// Package migrations embeds the data-comparison service's schema migrations.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed *.up.sql
var files embed.FS

// FS returns the migrations, NNN_name.up.sql at the top level as db.Migrate
// expects.
func FS() fs.FS { return files }

// AppendOnly names the tables the service's role may only read and add rows
// to: each clue's hash-chained trail and the refund receipts.
func AppendOnly() []string { return []string{"clue_trail", "receipts"} }
