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

// writeIntake writes queued entries in batches until Close, then flushes what is queued.
func (s *Store) writeIntake() {
	defer s.wg.Done()
	const maxBatch = 256
	batch := make([]any, 0, maxBatch)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := s.intake.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false)); err != nil {
			s.log.Error("Could not write intake log", "entries", len(batch), "error", err)
		}
		batch = batch[:0]
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case e := <-s.intakeQueue:
			batch = append(batch, e)
			if len(batch) == maxBatch {
				flush()
			}
		case <-tick.C:
			flush()
		case <-s.stop:
			for {
				select {
				case e := <-s.intakeQueue:
					batch = append(batch, e)
					if len(batch) == maxBatch {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
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
