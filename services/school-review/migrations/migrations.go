// Package migrations embeds the school-review service's schema migrations.
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
// to: every version of the working calendar, with who set it and why.
func AppendOnly() []string { return []string{"calendar_versions"} }
