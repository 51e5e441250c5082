package ports

import (
	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
)

// NewConsumer returns the service's durable consumer: every submitted
// application becomes a pending review item.
func NewConsumer(a *app.Service) *natsx.Consumer {
	return &natsx.Consumer{
		Subjects: []string{events.Subject(events.TypeApplicationSubmitted)},
		Handle:   a.ApplySubmitted,
	}
}
