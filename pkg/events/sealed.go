package events

import "github.com/edubureau/studentaid/pkg/pii"

// The sealed payee an application.submitted or application.payee_corrected
// event carries is bound (AES-GCM associated data, see pii.Binding) to the
// application service's column and the application, wherever a copy of it
// is kept: payout stores it as received and opens it with the same
// binding, so a card copied to another application's payment, or into the
// account-name column, does not open.
const (
	BankCardColumn    = "application.applications.bank_card_sealed"
	AccountNameColumn = "application.applications.account_name_sealed"
)

// BankCardBinding is the associated data of applicationID's sealed card.
func BankCardBinding(applicationID string) []byte { return pii.Binding(BankCardColumn, applicationID) }

// AccountNameBinding is the associated data of applicationID's sealed
// account name.
func AccountNameBinding(applicationID string) []byte {
	return pii.Binding(AccountNameColumn, applicationID)
}
