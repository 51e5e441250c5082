package ports

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/review/reviewports"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/school-review/internal/app"
	"github.com/edubureau/studentaid/services/school-review/internal/domain"
)

// Consumer returns the service's durable consumer: every submitted
// application becomes a pending review item.
func Consumer(a *app.Service) *natsx.Consumer {
	return &natsx.Consumer{
		Subjects: []string{events.Subject(events.TypeApplicationSubmitted)},
		Handle: func(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
			s, ok, err := submittedOf(ev)
			if !ok || err != nil {
				return err
			}
			return a.ApplySubmitted(ctx, tx, s)
		},
	}
}

// submittedOf decodes an application.submitted event; ok is false for any
// other event, and the error is natsx.Permanent when the event lacks what a
// review item needs.
func submittedOf(ev *eventsv1.Event) (s app.Submitted, ok bool, err error) {
	body := ev.GetApplicationSubmitted()
	if body == nil {
		return s, false, nil // not an event this service consumes
	}
	if _, err := uuid.Parse(ev.GetApplicationId()); err != nil {
		return s, false, natsx.Permanent(fmt.Errorf("application.submitted %s: bad application id", ev.GetEventId()))
	}
	if ev.GetSchoolCode() == "" || body.GetSubmittedBy() == "" {
		return s, false, natsx.Permanent(fmt.Errorf("application.submitted %s: missing school or submitter", ev.GetEventId()))
	}
	tiers, err := domain.TiersOf(body.GetTierFen())
	if err != nil {
		return s, false, natsx.Permanent(fmt.Errorf("application.submitted %s: %w", ev.GetEventId(), err))
	}
	if body.GetPolicyVersion() < 0 || body.GetRegisterVersion() < 0 {
		return s, false, natsx.Permanent(fmt.Errorf("application.submitted %s: negative policy or register version", ev.GetEventId()))
	}
	return app.Submitted{
		Arrival:           reviewports.Arrival(ev, body),
		StudentNameMasked: body.GetStudentNameMasked(),
		Tiered:            body.GetTiered(),
		PolicyVersion:     body.GetPolicyVersion(),
		RegisterVersion:   body.GetRegisterVersion(),
		Tiers:             tiers,
	}, true, nil
}
