package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/leadhook/leadhook/webhookserver/lead"
	"github.com/leadhook/leadhook/webhookserver/spool"
)

// Group commit: InsertLead hands its lead to one writer goroutine, which takes every lead
// waiting (up to MaxBatch) and stores them with one unordered InsertMany; each caller gets its
// own lead's result. While a batch is being written the next one gathers, so batches grow with
// load and a lone lead is written at once. When MongoDB does not acknowledge a batch in time
// (down, unreachable, too slow, or short of its write concern), the batch goes to the spool,
// fsynced, and its leads count as taken; a drainer replays the spool into MongoDB once it
// answers again, the unique de-duplication key making every replay harmless.

// ErrUnavailable is returned for a lead that neither MongoDB nor the spool took.
var ErrUnavailable = errors.New("store unavailable")

// ErrClosed is returned by InsertLead once Close has begun.
var ErrClosed = errors.New("store closed")

// Defaults of the group-commit writer.
const (
	DefaultMaxBatch      = 100
	DefaultWriteTimeout  = 3 * time.Second
	DefaultRetryInterval = time.Second
)

// pending is one lead waiting for the writer, and where its result goes.
type pending struct {
	lead *lead.Lead
	done chan result // buffered: the writer never blocks on a caller that gave up
}

type result struct {
	res InsertResult
	err error
}

// InsertLead stores a lead unless one with its de-duplication key (or its previous-window key)
// exists, in which case it reports the earlier lead as a duplicate. It returns only once the
// lead is durable: acknowledged by MongoDB with the store's write concern, or fsynced to the
// spool (then Spooled is set). Leads from concurrent calls are written together.
func (s *Store) InsertLead(ctx context.Context, l *lead.Lead) (InsertResult, error) {
	if l.ID.IsZero() {
		l.ID = bson.NewObjectID()
	}
	p := &pending{lead: l, done: make(chan result, 1)}
	s.closeMu.RLock()
	if s.closing {
		s.closeMu.RUnlock()
		return InsertResult{}, ErrClosed
	}
	select {
	case s.queue <- p:
		s.closeMu.RUnlock()
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return InsertResult{}, fmt.Errorf("queueing lead: %w", ctx.Err())
	}
	select {
	case r := <-p.done:
		return r.res, r.err
	case <-ctx.Done():
		// The writer still stores or spools it; the sender's retry will be a duplicate.
		return InsertResult{}, fmt.Errorf("waiting for the lead's write: %w", ctx.Err())
	}
}

// runWriter is the group-commit loop; it also writes the intake log, between batches of leads
// (every 200ms, or as soon as a batch of entries is full). Once Close has stopped new leads
// from coming, it writes what is still queued and returns.
func (s *Store) runWriter() {
	batch := make([]*pending, 0, s.maxBatch)
	intake := make([]any, 0, maxIntakeBatch)
	flushIntake := func() {
		s.writeIntake(intake)
		clear(intake)
		intake = intake[:0]
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case p := <-s.queue:
			batch = append(batch, p)
		gather:
			for len(batch) < s.maxBatch {
				select {
				case p := <-s.queue:
					batch = append(batch, p)
				default:
					break gather
				}
			}
			s.commit(batch)
			clear(batch)
			batch = batch[:0]
		case e := <-s.intakeQueue:
			if intake = append(intake, e); len(intake) == maxIntakeBatch {
				flushIntake()
			}
		case <-tick.C:
			flushIntake()
		case <-s.stopWriter:
		leads:
			for {
				select {
				case p := <-s.queue:
					if batch = append(batch, p); len(batch) == s.maxBatch {
						s.commit(batch)
						batch = batch[:0]
					}
				default:
					break leads
				}
			}
			if len(batch) > 0 {
				s.commit(batch)
			}
		entries:
			for {
				select {
				case e := <-s.intakeQueue:
					if intake = append(intake, e); len(intake) == maxIntakeBatch {
						flushIntake()
					}
				default:
					break entries
				}
			}
			flushIntake()
			return
		}
	}
}

