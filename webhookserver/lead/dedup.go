package lead

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Kinds of de-duplication keys, from strongest to weakest evidence of a repeated delivery.
const (
	KeySourceID = "source"   // the sender's own id of the lead (Taplink profile_id + lead_id)
	KeyDelivery = "delivery" // an Idempotency-Key or webhook-id header
	KeyContent  = "content"  // the normalised lead itself, within a time window
)

// SetDedupKey gives the lead its de-duplication key. sourceID is the sender's own lead id
// (empty when it has none), deliveryID an Idempotency-Key or webhook-id header (empty when
// absent). Without either, identical content within window counts as one lead: the key names
// the window the lead was received in, and PreviousDedupKey the window before it, so a repeat
// is caught however close to a window's edge the two deliveries fall.
func (l *Lead) SetDedupKey(sourceID, deliveryID string, window time.Duration) {
	scope := l.Integration.Namespace + "/" + l.Integration.Name
	switch {
	case sourceID != "":
		l.DedupKey = SourceKey(l.Integration, sourceID)
	case deliveryID != "":
		l.DedupKey = hashKey(KeyDelivery, scope, deliveryID)
	default:
		if window <= 0 {
			window = time.Minute
		}
		bucket := l.ReceivedAt.UnixNano() / int64(window)
		content := l.contentDigest()
		l.DedupKey = hashKey(KeyContent, scope, content, strconv.FormatInt(bucket, 10))
		l.PreviousDedupKey = hashKey(KeyContent, scope, content, strconv.FormatInt(bucket-1, 10))
	}
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
