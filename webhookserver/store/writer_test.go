package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/leadhook/leadhook/internal/testlog"
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

// Without a spool a lead MongoDB does not take fails; once MongoDB is known to be failing the
// next ones fail at once (the sender gets its 503 now, not after another write timeout),
// intake entries are dropped with one warning, not one per batch, and the store is taken
// again when MongoDB answers.
func TestWithoutSpoolAnUnacknowledgedLeadFails(t *testing.T) {
	t.Parallel()
	srv := storetest.StartStoppable(t)
	logs := &testlog.Buffer{}
	st, err := store.Open(context.Background(), store.Options{URI: srv.URI, Database: "nospool",
		WriteTimeout: time.Minute, RetryInterval: 100 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	srv.Stop()
	_, errs := insertAll(t, st, []*lead.Lead{deliveryLead(t, 1, "x")})
	if !errors.Is(errs[0], store.ErrUnavailable) {
		t.Fatalf("insert with MongoDB down and no spool: %v, want ErrUnavailable", errs[0])
	}
	if _, err := st.InsertLead(context.Background(), deliveryLead(t, 2, "y")); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("second insert with MongoDB known down and no spool: %v, want ErrUnavailable", err)
	}
	if n := storeErrors(t, st, "insert"); n != 1 {
		t.Fatalf("%v inserts tried against a MongoDB known to be down, want 1: the second lead should fail at once", n)
	}
	if err := st.Ready(context.Background()); err == nil {
		t.Fatal("ready with MongoDB down and no spool")
	}
	for range 3 { // three intake flushes, 200ms apart
		st.RecordIntake(&store.IntakeEntry{ReceivedAt: time.Now(), Method: "POST", Path: "/x", Outcome: "test"})
		time.Sleep(300 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "Dropping intake log entries"); n != 1 {
		t.Fatalf("the intake drop warning was logged %d times during one outage, want once:\n%s", n, logs.String())
	}
	if st.IntakeDropped.Load() != 3 {
		t.Fatalf("IntakeDropped = %d, want 3", st.IntakeDropped.Load())
	}
	srv.Start(t)
	waitReady(t, st)
	if _, errs := insertAll(t, st, []*lead.Lead{deliveryLead(t, 3, "z")}); errs[0] != nil {
		t.Fatalf("insert after MongoDB came back: %v", errs[0])
	}
	waitLog(t, logs, "Intake log entries were dropped while MongoDB was not taking them\" entries=3", 1)

	// A second outage warns again: the first one's run ended when MongoDB came back.
	srv.Stop()
	if _, errs := insertAll(t, st, []*lead.Lead{deliveryLead(t, 4, "w")}); !errors.Is(errs[0], store.ErrUnavailable) {
		t.Fatalf("insert in a second outage: %v, want ErrUnavailable", errs[0])
	}
	st.RecordIntake(&store.IntakeEntry{ReceivedAt: time.Now(), Method: "POST", Path: "/x", Outcome: "test"})
	waitLog(t, logs, "Dropping intake log entries", 2)
}

// waitLog waits until want has appeared in logs at least n times.
func waitLog(t *testing.T, logs *testlog.Buffer, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(logs.String(), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("log does not have %q %d times within 10s:\n%s", want, n, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Without a spool the server still starts while MongoDB is down: not ready, leads refused,
// until MongoDB answers; then the indexes are created and leads are taken.
func TestOpenWithoutSpoolWhileMongoDBIsDown(t *testing.T) {
	t.Parallel()
	srv := storetest.StartStoppable(t)
	srv.Stop()
	st := openWithSpool(t, srv.URI, nil)
	if err := st.Ready(context.Background()); err == nil {
		t.Fatal("ready with MongoDB down and no spool")
	}
	if _, errs := insertAll(t, st, []*lead.Lead{deliveryLead(t, 1, "a")}); !errors.Is(errs[0], store.ErrUnavailable) {
		t.Fatalf("insert before MongoDB ever answered: %v, want ErrUnavailable", errs[0])
	}
	srv.Start(t)
	waitReady(t, st)
	l := deliveryLead(t, 1, "a")
	if res, errs := insertAll(t, st, []*lead.Lead{l, deliveryLead(t, 1, "a")}); errs[0] != nil || errs[1] != nil ||
		res[0].Duplicate == res[1].Duplicate {
		t.Fatalf("one delivery twice once MongoDB answers: %+v, %v; want one stored, one duplicate", res, errs)
	}
	if got := countLeads(t, st, bson.D{{Key: "_id", Value: l.ID}}); got != 1 {
		t.Fatalf("lead stored %d times, want 1", got)
	}
}

// waitReady waits until the store reports ready.
func waitReady(t *testing.T, st *store.Store) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for st.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("store not ready within a minute of MongoDB answering: %v", st.Ready(context.Background()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// storeErrors reads leadhook_store_errors_total for one operation; -1 when it is not exported.
func storeErrors(t *testing.T, st *store.Store, op string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(st.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "leadhook_store_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "op" && lp.GetValue() == op {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// The store's error counter is exported for every operation from the start, so that rate()
// and alerts have a series before the first failure.
func TestStoreErrorsExportedBeforeAnyError(t *testing.T) {
	t.Parallel()
	srv := storetest.StartStoppable(t)
	st := openWithSpool(t, srv.URI, nil)
	for _, op := range []string{"insert", "lookup", "drain", "intake"} {
		if n := storeErrors(t, st, op); n != 0 {
			t.Errorf("leadhook_store_errors_total{op=%q} = %v before any error, want exported at 0", op, n)
		}
	}
}
