package lead

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Kinds of de-duplication keys, from strongest to weakest evidence of a repeated delivery.
const (
	KeySourceID = "source"   // the sender's own id of the lead (Taplink profile_id + lead_id)
	KeyDelivery = "delivery" // an Idempotency-Key or webhook-id header
	KeyContent  = "content"  // the normalised lead itself, within a time window
)

// SetDedupKey gives the lead its de-duplication keys, and the id derived from the first
// (IDForKey), so that a repeated delivery has the id of the lead it repeats. sourceID is the
// sender's own lead id (empty when it has none), deliveryID an Idempotency-Key or webhook-id
// header (empty when absent); either makes the key, and DedupKeyAlt is the same key.
//
// Without either, identical content within window counts as one lead. Content is keyed on
// two grids of buckets 2×window long, the second offset by one window: DedupKey names the
// bucket of the first grid the lead fell in, DedupKeyAlt that of the second. Grid edges
// alternate a window apart, so two deliveries less than a window apart share a bucket on at
// least one grid, and the store's unique indexes on both keys refuse the second one, with no
// lookup. (Deliveries up to two windows apart may be caught too.)
func (l *Lead) SetDedupKey(sourceID, deliveryID string, window time.Duration) {
	scope := l.Integration.Namespace + "/" + l.Integration.Name
	switch {
	case sourceID != "":
		l.DedupKey = SourceKey(l.Integration, sourceID)
		l.DedupKeyAlt = l.DedupKey
	case deliveryID != "":
		l.DedupKey = hashKey(KeyDelivery, scope, deliveryID)
		l.DedupKeyAlt = l.DedupKey
	default:
		if window <= 0 {
			window = time.Minute
		}
		span := 2 * int64(window)
		t := l.ReceivedAt.UnixNano()
		content := l.contentDigest()
		l.DedupKey = hashKey(KeyContent, scope, content, "a", strconv.FormatInt(floorDiv(t, span), 10))
		l.DedupKeyAlt = hashKey(KeyContent, scope, content, "b", strconv.FormatInt(floorDiv(t+int64(window), span), 10))
	}
	l.ID = IDForKey(l.DedupKey)
}

// floorDiv is a/b rounded down (times before 1970 included).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// IDForKey is the id of the lead stored under a de-duplication key: 12 bytes of a hash of the
// key. The store's primary key thereby enforces de-duplication, and a duplicate's earlier lead
// is known without a lookup (any store, FerretDB included, finds a document by _id quickly).
// Such an id carries no creation time: received_at does.
func IDForKey(key string) bson.ObjectID {
	sum := sha256.Sum256([]byte("leadhook-lead-id:" + key))
	var id bson.ObjectID
	copy(id[:], sum[:len(id)])
	return id
}

// SourceKey is the de-duplication key of a lead the sender identifies by sourceID.
func SourceKey(in Integration, sourceID string) string {
	return hashKey(KeySourceID, in.Namespace+"/"+in.Name, sourceID)
}

// contentDigest covers what a person typed, normalised, and the sender's creation time.
func (l *Lead) contentDigest() string {
	phone := l.Phone.E164
	if phone == "" {
		phone = l.Phone.Raw
	}
	h := sha256.New()
	for _, part := range []string{phone, l.ClientName, l.Email, l.URL, l.FormID, l.Comment, l.CreatedRaw} {
		h.Write([]byte(strconv.Itoa(len(part))))
		h.Write([]byte{':'})
		h.Write([]byte(part))
	}
	for _, n := range l.Notes {
		h.Write([]byte(n.Title + "\x00" + n.Value + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// hashKey joins a kind and its parts into a fixed-length key fit for a unique index.
func hashKey(kind string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return kind + ":" + hex.EncodeToString(h.Sum(nil))[:40]
}
