package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/leadhook/leadhook/webhookserver/lead"
	"github.com/leadhook/leadhook/webhookserver/spool"
	"github.com/leadhook/leadhook/webhookserver/store"
	"github.com/leadhook/leadhook/webhookserver/store/storetest"
)

// deliveryLead is a lead carrying a delivery id, so its de-duplication key is that id.
func deliveryLead(t *testing.T, i int, deliveryID string) *lead.Lead {
	t.Helper()
	l := newLead(t, fmt.Sprintf("+97254%07d", i), time.Now())
	l.SetDedupKey("", deliveryID, 0)
	return l
}

// insertAll inserts leads concurrently and returns each one's result.
func insertAll(t *testing.T, st *store.Store, leads []*lead.Lead) ([]store.InsertResult, []error) {
	t.Helper()
	res, errs := make([]store.InsertResult, len(leads)), make([]error, len(leads))
	var wg sync.WaitGroup
	for i, l := range leads {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res[i], errs[i] = st.InsertLead(ctx, l)
		})
	}
	wg.Wait()
	return res, errs
}

// histogramCount is how many observations a store histogram holds.
func histogramCount(t *testing.T, st *store.Store, name string) uint64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(st.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func countLeads(t *testing.T, st *store.Store, filter bson.D) int64 {
	t.Helper()
	n, err := st.Leads().CountDocuments(context.Background(), filter)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestGroupCommitWritesConcurrentLeadsTogether(t *testing.T) {
	st := server.Open(t)
	const n = 300
	leads := make([]*lead.Lead, n)
	for i := range leads {
		leads[i] = deliveryLead(t, i, fmt.Sprintf("delivery-%d", i))
	}
	res, errs := insertAll(t, st, leads)
	for i := range leads {
		if errs[i] != nil || res[i].Duplicate || res[i].Spooled || res[i].ID != leads[i].ID {
			t.Fatalf("lead %d: %+v, %v; want stored under its own id", i, res[i], errs[i])
		}
	}
	if got := countLeads(t, st, bson.D{}); got != n {
		t.Fatalf("%d leads stored, want %d", got, n)
	}
	if batches := histogramCount(t, st, "leadhook_store_batch_size"); batches == 0 || batches >= n {
		t.Fatalf("%d leads took %d batches: no group commit", n, batches)
	}
}

// Two deliveries of one lead racing each other, in one batch or two: one is stored, the
// other is told it is a duplicate of that one.
func TestGroupCommitAnswersEachDuplicateItsOwnRequest(t *testing.T) {
	st := server.Open(t)
	var leads []*lead.Lead
	for i := range 60 {
		key := fmt.Sprintf("pair-%d", i)
		leads = append(leads, deliveryLead(t, i, key), deliveryLead(t, i, key))
	}
	for i := range 40 {
		leads = append(leads, deliveryLead(t, 1000+i, fmt.Sprintf("single-%d", i)))
	}
	res, errs := insertAll(t, st, leads)
	for i := 0; i < 120; i += 2 {
		a, b := res[i], res[i+1]
		if errs[i] != nil || errs[i+1] != nil {
			t.Fatalf("pair %d: %v, %v", i/2, errs[i], errs[i+1])
		}
		if a.Duplicate == b.Duplicate || a.ID != b.ID {
			t.Fatalf("pair %d: %+v and %+v; want one stored and one duplicate of it", i/2, a, b)
		}
	}
	for i := 120; i < len(leads); i++ {
		if errs[i] != nil || res[i].Duplicate {
			t.Fatalf("single lead %d: %+v, %v", i, res[i], errs[i])
		}
	}
	if got := countLeads(t, st, bson.D{}); got != 100 {
		t.Fatalf("%d leads stored, want 100 (60 pairs + 40)", got)
	}
}

// openWithSpool opens a store on srv with a spool, quick to give up on and to retry MongoDB.
func openWithSpool(t *testing.T, uri string, sp *spool.Spool) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{URI: uri, Database: "spooltest", Spool: sp,
		WriteTimeout: time.Second, RetryInterval: 100 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

// waitDrained waits until the spool is empty and MongoDB takes writes again.
func waitDrained(t *testing.T, st *store.Store, sp *spool.Spool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for sp.Stats().Batches > 0 || st.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("spool not drained within a minute: %+v", sp.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSpoolTakesLeadsWhileMongoDBIsDownAndDrainsThemOnce(t *testing.T) {
	t.Parallel()
	srv := storetest.StartStoppable(t)
	sp, err := spool.Open(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	st := openWithSpool(t, srv.URI, sp)
	before := []*lead.Lead{deliveryLead(t, 1, "before-1"), deliveryLead(t, 2, "before-2")}
	if _, errs := insertAll(t, st, before); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}

	srv.Stop()
	var during []*lead.Lead
	for i := range 50 {
		during = append(during, deliveryLead(t, 100+i, fmt.Sprintf("during-%d", i)))
	}
	// A retry of a lead MongoDB already has: the spool cannot know, the replay finds it.
	retry := deliveryLead(t, 1, "before-1")
	during = append(during, retry)
	res, errs := insertAll(t, st, during)
	for i := range during {
		if errs[i] != nil || !res[i].Spooled || res[i].ID != during[i].ID {
			t.Fatalf("lead %d while MongoDB is down: %+v, %v; want spooled under its own id", i, res[i], errs[i])
		}
	}
	if got := sp.Stats().Records; got != len(during) {
		t.Fatalf("spool holds %d leads, want %d", got, len(during))
	}
	if err := st.Ready(context.Background()); err != nil {
		t.Fatalf("not ready while the spool has room: %v", err)
	}

	srv.Start(t)
	waitDrained(t, st, sp)
	if got := countLeads(t, st, bson.D{}); got != int64(len(before)+len(during)-1) {
		t.Fatalf("%d leads stored, want %d (the retry stored once)", got, len(before)+len(during)-1)
	}
	for _, l := range during[:50] {
		if got := countLeads(t, st, bson.D{{Key: "_id", Value: l.ID}}); got != 1 {
			t.Fatalf("spooled lead %s stored %d times", l.ID.Hex(), got)
		}
	}
	if got := countLeads(t, st, bson.D{{Key: "dedup_key", Value: retry.DedupKey}}); got != 1 {
		t.Fatalf("retried lead stored %d times", got)
	}
	// Back to normal: a new lead goes straight to MongoDB.
	res, errs = insertAll(t, st, []*lead.Lead{deliveryLead(t, 9, "after-1")})
	if errs[0] != nil || res[0].Spooled {
		t.Fatalf("after recovery: %+v, %v; want stored in MongoDB", res[0], errs[0])
	}
}

func TestFullSpoolRefusesAndIsNotReady(t *testing.T) {
	t.Parallel()
	srv := storetest.StartStoppable(t)
	sp, err := spool.Open(t.TempDir(), 100) // smaller than one lead
	if err != nil {
		t.Fatal(err)
	}
	st := openWithSpool(t, srv.URI, sp)
	srv.Stop()
	_, errs := insertAll(t, st, []*lead.Lead{deliveryLead(t, 1, "x")})
	if !errors.Is(errs[0], store.ErrUnavailable) {
		t.Fatalf("insert with MongoDB down and the spool full: %v, want ErrUnavailable", errs[0])
	}
	if err := st.Ready(context.Background()); err == nil {
		t.Fatal("ready with MongoDB down and the spool full")
	}
}

func TestWithoutSpoolAnUnacknowledgedLeadFails(t *testing.T) {
	t.Parallel()
	srv := storetest.StartStoppable(t)
	st := openWithSpool(t, srv.URI, nil)
	srv.Stop()
	_, errs := insertAll(t, st, []*lead.Lead{deliveryLead(t, 1, "x")})
	if !errors.Is(errs[0], store.ErrUnavailable) {
		t.Fatalf("insert with MongoDB down and no spool: %v, want ErrUnavailable", errs[0])
	}
}

// A server started while MongoDB is down takes leads into the spool, and creates the indexes
// (the unique de-duplication key first of all) before draining it.
func TestOpenWhileMongoDBIsDown(t *testing.T) {
	t.Parallel()
	srv := storetest.StartStoppable(t)
	srv.Stop()
	sp, err := spool.Open(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	st := openWithSpool(t, srv.URI, sp)
	l := deliveryLead(t, 1, "early")
	res, errs := insertAll(t, st, []*lead.Lead{l, deliveryLead(t, 1, "early")})
	if errs[0] != nil || errs[1] != nil || !res[0].Spooled || !res[1].Spooled {
		t.Fatalf("leads while MongoDB never answered: %+v, %v", res, errs)
	}
	srv.Start(t)
	waitDrained(t, st, sp)
	if got := countLeads(t, st, bson.D{{Key: "dedup_key", Value: l.DedupKey}}); got != 1 {
		t.Fatalf("a delivery spooled twice is stored %d times, want 1", got)
	}
	specs, err := st.Leads().Indexes().ListSpecifications(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range specs {
		found = found || (s.Name == "dedup_key_alt_unique" && s.Unique != nil && *s.Unique)
	}
	if !found {
		t.Fatal("the unique index on the second de-duplication key was not created after MongoDB came back")
	}
}

// Leads spooled by one run are drained by the next, as after a crash.
func TestNextRunDrainsTheSpool(t *testing.T) {
	t.Parallel()
	srv := storetest.StartStoppable(t)
	dir := t.TempDir()
	sp, err := spool.Open(dir, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	st := openWithSpool(t, srv.URI, sp)
	srv.Stop()
	leads := []*lead.Lead{deliveryLead(t, 1, "a"), deliveryLead(t, 2, "b"), deliveryLead(t, 3, "c")}
	if _, errs := insertAll(t, st, leads); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	_ = st.Close(context.Background())
	srv.Start(t)
	sp2, err := spool.Open(dir, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if sp2.Stats().Records != len(leads) {
		t.Fatalf("reopened spool holds %d leads, want %d", sp2.Stats().Records, len(leads))
	}
	st2 := openWithSpool(t, srv.URI, sp2)
	waitDrained(t, st2, sp2)
	for _, l := range leads {
		if got := countLeads(t, st2, bson.D{{Key: "_id", Value: l.ID}}); got != 1 {
			t.Fatalf("lead %s stored %d times after the next run drained the spool", l.ID.Hex(), got)
		}
	}
}

// Close empties the spool when MongoDB answers, so a pod whose spool goes with it (an
// emptyDir) leaves nothing behind. The drainer never runs here: only Close can drain.
func TestCloseDrainsTheSpoolWhenMongoDBAnswers(t *testing.T) {
	t.Parallel()
	srv := storetest.StartStoppable(t)
	sp, err := spool.Open(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{URI: srv.URI, Database: "closedrain", Spool: sp,
		WriteTimeout: time.Second, RetryInterval: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	leads := []*lead.Lead{deliveryLead(t, 1, "a"), deliveryLead(t, 2, "b")}
	if _, errs := insertAll(t, st, leads); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	if sp.Stats().Records != 2 {
		t.Fatalf("spool holds %d leads, want 2", sp.Stats().Records)
	}
	srv.Start(t)
	if err := st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sp.Stats().Records; got != 0 {
		t.Fatalf("after Close with MongoDB back, the spool still holds %d leads", got)
	}
	check, err := store.Open(context.Background(), store.Options{URI: srv.URI, Database: "closedrain",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close(context.Background())
	for _, l := range leads {
		if got := countLeads(t, check, bson.D{{Key: "_id", Value: l.ID}}); got != 1 {
			t.Fatalf("lead %s stored %d times after Close drained the spool", l.ID.Hex(), got)
		}
	}
}
