package ports

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edubureau/studentaid/pkg/events"
	"github.com/edubureau/studentaid/pkg/natsx"
	"github.com/edubureau/studentaid/pkg/review/reviewports"
	eventsv1 "github.com/edubureau/studentaid/proto/gen/aid/events/v1"
	"github.com/edubureau/studentaid/services/bureau-review/internal/app"
)

// Consumer returns the service's durable consumer: applications whose
// school notice passed, and items finance sent back.
func Consumer(a *app.Service) *natsx.Consumer {
	return &natsx.Consumer{
		Subjects: []string{events.Subject(events.TypeNoticePassed), events.Subject(events.TypeItemReturnedToBureau)},
		Handle: func(ctx context.Context, tx pgx.Tx, ev *eventsv1.Event) error {
			if _, err := uuid.Parse(ev.GetApplicationId()); err != nil {
				return natsx.Permanent(fmt.Errorf("%s %s: bad application id", ev.GetType(), ev.GetEventId()))
			}
			switch {
			case ev.GetNoticePassed() != nil:
				p, err := noticePassedOf(ev)
				if err != nil {
					return err
				}
				return classify(a.ApplyNoticePassed(ctx, tx, p))
			case ev.GetItemReturnedToBureau() != nil:
				return classify(a.ApplyItemReturned(ctx, tx, app.ItemReturned{
					ApplicationID: ev.GetApplicationId(), Reason: ev.GetItemReturnedToBureau().GetReason(),
				}))
			}
			return nil // not an event this service consumes
		},
	}
}

// noticePassedOf decodes a notice_passed event; a natsx.Permanent error when
// it lacks what a review item needs.
func noticePassedOf(ev *eventsv1.Event) (app.NoticePassed, error) {
	body := ev.GetNoticePassed()
	if ev.GetSchoolCode() == "" || body.GetSubmittedBy() == "" || body.GetSchoolReviewer() == "" || body.GetAmountFen() < 0 {
		return app.NoticePassed{}, natsx.Permanent(fmt.Errorf("notice_passed %s: missing school, submitter or school reviewer, or negative amount", ev.GetEventId()))
	}
	return app.NoticePassed{
		Arrival:        reviewports.Arrival(ev, body),
		HardshipLevel:  body.GetHardshipLevel(),
		SchoolReviewer: body.GetSchoolReviewer(),
	}, nil
}

// classify maps a use case's error to the consumer's: natsx.Permanent for
// never, natsx.ErrNotYet to retry later, anything else to retry. The
// message stays the use case's.
func classify(err error) error {
	switch {
	case errors.Is(err, app.ErrImpossible):
		return natsx.Permanent(err)
	case errors.Is(err, app.ErrNotYet):
		return natsx.NotYet(err)
	}
	return err
}
