// Package migrations holds the finance-confirmation schema's migrations.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed *.up.sql
var files embed.FS

// FS returns the NNN_name.up.sql files at its top level, as db.Migrate expects.
func FS() fs.FS { return files }
