package lead_test

import (
	"strings"
	"testing"
	"time"

	"github.com/leadhook/leadhook/webhookserver/lead"
)

// keyed builds a lead of integration ns/name received at the given time and gives it its key.
func keyed(t *testing.T, ns, name string, f lead.Fields, received time.Time, sourceID, deliveryID string, window time.Duration) *lead.Lead {
	t.Helper()
	l, err := lead.Build(f, lead.Options{Region: "IL"}, received)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	l.Integration = lead.Integration{Namespace: ns, Name: name, Source: "Generic"}
	l.SetDedupKey(sourceID, deliveryID, window)
	return l
}

func TestSetDedupKey(t *testing.T) {
	const window = 10 * time.Minute
	// t0 is the start of a window (10-minute buckets of unix time).
	t0 := time.Date(2023, 8, 23, 10, 0, 0, 0, time.UTC)
	john := lead.Fields{ClientName: "John", Phone: "050-765-4321", Comment: "call me", CreatedAt: "2023-08-23 06:49:51"}
	jane := lead.Fields{ClientName: "Jane", Phone: "050-765-4321", Comment: "call me", CreatedAt: "2023-08-23 06:49:51"}
	// The same phone written differently is the same normalised content.
	johnIntl := john
	johnIntl.Phone = "+972 50-765-4321"

	type delivery struct {
		ns, name     string
		f            lead.Fields
		at           time.Time
		src, deliv   string
		windowLength time.Duration
	}
	a := func(f lead.Fields, at time.Time) delivery { return delivery{"clinic", "web", f, at, "", "", window} }

	tests := []struct {
		name     string
		x, y     delivery
		dup      bool   // x and y share a key: the store refuses the second as a duplicate
		wantKind string // prefix of x's key
	}{
		{name: "same content, same window", x: a(john, t0.Add(time.Second)), y: a(john, t0.Add(window-time.Second)), dup: true, wantKind: lead.KeyContent},
		{name: "same normalised phone", x: a(john, t0), y: a(johnIntl, t0.Add(time.Minute)), dup: true, wantKind: lead.KeyContent},
		{name: "different content, same window", x: a(john, t0), y: a(jane, t0), wantKind: lead.KeyContent},
		{name: "same content, next window", x: a(john, t0.Add(window)), y: a(john, t0.Add(window-time.Second)), dup: true, wantKind: lead.KeyContent},
		{name: "one window apart exactly", x: a(john, t0.Add(window+3*time.Minute)), y: a(john, t0.Add(3*time.Minute)), dup: true, wantKind: lead.KeyContent},
		{name: "two windows apart", x: a(john, t0.Add(2*window)), y: a(john, t0), wantKind: lead.KeyContent},
		{
			name:     "different integrations, same content",
			x:        a(john, t0),
			y:        delivery{"clinic", "other", john, t0, "", "", window},
			wantKind: lead.KeyContent,
		},
		{
			name:     "same source id, different content and time",
			x:        delivery{"clinic", "web", john, t0, "taplink:1:2", "", window},
			y:        delivery{"clinic", "web", jane, t0.Add(48 * time.Hour), "taplink:1:2", "", window},
			dup:      true,
			wantKind: lead.KeySourceID,
		},
		{
			name:     "source id wins over delivery id",
			x:        delivery{"clinic", "web", john, t0, "taplink:1:2", "d-1", window},
			y:        delivery{"clinic", "web", john, t0, "taplink:1:2", "d-2", window},
			dup:      true,
			wantKind: lead.KeySourceID,
		},
		{
			name:     "different source ids",
			x:        delivery{"clinic", "web", john, t0, "taplink:1:2", "", window},
			y:        delivery{"clinic", "web", john, t0, "taplink:1:3", "", window},
			wantKind: lead.KeySourceID,
		},
		{
			name:     "same source id, different integrations",
			x:        delivery{"clinic", "web", john, t0, "taplink:1:2", "", window},
			y:        delivery{"other", "web", john, t0, "taplink:1:2", "", window},
			wantKind: lead.KeySourceID,
		},
		{
			name:     "same delivery id, different content and time",
			x:        delivery{"clinic", "web", john, t0, "", "d-1", window},
			y:        delivery{"clinic", "web", jane, t0.Add(48 * time.Hour), "", "d-1", window},
			dup:      true,
			wantKind: lead.KeyDelivery,
		},
		{
			name:     "same delivery id, different integrations",
			x:        delivery{"clinic", "web", john, t0, "", "d-1", window},
			y:        delivery{"clinic", "other", john, t0, "", "d-1", window},
			wantKind: lead.KeyDelivery,
		},
		{
			name:     "same text as source id and as delivery id",
			x:        delivery{"clinic", "web", john, t0, "", "abc", window},
			y:        delivery{"clinic", "web", john, t0, "abc", "", window},
			wantKind: lead.KeyDelivery,
		},
		{
			name:     "zero window means one minute",
			x:        delivery{"clinic", "web", john, t0.Add(59 * time.Second), "", "", 0},
			y:        delivery{"clinic", "web", john, t0, "", "", time.Minute},
			dup:      true,
			wantKind: lead.KeyContent,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := keyed(t, tt.x.ns, tt.x.name, tt.x.f, tt.x.at, tt.x.src, tt.x.deliv, tt.x.windowLength)
			y := keyed(t, tt.y.ns, tt.y.name, tt.y.f, tt.y.at, tt.y.src, tt.y.deliv, tt.y.windowLength)
			if got := x.DedupKey == y.DedupKey || x.DedupKeyAlt == y.DedupKeyAlt; got != tt.dup {
				t.Errorf("share a key = %v, want %v (%s/%s vs %s/%s)", got, tt.dup, x.DedupKey, x.DedupKeyAlt, y.DedupKey, y.DedupKeyAlt)
			}
			if !strings.HasPrefix(x.DedupKey, tt.wantKind+":") || !strings.HasPrefix(x.DedupKeyAlt, tt.wantKind+":") {
				t.Errorf("keys %q, %q are not of kind %q", x.DedupKey, x.DedupKeyAlt, tt.wantKind)
			}
			// Only content keys have a second grid; the others are exact, and repeated.
			if (tt.wantKind == lead.KeyContent) != (x.DedupKeyAlt != x.DedupKey) {
				t.Errorf("DedupKeyAlt %q for a %s key %q", x.DedupKeyAlt, tt.wantKind, x.DedupKey)
			}
			if x.ID != lead.IDForKey(x.DedupKey) {
				t.Error("the lead's id is not derived from its key")
			}
		})
	}
}

