// Package migrations embeds the payout service's schema migrations.
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

// AppendOnly names the tables payout's role may only read and add rows to:
// the verified manifests, which nothing may rewrite, and the loan book.
func AppendOnly() []string {
	return []string{"manifests", "manifest_parts", "manifest_items", "manifests_verified", "loan_contracts", "loan_repayments"}
}
