// Package migrations embeds the console's schema migrations: its sessions,
// the uploads waiting to be submitted and the progress of long work.
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
