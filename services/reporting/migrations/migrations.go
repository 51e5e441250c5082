// Package migrations embeds the reporting service's schema migrations.
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
// to: the FINAL versions of the annual reports.
func AppendOnly() []string { return []string{"report_versions"} }
