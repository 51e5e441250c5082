package adapters

import (
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/keyrotation"
)

// SealedTables are payout's tables with sealed payees, for key rotation.
// Their values are the application service's, bound to the application
// (events.BankCardBinding), and are re-sealed under the same binding.
var SealedTables = []keyrotation.Table{
	{Name: "payees", Key: "application_id", Bind: "application_id", Columns: payeeColumns},
	{Name: "payments", Key: "payment_id", Bind: "application_id", Columns: payeeColumns},
}

var payeeColumns = []keyrotation.Column{
	{Name: "bank_card_sealed", Binding: events.BankCardBinding},
	{Name: "account_name_sealed", Binding: events.AccountNameBinding},
}
