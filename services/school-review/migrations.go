// Package schoolreview holds the school-review service's embedded database
// migrations; the service itself lives under internal/.
package schoolreview

import (
	"embed"
	"io/fs"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the service's NNN_name.up.sql files at the top level,
// as db.Migrate expects.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}
