package service

import (
	"errors"

	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/services/data-comparison/internal/app"
)

// DevIntegrityAccount is the development integrity account (廉政账户);
// production refuses it.
const DevIntegrityAccount = "DEV-INTEGRITY-ACCOUNT"

// LoadConfig reads DATA_COMPARISON_IMPORT_DIR (where server-side import
// files are read from; empty: none) and DATA_COMPARISON_INTEGRITY_ACCOUNT
// (the account refunds are received into), which production must set, and
// DATA_COMPARISON_EXPORT_DIR (where exports are written; empty: inline only).
func LoadConfig(production bool) (app.Config, error) {
	c := app.Config{
		ImportDir:        config.Env("DATA_COMPARISON_IMPORT_DIR", ""),
		ExportDir:        config.Env("DATA_COMPARISON_EXPORT_DIR", ""),
		IntegrityAccount: config.Env("DATA_COMPARISON_INTEGRITY_ACCOUNT", DevIntegrityAccount),
	}
	if production && c.IntegrityAccount == DevIntegrityAccount {
		return c, errors.New("AID_ENV=production refuses the development integrity account: set DATA_COMPARISON_INTEGRITY_ACCOUNT")
	}
	return c, nil
}
