// Package store keeps leads and the intake log in MongoDB (or any server speaking its wire
// protocol) through the official driver, and can start an embedded one for local mode.
package store

import (
	"cmp"
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
	"github.com/leadhook/leadhook/webhookserver/spool"
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

	// MaxBatch bounds how many leads one group commit writes; default DefaultMaxBatch.
	MaxBatch int
	// WriteTimeout bounds one batch's write to MongoDB; past it the batch goes to the spool.
	// Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Spool, when set, takes the leads MongoDB does not acknowledge, and is drained into
	// MongoDB when it answers again. Without it such leads fail with ErrUnavailable, and
	// while MongoDB is known to be failing new leads fail at once rather than wait.
	Spool *spool.Spool
	// RetryInterval is how often a failing MongoDB is probed and the spool drained; default
	// DefaultRetryInterval.
	RetryInterval time.Duration
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

	// Group commit and spool (writer.go).
	queue         chan *pending
	closeMu       sync.RWMutex
	closing       bool
	stopWriter    chan struct{}
	writerDone    chan struct{}
	stopDrainer   chan struct{}
	kick          chan struct{}
	down          atomic.Bool  // MongoDB failed: new batches go straight to the spool
	indexesDue    atomic.Bool  // started while MongoDB was down: indexes not yet created
	spoolRefused  atomic.Bool  // the spool was full when last offered a batch
	intakeDropRun atomic.Int64 // intake entries dropped since MongoDB last took writes
	spool         *spool.Spool
	maxBatch      int
	writeTimeout  time.Duration
	retryInterval time.Duration
	metrics       *storeMetrics
}

// InsertResult says what became of a lead handed to the store.
type InsertResult struct {
	ID        bson.ObjectID // the stored lead, or the earlier one it duplicates
	Duplicate bool
	// Spooled is set when MongoDB did not acknowledge the lead and the spool holds it until
	// it can be replayed. (A replay that finds the lead already stored stores nothing.)
	Spooled bool
}

// Open connects, checks the server answers and creates the indexes. A server that does not
// answer is no error: leads go to the spool (or, without one, fail with ErrUnavailable at
// once) while it is probed every RetryInterval, and the indexes are created as soon as it
// answers, before any lead is written to it.
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

		queue:         make(chan *pending, 4*max(opt.MaxBatch, DefaultMaxBatch)),
		stopWriter:    make(chan struct{}),
		writerDone:    make(chan struct{}),
		stopDrainer:   make(chan struct{}),
		kick:          make(chan struct{}, 1),
		spool:         opt.Spool,
		maxBatch:      cmp.Or(max(opt.MaxBatch, 0), DefaultMaxBatch),
		writeTimeout:  cmp.Or(max(opt.WriteTimeout, 0), DefaultWriteTimeout),
		retryInterval: cmp.Or(max(opt.RetryInterval, 0), DefaultRetryInterval),
	}
	s.metrics = newStoreMetrics(s)
	err = s.Ping(ctx)
	if err == nil {
		err = s.ensureIndexes(ctx)
	}
	if err != nil {
		s.indexesDue.Store(true)
		s.setDown(true, err)
	}
	go func() {
		defer close(s.writerDone)
		s.runWriter()
	}()
	s.wg.Add(1)
	go s.runDrainer()
	if s.spool != nil && s.spool.Stats().Batches > 0 {
		s.kickDrainer() // what an earlier run spooled goes in first thing
	}
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
	// dedup_key needs no index: _id is derived from it, so the primary key keeps it unique.
	if err := createMissingIndexes(ctx, s.leads, []mongo.IndexModel{
		{Keys: bson.D{{Key: "dedup_key_alt", Value: 1}}, Options: options.Index().SetUnique(true).SetName("dedup_key_alt_unique")},
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

// FindLead returns the id of the lead stored under a de-duplication key, if any.
func (s *Store) FindLead(ctx context.Context, dedupKey string) (bson.ObjectID, bool, error) {
	id := lead.IDForKey(dedupKey)
	err := s.leads.FindOne(ctx, bson.D{{Key: "_id", Value: id}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return bson.ObjectID{}, false, nil
	case err != nil:
		return bson.ObjectID{}, false, fmt.Errorf("looking up lead %s: %w", id.Hex(), err)
	}
	return id, true, nil
}

// Close writes (or spools) the leads still queued and the intake log, stops the drainer,
// makes one last bounded attempt to drain the spool into MongoDB, and disconnects. Later
// calls do nothing.
func (s *Store) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		s.closeMu.Lock()
		s.closing = true // no lead is queued from now on
		s.closeMu.Unlock()
		close(s.stopWriter)
		<-s.writerDone // the queued leads are written, or spooled
		close(s.stopDrainer)
		close(s.stop)
		s.wg.Wait()
		s.finalDrain(s.writeTimeout + 2*time.Second)
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
