package natsx

import (
	"slices"

	"github.com/edubureau/studentaid/pkg/events"
)

// Identities that are not services.
const (
	// AdminIdentity sets up the streams (EnsureStreams), replays dead
	// letters and re-publishes outboxes (aidctl) and runs the tests'
	// fixtures: it may publish and subscribe anything.
	AdminIdentity = "admin"
	// LoadgenIdentity reads the event stream's size for the load
	// generator's report, nothing else.
	LoadgenIdentity = "loadgen"
)

// Permissions are the subjects an identity may publish to and subscribe to;
// anything else the server refuses.
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// Identity is one NATS user: a service, the admin or the load generator.
// Each logs in with an NKey of its own (docs/operations.md, NATS).
type Identity struct {
	Name string
	Permissions
}

// InboxPrefix is the prefix of the reply subjects of the connection of name
// (Connect sets it): each identity may subscribe to its own replies only.
func InboxPrefix(name string) string { return "_INBOX." + name }

// ReadOnlyServices follow the event stream but own no event type: they may
// pull from their own durable and publish only their dead letters.
var ReadOnlyServices = []string{"reporting"}

// Identities is the NATS permission table: the admin, the load generator
// and each service that owns events, sorted by name. natsdev serves it and
// deploy/nats/nats.conf must match it (deploy/validate_test.go).
func Identities() []Identity {
	ids := make([]Identity, 0, 2+len(events.Owners())+len(ReadOnlyServices))
	ids = append(ids,
		Identity{Name: AdminIdentity, Permissions: Permissions{Publish: []string{">"}, Subscribe: []string{">"}}},
		Identity{Name: LoadgenIdentity, Permissions: Permissions{
			Publish:   []string{"$JS.API.INFO", "$JS.API.STREAM.INFO." + EventStream},
			Subscribe: []string{InboxPrefix(LoadgenIdentity) + ".>"},
		}},
	)
	for _, s := range events.Owners() {
		ids = append(ids, Identity{Name: s, Permissions: ServicePermissions(s)})
	}
	for _, s := range ReadOnlyServices {
		ids = append(ids, Identity{Name: s, Permissions: ServicePermissions(s)})
	}
	slices.SortFunc(ids, func(a, b Identity) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return ids
}

// ServicePermissions are what service may do: publish the events it owns
// ("aid.<each of its type prefixes>.>") and its own dead letters; look up the streams;
// create, read and pull from its own durable consumer (named after the
// service) and acknowledge its messages; receive replies on its own inbox.
// It cannot create, change or delete streams, touch another durable, or
// delete or purge messages.
//
// A service still creates its own durable, because its filter subjects are
// declared beside its handlers (services/*/internal/ports/events.go). The
// residual right: a compromised service could widen its own durable's
// filter and read events it does not consume. It still cannot publish them,
// and every consumer checks an event's origin (Consumer).
func ServicePermissions(service string) Permissions {
	durable := "." + EventStream + "." + service
	pub := make([]string, 0, 16)
	for _, prefix := range events.TypePrefixes(service) {
		pub = append(pub, events.SubjectPrefix+prefix+".>")
	}
	pub = append(pub,
		DeadPrefix+service+".>",
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO."+EventStream,
		"$JS.API.STREAM.INFO."+DeadStream,
		"$JS.API.CONSUMER.CREATE"+durable,
		"$JS.API.CONSUMER.CREATE"+durable+".>",
		"$JS.API.CONSUMER.DURABLE.CREATE"+durable,
		"$JS.API.CONSUMER.INFO"+durable,
		"$JS.API.CONSUMER.MSG.NEXT"+durable,
		"$JS.ACK"+durable+".>",
	)
	pub = append(pub, extraPublish[service]...)
	return Permissions{Publish: pub, Subscribe: []string{InboxPrefix(service) + ".>"}}
}

// extraPublish are subjects outside the event stream a service publishes,
// and the JetStream API calls on other streams it makes, by service (e.g.
// application's trail checkpoints: the subject and
// "$JS.API.STREAM.INFO.<stream>"). Streams themselves belong in Streams,
// which only the admin creates. `make nats-conf` must follow a change.
var extraPublish = map[string][]string{
	// The application service signs trail checkpoints onto their own
	// stream and reads the latest back (VerifyTrail).
	"application": {
		CheckpointSubject,
		"$JS.API.STREAM.INFO." + CheckpointStream,
		"$JS.API.STREAM.MSG.GET." + CheckpointStream,
	},
}
