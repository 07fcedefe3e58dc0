package main

// Fault tests of the built binary: whatever fails (MongoDB stopping, SIGTERM, SIGKILL) in the
// middle of a load of a few thousand leads, every lead answered 200 ends up in MongoDB exactly
// once, straight away or through the spool.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/leadhook/leadhook/webhookserver/spool"
	"github.com/leadhook/leadhook/webhookserver/store/storetest"
)

// loadResult is what senders were told: lead id by phone, for every 200.
type loadResult struct {
	mu      sync.Mutex
	acked   map[string]string // phone -> lead_id
	sent    atomic.Int64
	refused atomic.Int64  // answers other than 200
	fails   atomic.Int64  // transport errors (the server gone), the load's own end excluded
	done    chan struct{} // closed when every sender has stopped
}

func (r *loadResult) ackedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.acked)
}

// runLoad posts up to n distinct leads to /api/lead from workers senders until ctx ends.
// Each lead has its own phone, so the store can be asked about every one.
func runLoad(ctx context.Context, url string, n, workers int) *loadResult {
	r := &loadResult{acked: map[string]string{}, done: make(chan struct{})}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				phone := fmt.Sprintf("+97254%07d", i)
				body := fmt.Sprintf(`{"client_name":"Load %d","phone":%q,"comment":"fault test"}`, i, phone)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/lead", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				r.sent.Add(1)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						r.fails.Add(1)
					}
					time.Sleep(20 * time.Millisecond)
					continue
				}
				var out struct {
					Status bool   `json:"status"`
					LeadID string `json:"lead_id"`
				}
				derr := json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || derr != nil || !out.Status || out.LeadID == "" {
					r.refused.Add(1)
					continue
				}
				r.mu.Lock()
				r.acked[phone] = out.LeadID
				r.mu.Unlock()
			}
		})
	}
	go func() { wg.Wait(); client.CloseIdleConnections(); close(r.done) }()
	return r
}

