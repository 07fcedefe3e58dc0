package store

import (
	"context"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// MaxIntakeBody is the most of a request body the intake log keeps.
const MaxIntakeBody = 64 << 10

// IntakeEntry is the outcome of one request, kept so that nothing a sender sent is lost
// without trace: rejected payloads are kept here (size-capped), stored ones point at their lead.
type IntakeEntry struct {
	ID          bson.ObjectID  `bson:"_id"`
	ReceivedAt  time.Time      `bson:"received_at"`
	RequestID   string         `bson:"request_id,omitempty"`
	Integration string         `bson:"integration,omitempty"`
	Route       string         `bson:"route,omitempty"`
	Method      string         `bson:"method"`
	Path        string         `bson:"path"`
	Status      int            `bson:"status"`
	Outcome     string         `bson:"outcome"`
	Error       string         `bson:"error,omitempty"`
	LeadID      *bson.ObjectID `bson:"lead_id,omitempty"`
	RemoteIP    string         `bson:"remote_ip,omitempty"` // the client, as --trusted-proxies resolves it
	PeerIP      string         `bson:"peer_ip,omitempty"`   // the socket peer, when not RemoteIP
	UserAgent   string         `bson:"user_agent,omitempty"`
	ContentType string         `bson:"content_type,omitempty"`
	BodyBytes   int            `bson:"body_bytes"`
	Body        string         `bson:"body,omitempty"`
	BodyBinary  []byte         `bson:"body_binary,omitempty"` // a body that is not UTF-8
	Truncated   bool           `bson:"truncated,omitempty"`
}

// SetBody keeps up to MaxIntakeBody bytes of body: as text when it is UTF-8, else as binary.
func (e *IntakeEntry) SetBody(body []byte, complete bool) {
	e.BodyBytes = len(body)
	e.Truncated = !complete
	if len(body) > MaxIntakeBody {
		body, e.Truncated = body[:MaxIntakeBody], true
	}
	if utf8.Valid(body) {
		e.Body = string(body)
	} else {
		e.BodyBinary = append([]byte(nil), body...)
	}
}

// RecordIntake queues an entry for the intake log without waiting. Entries are written in
// batches; when the queue is full the entry is counted in IntakeDropped and dropped.
func (s *Store) RecordIntake(e *IntakeEntry) {
	if e.ID.IsZero() {
		e.ID = bson.NewObjectID()
	}
	select {
	case s.intakeQueue <- e:
	default:
		s.IntakeDropped.Add(1)
	}
}

// maxIntakeBatch bounds how many intake entries are written together.
const maxIntakeBatch = 256

// writeIntake writes a batch of intake entries. It runs on the group-commit writer, between
// batches of leads, so the two never contend for the store (SQLite, under FerretDB, makes a
// second writer wait and retry). While MongoDB is failing the entries are dropped and
// counted rather than holding up the leads behind them.
func (s *Store) writeIntake(batch []any) {
	if len(batch) == 0 {
		return
	}
	if s.down.Load() {
		s.dropIntake(len(batch))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.writeTimeout)
	defer cancel()
	if _, err := s.intake.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false)); err != nil {
		s.dropIntake(len(batch))
		s.storeFailed("intake", err)
		return
	}
	s.endIntakeDropRun()
}

// dropIntake counts dropped intake entries, logging once per outage rather than per batch.
func (s *Store) dropIntake(n int) {
	s.IntakeDropped.Add(int64(n))
	if s.intakeDropRun.Add(int64(n)) == int64(n) {
		s.log.Warn("Dropping intake log entries until MongoDB takes them again (leads are not affected); counted in leadhook_intake_log_dropped_total")
	}
}

// endIntakeDropRun logs how many intake entries an outage cost, once MongoDB takes writes
// again, so that the next outage gets its own warning.
func (s *Store) endIntakeDropRun() {
	if n := s.intakeDropRun.Swap(0); n > 0 {
		s.log.Warn("Intake log entries were dropped while MongoDB was not taking them", "entries", n)
	}
}

// SweepIntake deletes intake entries received before the given time (FerretDB has no TTL
// indexes, so expiry is a periodic delete that works on MongoDB too).
func (s *Store) SweepIntake(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.intake.DeleteMany(ctx, bson.D{{Key: "received_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, err
	}
	return res.DeletedCount, nil
}

func (s *Store) sweepIntake(retention time.Duration) {
	defer s.wg.Done()
	sweep := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n, err := s.SweepIntake(ctx, time.Now().Add(-retention))
		if err != nil {
			s.log.Error("Could not expire intake log", "error", err)
		} else if n > 0 {
			s.log.Info("Expired intake log entries", "deleted", n)
		}
	}
	sweep()
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			sweep()
		}
	}
}