// commit writes one batch and answers every lead in it.
func (s *Store) commit(batch []*pending) {
	start := time.Now()
	s.metrics.batchSize.Observe(float64(len(batch)))
	defer func() { s.metrics.batchDuration.Observe(time.Since(start).Seconds()) }()

	leads := make([]*lead.Lead, len(batch))
	for i, p := range batch {
		leads[i] = p.lead
	}
	var results []result
	switch {
	case s.down.Load() && s.spool != nil:
		// MongoDB failed a moment ago: do not make these senders wait for another timeout.
		results = s.spoolLeads(leads, nil)
	case s.down.Load():
		// No spool to take them: answer 503 now; the drainer probes MongoDB meanwhile.
		results = make([]result, len(leads))
		for i := range results {
			results[i] = result{err: fmt.Errorf("%w: MongoDB is not taking writes and there is no spool", ErrUnavailable)}
		}
	default:
		ctx, cancel := context.WithTimeout(context.Background(), s.writeTimeout)
		results = s.writeLeads(ctx, leads)
		cancel()
	}
	for i, p := range batch {
		p.done <- results[i]
	}
}

// writeLeads stores leads in MongoDB, spooling those it cannot confirm.
func (s *Store) writeLeads(ctx context.Context, leads []*lead.Lead) []result {
	results := make([]result, len(leads))
	answered := make([]bool, len(leads))

	var docs []any
	var index []int // docs[j] is leads[index[j]]
	for i, l := range leads {
		if !answered[i] {
			docs = append(docs, l)
			index = append(index, i)
		}
	}
	if len(docs) == 0 {
		return results
	}
	_, err := s.leads.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	unconfirmed := map[int]bool{} // written perhaps, but not acknowledged as asked
	var dupIdx []int              // refused as duplicates of a stored lead
	var bwe mongo.BulkWriteException
	switch {
	case err == nil:
	case errors.As(err, &bwe):
		failed := map[int]bool{}
		for _, we := range bwe.WriteErrors {
			if we.Index < 0 || we.Index >= len(index) {
				continue
			}
			i := index[we.Index]
			failed[i] = true
			if isDuplicateCode(we.Code) {
				dupIdx = append(dupIdx, i)
				continue
			}
			// Refused by the server for this document alone (it would be refused again).
			s.storeFailed("insert", we)
			results[i], answered[i] = result{err: fmt.Errorf("inserting lead: %w", we)}, true
		}
		if bwe.WriteConcernError != nil {
			s.storeFailed("insert", bwe.WriteConcernError)
			for _, i := range index {
				if !failed[i] {
					unconfirmed[i] = true
				}
			}
		}
	default:
		s.storeFailed("insert", err)
		for _, i := range index {
			unconfirmed[i] = true
		}
	}
	for i, r := range s.resolveDuplicates(ctx, leads, dupIdx) {
		results[i], answered[i] = r, true
	}
	var toSpool []*lead.Lead
	var spoolIdx []int
	for _, i := range index {
		switch {
		case answered[i]:
		case unconfirmed[i]:
			toSpool = append(toSpool, leads[i])
			spoolIdx = append(spoolIdx, i)
		default:
			results[i] = result{res: InsertResult{ID: leads[i].ID}}
		}
	}
	if len(toSpool) > 0 {
		for j, r := range s.spoolLeads(toSpool, err) {
			results[spoolIdx[j]] = r
		}
	}
	if err == nil {
		s.setDown(false, nil)
	}
	return results
}

// spoolLeads writes leads to the spool as one batch; cause is why MongoDB did not take them.
func (s *Store) spoolLeads(leads []*lead.Lead, cause error) []result {
	results := make([]result, len(leads))
	fail := func(err error) []result {
		for i := range results {
			results[i] = result{err: err}
		}
		return results
	}
	if cause != nil {
		s.setDown(true, cause)
	}
	if s.spool == nil {
		return fail(fmt.Errorf("%w: %w", ErrUnavailable, cause))
	}
	records := make([][]byte, len(leads))
	for i, l := range leads {
		b, err := bson.Marshal(l) // the document as it will be stored
		if err != nil {
			return fail(fmt.Errorf("encoding lead for the spool: %w", err))
		}
		records[i] = b
	}
	if _, err := s.spool.Append(records); err != nil {
		s.spoolRefused.Store(errors.Is(err, spool.ErrFull))
		s.metrics.spoolErrors.Inc()
		s.log.Error("Could not spool leads", "leads", len(leads), "error", err)
		return fail(fmt.Errorf("%w: %w", ErrUnavailable, err))
	}
	s.spoolRefused.Store(false)
	s.metrics.spooled.Add(float64(len(leads)))
	s.kickDrainer()
	for i, l := range leads {
		results[i] = result{res: InsertResult{ID: l.ID, Spooled: true}}
	}
	return results
}