// waitAcked waits until the load has had n leads acknowledged (or fails the test).
func waitAcked(t *testing.T, r *loadResult, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for r.ackedCount() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d leads acknowledged in 2 minutes (%d refused, %d failed)", r.ackedCount(), n, r.refused.Load(), r.fails.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkEveryAckedLeadStoredOnce reads every lead in MongoDB and checks each acknowledged one
// is there exactly once, under the id its sender was given, and no lead is there twice.
func checkEveryAckedLeadStoredOnce(t *testing.T, uri string, r *loadResult) {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cur, err := client.Database("leadhook").Collection("leads").Find(ctx, bson.D{},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "phone.raw", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		ID    bson.ObjectID `bson:"_id"`
		Phone struct {
			Raw string `bson:"raw"`
		} `bson:"phone"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	stored := map[string][]string{}
	for _, d := range docs {
		stored[d.Phone.Raw] = append(stored[d.Phone.Raw], d.ID.Hex())
	}
	for phone, ids := range stored {
		if len(ids) > 1 {
			t.Errorf("lead %s stored %d times", phone, len(ids))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	lost := 0
	for phone, id := range r.acked {
		switch ids := stored[phone]; {
		case len(ids) == 0:
			lost++
		case ids[0] != id:
			t.Errorf("lead %s acknowledged as %s but stored as %s", phone, id, ids[0])
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged leads are not in MongoDB", lost, len(r.acked))
	}
	t.Logf("%d leads sent, %d acknowledged, %d refused, %d failed, %d stored", r.sent.Load(), len(r.acked), r.refused.Load(), r.fails.Load(), len(docs))
}

// metricValue reads one unlabelled metric from a /metrics page.
func metricValue(page, name string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(page))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var v float64
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			if _, err := fmt.Sscan(f[1], &v); err == nil {
				return v, true
			}
		}
	}
	return 0, false
}

// waitSpoolDrained waits until the server's spool is empty and it is ready.
func waitSpoolDrained(t *testing.T, s *server) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		leads, ok := metricValue(s.scrape(t), "leadhook_spool_leads")
		up, _ := metricValue(s.scrape(t), "leadhook_store_up")
		if ok && leads == 0 && up == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("spool not drained in 2 minutes: %v leads left, store up %v", leads, up)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startAgainst starts the binary on an external MongoDB with a spool of its own; a batch
// MongoDB has not acknowledged within writeTimeout goes to the spool.
func startAgainst(t *testing.T, uri, spoolDir, writeTimeout string) *server {
	t.Helper()
	return startServer(t, copySamples(t), t.TempDir(), freeAddr(t), "", func(s *server) {
		s.args = append(s.args, "--mongo-uri", uri, "--spool-dir", spoolDir, "--store-write-timeout", writeTimeout)
	})
}

// The load: 16 senders, each posting its next lead once the last is answered, until the test
// has seen what it needs (a few thousand leads); faultCap only bounds a runaway.
const faultWorkers, faultCap = 16, 100_000

// afterNow is an acknowledged count that only leads answered after this call reach: FerretDB
// takes a moment to stop, and the load runs on meanwhile.
func afterNow(r *loadResult, more int) int { return r.ackedCount() + more }

func TestFaultMongoDBStopsMidLoad(t *testing.T) {
	t.Parallel()
	mongoSrv := storetest.StartStoppable(t)
	s := startAgainst(t, mongoSrv.URI, t.TempDir(), "2s")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	load := runLoad(ctx, s.url, faultCap, faultWorkers)
	waitAcked(t, load, 1000)
	mongoSrv.Stop()
	waitAcked(t, load, afterNow(load, 500)) // these go to the spool
	if v, _ := metricValue(s.scrape(t), "leadhook_spool_written_leads_total"); v == 0 {
		t.Fatal("MongoDB is stopped but no lead went to the spool")
	}
	mongoSrv.Start(t)
	waitAcked(t, load, afterNow(load, 1000))
	cancel()
	<-load.done
	waitSpoolDrained(t, s)
	checkEveryAckedLeadStoredOnce(t, mongoSrv.URI, load)
	// The spool took every lead MongoDB could not: no sender was refused or cut off.
	if load.refused.Load()+load.fails.Load() > 0 {
		t.Errorf("through the outage %d leads were refused and %d failed; want none", load.refused.Load(), load.fails.Load())
	}
}

func TestFaultSIGTERMMidLoad(t *testing.T) {
	t.Parallel()
	mongoSrv := storetest.StartStoppable(t)
	// A write timeout no loaded test machine reaches: nothing goes to the spool.
	s := startAgainst(t, mongoSrv.URI, t.TempDir(), "20s")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	load := runLoad(ctx, s.url, faultCap, faultWorkers)
	waitAcked(t, load, 1500)
	s.stop(t) // SIGTERM: in-flight leads finish, the queue is written; exit status 0
	cancel()
	// MongoDB was up throughout: every acknowledged lead is there, nothing waits in a spool.
	checkEveryAckedLeadStoredOnce(t, mongoSrv.URI, load)
}

func TestFaultSIGKILLMidLoadWithMongoDBDown(t *testing.T) {
	t.Parallel()
	mongoSrv := storetest.StartStoppable(t)
	spoolDir := t.TempDir()
	s := startAgainst(t, mongoSrv.URI, spoolDir, "2s")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	load := runLoad(ctx, s.url, faultCap, faultWorkers)
	waitAcked(t, load, 1000)
	mongoSrv.Stop()
	waitAcked(t, load, afterNow(load, 500)) // these are only in the spool
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Wait()
	cancel()
	left, err := spool.Open(spoolDir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if left.Stats().Records == 0 {
		t.Fatal("the killed server left nothing in its spool: the test did not test the spool")
	}
	mongoSrv.Start(t)
	// The next run finds the spool and replays it.
	s2 := startAgainst(t, mongoSrv.URI, spoolDir, "2s")
	waitSpoolDrained(t, s2)
	checkEveryAckedLeadStoredOnce(t, mongoSrv.URI, load)
}
