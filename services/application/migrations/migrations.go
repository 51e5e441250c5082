// Package migrations embeds the application service's schema migrations.
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
// to: the trail and its change feed, its anchor (tree leaves and checkpoints) and the record of
// reads of personal data (their triggers
// refuse updates too, and the role cannot drop them).
func AppendOnly() []string {
	return []string{"trail", "changes", "pii_reads", "trail_leaves", "trail_checkpoints"}
}