// resolveDuplicates answers the leads (by index) that the unique indexes refused, with the
// lead each repeats. When the first key matched, that lead's id follows from the key. When
// only the second did (content repeated across an edge of the first grid), the earlier lead
// is looked up by it: rare, and slow only on FerretDB.
func (s *Store) resolveDuplicates(ctx context.Context, leads []*lead.Lead, idx []int) map[int]result {
	out := make(map[int]result, len(idx))
	var altKeys []string
	for _, i := range idx {
		l := leads[i]
		if l.DedupKeyAlt == l.DedupKey {
			out[i] = result{res: InsertResult{ID: l.ID, Duplicate: true}}
			continue
		}
		altKeys = append(altKeys, l.DedupKeyAlt)
	}
	if len(altKeys) == 0 {
		return out
	}
	ids, err := s.idsByAltKey(ctx, altKeys)
	if err != nil {
		s.storeFailed("lookup", err)
	}
	for _, i := range idx {
		l := leads[i]
		if _, done := out[i]; done {
			continue
		}
		switch id, ok := ids[l.DedupKeyAlt]; {
		case ok:
			out[i] = result{res: InsertResult{ID: id, Duplicate: true}}
		case err == nil:
			// Not stored under its second key, so it was its first: the same id.
			out[i] = result{res: InsertResult{ID: l.ID, Duplicate: true}}
		default:
			// A duplicate for sure; which lead it repeats could not be read: the sender retries.
			out[i] = result{err: fmt.Errorf("looking up the earlier lead: %w", errors.Join(err, ErrUnavailable))}
		}
	}
	return out
}

