package store_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/leadhook/leadhook/webhookserver/lead"
	"github.com/leadhook/leadhook/webhookserver/store"
	"github.com/leadhook/leadhook/webhookserver/store/storetest"
)

var server *storetest.Server

func TestMain(m *testing.M) {
	var err error
	if server, err = storetest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	server.Stop()
	os.Exit(code)
}

func newLead(t *testing.T, phone string, received time.Time) *lead.Lead {
	t.Helper()
	l, err := lead.Build(lead.Fields{Phone: phone}, lead.Options{}, received)
	if err != nil {
		t.Fatal(err)
	}
	l.Integration = lead.Integration{Namespace: "clinic", Name: "website", Source: "Generic"}
	l.SetDedupKey("", "", 10*time.Minute)
	return l
}

func TestInsertLeadDeduplicates(t *testing.T) {
	st := server.Open(t)
	ctx := context.Background()
	// Just before an edge of the first grid of 20-minute buckets (twice the 10-minute window).
	now := time.Date(2026, 1, 1, 10, 19, 59, 0, time.UTC)
	first := newLead(t, "+972547712345", now)
	res, err := st.InsertLead(ctx, first)
	if err != nil || res.Duplicate || res.ID != first.ID {
		t.Fatalf("first insert = %+v, %v", res, err)
	}
	// Same key: the unique index answers, naming the stored lead.
	again := newLead(t, "+972547712345", now.Add(time.Second-time.Millisecond))
	if again.DedupKey != first.DedupKey {
		t.Fatal("test needs both leads in one window")
	}
	res, err = st.InsertLead(ctx, again)
	if err != nil || !res.Duplicate || res.ID != first.ID {
		t.Fatalf("same key = %+v, %v; want duplicate of %s", res, err, first.ID.Hex())
	}
	// Across the edge: refused by the second key, answered with the lead it repeats.
	next := newLead(t, "+972547712345", now.Add(2*time.Second))
	if next.DedupKey == first.DedupKey || next.DedupKeyAlt != first.DedupKeyAlt {
		t.Fatal("test needs the lead across an edge of the first grid only")
	}
	res, err = st.InsertLead(ctx, next)
	if err != nil || !res.Duplicate || res.ID != first.ID {
		t.Fatalf("next window = %+v, %v; want duplicate", res, err)
	}
	n, err := st.Leads().CountDocuments(ctx, bson.D{})
	if err != nil || n != 1 {
		t.Fatalf("%d leads (%v), want 1", n, err)
	}
}

// Opening a store again on the same database keeps its data and its unique index.
func TestReopenKeepsIndexes(t *testing.T) {
	ctx := context.Background()
	db := fmt.Sprintf("reopen_%d", time.Now().UnixNano())
	open := func() *store.Store {
		st, err := store.Open(ctx, store.Options{URI: server.URI, Database: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatalf("opening: %v", err)
		}
		return st
	}
	st := open()
	l := newLead(t, "+972547712345", time.Now())
	if _, err := st.InsertLead(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st = open()
	defer st.Close(ctx)
	dup := *l
	dup.ID = bson.NewObjectID()
	res, err := st.InsertLead(ctx, &dup)
	if err != nil || !res.Duplicate || res.ID != l.ID {
		t.Fatalf("after reopen = %+v, %v; want duplicate of %s", res, err, l.ID.Hex())
	}
}

func TestIntakeLogFlushAndSweep(t *testing.T) {
	ctx := context.Background()
	db := fmt.Sprintf("intake_%d", time.Now().UnixNano())
	st, err := store.Open(ctx, store.Options{URI: server.URI, Database: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	old := &store.IntakeEntry{ReceivedAt: time.Now().Add(-48 * time.Hour), Outcome: "rejected", Status: 400}
	old.SetBody([]byte("\xff\xfe not utf-8"), true)
	recent := &store.IntakeEntry{ReceivedAt: time.Now(), Outcome: "rejected", Status: 422}
	recent.SetBody(make([]byte, store.MaxIntakeBody+10), true)
	st.RecordIntake(old)
	st.RecordIntake(recent)
	// Close flushes what is queued.
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(ctx, store.Options{URI: server.URI, Database: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	var got []store.IntakeEntry
	cur, err := st.Intake().Find(ctx, bson.D{})
	if err != nil || cur.All(ctx, &got) != nil || len(got) != 2 {
		t.Fatalf("intake log has %d entries (%v), want 2", len(got), err)
	}
	for _, e := range got {
		switch e.Status {
		case 400:
			if string(e.BodyBinary) != "\xff\xfe not utf-8" || e.Body != "" {
				t.Errorf("non-UTF-8 body not kept as binary: %+v", e)
			}
		case 422:
			if len(e.Body) != store.MaxIntakeBody || !e.Truncated || e.BodyBytes != store.MaxIntakeBody+10 {
				t.Errorf("large body: kept %d of %d bytes, truncated %v", len(e.Body), e.BodyBytes, e.Truncated)
			}
		}
	}
	n, err := st.SweepIntake(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("sweep deleted %d (%v), want 1", n, err)
	}
}
