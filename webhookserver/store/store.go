// Package store keeps leads and the intake log in MongoDB (or any server speaking its wire
// protocol) through the official driver, and can start an embedded one for local mode.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/leadhook/leadhook/webhookserver/lead"
)

// Collection names.
const (
	LeadsCollection  = "leads"
	IntakeCollection = "intake_log"
)

// Options configure a Store.
type Options struct {
	URI      string
	Database string // default "leadhook"
	// IntakeRetention is how long intake log entries are kept; 0 keeps them forever.
	IntakeRetention time.Duration
	// WriteConcern for leads; default majority with journal, so a 200 means durable.
	WriteConcern *writeconcern.WriteConcern
	Log          *slog.Logger
}

// Store is the leads collection and the intake log.
type Store struct {
	client *mongo.Client
	leads  *mongo.Collection
	intake *mongo.Collection
	log    *slog.Logger

	intakeQueue chan *IntakeEntry
	stop        chan struct{}
	wg          sync.WaitGroup
	closeOnce   sync.Once
	// IntakeDropped counts intake entries lost because the queue was full.
	IntakeDropped atomic.Int64
}

// InsertResult says what became of a lead handed to the store.
type InsertResult struct {
	ID        bson.ObjectID // the stored lead, or the earlier one it duplicates
	Duplicate bool
}

// Open connects, checks the server answers and creates the indexes.
func Open(ctx context.Context, opt Options) (*Store, error) {
	if opt.Database == "" {
		opt.Database = "leadhook"
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	wc := opt.WriteConcern
	if wc == nil {
		journal := true
		wc = &writeconcern.WriteConcern{W: "majority", Journal: &journal}
	}
	client, err := mongo.Connect(options.Client().ApplyURI(opt.URI).
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second).
		SetAppName("leadhook"))
	if err != nil {
		return nil, fmt.Errorf("connecting to MongoDB: %w", err)
	}
	db := client.Database(opt.Database)
	s := &Store{
		client:      client,
		leads:       db.Collection(LeadsCollection, options.Collection().SetWriteConcern(wc)),
		intake:      db.Collection(IntakeCollection),
		log:         opt.Log,
		intakeQueue: make(chan *IntakeEntry, 4096),
		stop:        make(chan struct{}),
	}
	if err := s.Ping(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	if err := s.ensureIndexes(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	s.wg.Add(1)
	go s.writeIntake()
	if opt.IntakeRetention > 0 {
		s.wg.Add(1)
		go s.sweepIntake(opt.IntakeRetention)
	}
	return s, nil
}

// Ping checks the server answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.client.Ping(ctx, nil); err != nil {
		return fmt.Errorf("pinging MongoDB: %w", err)
	}
	return nil
}

func (s *Store) ensureIndexes(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := createMissingIndexes(ctx, s.leads, []mongo.IndexModel{
		{Keys: bson.D{{Key: "dedup_key", Value: 1}}, Options: options.Index().SetUnique(true).SetName("dedup_key_unique")},
		{Keys: bson.D{{Key: "integration.namespace", Value: 1}, {Key: "integration.name", Value: 1}, {Key: "received_at", Value: -1}}, Options: options.Index().SetName("integration_received")},
		{Keys: bson.D{{Key: "status", Value: 1}, {Key: "received_at", Value: -1}}, Options: options.Index().SetName("status_received")},
		{Keys: bson.D{{Key: "phone.e164", Value: 1}}, Options: options.Index().SetName("phone_e164")},
	}); err != nil {
		return err
	}
	return createMissingIndexes(ctx, s.intake, []mongo.IndexModel{
		{Keys: bson.D{{Key: "received_at", Value: 1}}, Options: options.Index().SetName("received_at")},
		{Keys: bson.D{{Key: "request_id", Value: 1}}, Options: options.Index().SetName("request_id")},
	})
}

// createMissingIndexes creates the indexes whose names the collection lacks. Asking again for
// an existing compound index crashes FerretDB 1.24's connection, so existing ones are skipped.
func createMissingIndexes(ctx context.Context, coll *mongo.Collection, models []mongo.IndexModel) error {
	specs, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		return fmt.Errorf("listing indexes of %s: %w", coll.Name(), err)
	}
	have := map[string]bool{}
	for _, spec := range specs {
		have[spec.Name] = true
	}
	var missing []mongo.IndexModel
	for _, m := range models {
		var opts options.IndexOptions
		for _, apply := range m.Options.List() {
			_ = apply(&opts)
		}
		if opts.Name == nil || !have[*opts.Name] {
			missing = append(missing, m)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := coll.Indexes().CreateMany(ctx, missing); err != nil {
		return fmt.Errorf("creating indexes on %s: %w", coll.Name(), err)
	}
	return nil
}

// InsertLead stores a lead unless one with its de-duplication key (or its previous-window key)
// exists, in which case it reports the earlier lead as a duplicate. It returns only once the
// write is acknowledged with the store's write concern.
func (s *Store) InsertLead(ctx context.Context, l *lead.Lead) (InsertResult, error) {
	if l.PreviousDedupKey != "" {
		if id, found, err := s.findByKey(ctx, l.PreviousDedupKey); err != nil {
			return InsertResult{}, err
		} else if found {
			return InsertResult{ID: id, Duplicate: true}, nil
		}
	}
	if _, err := s.leads.InsertOne(ctx, l); err != nil {
		if !mongo.IsDuplicateKeyError(err) {
			return InsertResult{}, fmt.Errorf("inserting lead: %w", err)
		}
		id, _, findErr := s.findByKey(ctx, l.DedupKey)
		if findErr != nil {
			return InsertResult{}, findErr
		}
		return InsertResult{ID: id, Duplicate: true}, nil
	}
	return InsertResult{ID: l.ID}, nil
}

// FindLead returns the id of the lead stored under a de-duplication key, if any.
func (s *Store) FindLead(ctx context.Context, dedupKey string) (bson.ObjectID, bool, error) {
	return s.findByKey(ctx, dedupKey)
}

func (s *Store) findByKey(ctx context.Context, key string) (bson.ObjectID, bool, error) {
	var doc struct {
		ID bson.ObjectID `bson:"_id"`
	}
	err := s.leads.FindOne(ctx, bson.D{{Key: "dedup_key", Value: key}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&doc)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return bson.ObjectID{}, false, nil
	case err != nil:
		return bson.ObjectID{}, false, fmt.Errorf("looking up lead by dedup key: %w", err)
	}
	return doc.ID, true, nil
}

// Close flushes the intake log and disconnects. Later calls do nothing.
func (s *Store) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		if err = s.client.Disconnect(ctx); err != nil {
			err = fmt.Errorf("disconnecting from MongoDB: %w", err)
		}
	})
	return err
}

// Leads is the leads collection, for tools and tests that read what was stored.
func (s *Store) Leads() *mongo.Collection { return s.leads }

// Intake is the intake log collection.
func (s *Store) Intake() *mongo.Collection { return s.intake }