// idsByAltKey finds the ids of the leads stored under the given second keys.
func (s *Store) idsByAltKey(ctx context.Context, keys []string) (map[string]bson.ObjectID, error) {
	cur, err := s.leads.Find(ctx, bson.D{{Key: "dedup_key_alt", Value: bson.D{{Key: "$in", Value: keys}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "dedup_key_alt", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("looking up leads by dedup key: %w", err)
	}
	var docs []struct {
		ID  bson.ObjectID `bson:"_id"`
		Key string        `bson:"dedup_key_alt"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("reading leads by dedup key: %w", err)
	}
	ids := make(map[string]bson.ObjectID, len(docs))
	for _, d := range docs {
		ids[d.Key] = d.ID
	}
	return ids, nil
}

// isDuplicateCode is true for the server's duplicate-key error codes.
func isDuplicateCode(code int) bool {
	return code == 11000 || code == 11001 || code == 12582
}

// storeFailed counts and logs a failed MongoDB operation (never the lead itself).
func (s *Store) storeFailed(op string, err error) {
	s.metrics.storeErrors.WithLabelValues(op).Inc()
	s.log.Warn("MongoDB operation failed", "op", op, "error", err)
}

// setDown records whether MongoDB is failing (cause says why), which sends new batches
// straight to the spool, or without one fails them at once.
func (s *Store) setDown(down bool, cause error) {
	if s.down.Swap(down) != down {
		switch {
		case !down:
			s.log.Info("MongoDB is taking writes again")
			s.endIntakeDropRun()
		case s.spool != nil:
			s.log.Warn("MongoDB is not taking writes; leads go to the spool until it does", "error", cause)
		default:
			s.log.Error("MongoDB is not taking writes and there is no spool; leads are answered 503 until it does", "error", cause)
		}
	}
	if down {
		s.metrics.up.Set(0)
	} else {
		s.metrics.up.Set(1)
	}
}

func (s *Store) kickDrainer() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// runDrainer replays the spool into MongoDB: at once when kicked, and every retry interval
// while anything is spooled or MongoDB is failing (without a spool it only probes MongoDB,
// so that leads are taken again once it answers).
func (s *Store) runDrainer() {
	defer s.wg.Done()
	t := time.NewTicker(s.retryInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopDrainer:
			return
		case <-t.C:
		case <-s.kick:
			if s.down.Load() {
				continue // the ticker probes a failing MongoDB; do not hammer it
			}
		}
		if !s.down.Load() && (s.spool == nil || s.spool.Stats().Batches == 0) {
			continue
		}
		if err := s.drainUntilStopped(); err != nil {
			s.setDown(true, err)
			if s.spool != nil {
				s.log.Debug("Could not drain the spool yet", "error", err, "spooled_leads", s.spool.Stats().Records)
			}
		}
	}
}

// drainUntilStopped drains the spool, interrupted by Close; an interrupted batch stays
// spooled, and replaying it later is harmless.
func (s *Store) drainUntilStopped() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stopDrainer:
			cancel()
		case <-ctx.Done():
		}
	}()
	return s.drain(ctx)
}

// finalDrain is Close's last attempt to empty the spool, so that a pod whose spool lives and
// dies with it (an emptyDir) leaves nothing behind when MongoDB answers.
func (s *Store) finalDrain(within time.Duration) {
	if s.spool == nil || s.spool.Stats().Batches == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := s.drain(ctx); err != nil {
		s.log.Warn("Leads stay in the spool for the next start", "leads", s.spool.Stats().Records, "error", err)
	}
}

// drain checks MongoDB answers (creating the indexes if Open could not), then writes every
// spooled batch to it, oldest first, removing
// each batch once MongoDB has acknowledged all of it.
func (s *Store) drain(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return err
	}
	if s.indexesDue.Load() { // the unique dedup index must exist before any lead goes in
		if err := s.ensureIndexes(ctx); err != nil {
			return err
		}
		s.indexesDue.Store(false)
	}
	s.setDown(false, nil)
	if s.spool == nil {
		return nil
	}
	var batches, leads int
	defer func() {
		if batches > 0 {
			s.log.Info("Drained the spool into MongoDB", "batches", batches, "leads", leads,
				"still_spooled_leads", s.spool.Stats().Records)
		}
	}()
	for _, b := range s.spool.Batches() {
		if ctx.Err() != nil {
			return nil
		}
		n, err := s.drainBatch(ctx, b)
		if err != nil {
			return err
		}
		batches++
		leads += n
	}
	return nil
}

// drainBatch writes one spooled batch to MongoDB. Leads already there (an earlier replay, a
// retried delivery, a write that was applied but not acknowledged) are skipped by their
// de-duplication keys.
func (s *Store) drainBatch(ctx context.Context, b spool.Batch) (int, error) {
	records, err := s.spool.Read(b)
	if err != nil {
		s.log.Error("Quarantined an unreadable spool batch", "batch", b.Name, "error", err)
		s.metrics.spoolErrors.Inc()
		return 0, s.spool.Quarantine(b)
	}
	leads := make([]any, len(records))
	for i, rec := range records {
		if err := bson.Raw(rec).Validate(); err != nil {
			s.log.Error("Quarantined a spool batch with an undecodable lead", "batch", b.Name, "error", err)
			s.metrics.spoolErrors.Inc()
			return 0, s.spool.Quarantine(b)
		}
		leads[i] = bson.Raw(rec)
	}
	wctx, cancel := context.WithTimeout(ctx, s.writeTimeout+10*time.Second)
	defer cancel()
	{
		_, err := s.leads.InsertMany(wctx, leads, options.InsertMany().SetOrdered(false))
		var bwe mongo.BulkWriteException
		if errors.As(err, &bwe) && bwe.WriteConcernError == nil {
			refused := 0
			for _, we := range bwe.WriteErrors {
				if !isDuplicateCode(we.Code) {
					refused++
				}
			}
			if refused > 0 {
				s.log.Error("MongoDB refused spooled leads; their batch is quarantined", "batch", b.Name, "refused", refused)
				s.metrics.spoolErrors.Inc()
				s.metrics.drained.Add(float64(len(leads) - refused))
				return 0, s.spool.Quarantine(b)
			}
			err = nil
		}
		if err != nil {
			s.storeFailed("drain", err)
			return 0, fmt.Errorf("replaying spool batch %s: %w", b.Name, err)
		}
	}
	s.metrics.drained.Add(float64(len(records)))
	if err := s.spool.Remove(b); err != nil {
		return 0, err
	}
	s.spoolRefused.Store(false)
	s.log.Debug("Drained a spool batch into MongoDB", "batch", b.Name, "leads", len(records))
	return len(records), nil
}

// Ready says whether the store can take leads: MongoDB answers, or it does not and the spool
// has room (below 90% of its limit, and it took the last batch offered) for what arrives
// meanwhile.
func (s *Store) Ready(ctx context.Context) error {
	spoolErr := errors.New("MongoDB is not answering and there is no spool")
	if s.spool != nil {
		spoolErr = nil
		if st := s.spool.Stats(); st.Bytes >= st.MaxBytes/10*9 || s.spoolRefused.Load() {
			spoolErr = fmt.Errorf("MongoDB is not answering and the spool is nearly full (%d of %d bytes)", st.Bytes, st.MaxBytes)
		}
	}
	if s.down.Load() { // known down: no need to wait for a ping to time out
		return spoolErr
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		if spoolErr != nil {
			return errors.Join(err, spoolErr)
		}
	}
	return nil
}