// Two deliveries of the same content less than a window apart always share a key, wherever
// they fall against the grids; deliveries two windows or more apart never do.
func TestContentKeysCatchEveryRepeatWithinTheWindow(t *testing.T) {
	john := lead.Fields{ClientName: "John", Phone: "050-765-4321"}
	for _, window := range []time.Duration{time.Minute, 10 * time.Minute, 7*time.Second + 3*time.Millisecond} {
		base := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
		for step := range 200 {
			first := base.Add(time.Duration(step) * window / 37)
			for _, gap := range []time.Duration{0, time.Millisecond, window / 3, window / 2, window - time.Millisecond} {
				x := keyed(t, "clinic", "web", john, first, "", "", window)
				y := keyed(t, "clinic", "web", john, first.Add(gap), "", "", window)
				if x.DedupKey != y.DedupKey && x.DedupKeyAlt != y.DedupKeyAlt {
					t.Fatalf("window %v: deliveries at %v and %v+%v share no key", window, first, first, gap)
				}
			}
			x := keyed(t, "clinic", "web", john, first, "", "", window)
			y := keyed(t, "clinic", "web", john, first.Add(2*window), "", "", window)
			if x.DedupKey == y.DedupKey || x.DedupKeyAlt == y.DedupKeyAlt {
				t.Fatalf("window %v: deliveries two windows apart share a key", window)
			}
		}
	}
}

// Notes are part of the content: two Taplink leads differing only in an answer are two leads.
func TestSetDedupKeyNotes(t *testing.T) {
	at := time.Date(2023, 8, 23, 10, 0, 0, 0, time.UTC)
	f := lead.Fields{Phone: "050-765-4321"}
	x := keyed(t, "clinic", "tl", f, at, "", "", time.Minute)
	y := keyed(t, "clinic", "tl", f, at, "", "", time.Minute)
	x.Notes = []lead.Note{{Title: "Preferred Date", Value: "2023-08-30"}}
	y.Notes = []lead.Note{{Title: "Preferred Date", Value: "2023-08-31"}}
	x.SetDedupKey("", "", time.Minute)
	y.SetDedupKey("", "", time.Minute)
	if x.DedupKey == y.DedupKey {
		t.Errorf("leads with different notes share key %s", x.DedupKey)
	}
	// Keys are fixed-length, fit for a unique index.
	if n := len(x.DedupKey); n != len(lead.KeyContent)+1+40 {
		t.Errorf("key length %d: %q", n, x.DedupKey)
	}
}
