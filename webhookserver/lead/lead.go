// Package lead holds the lead as stored for clinic staff, and the rules that normalise it:
// phone numbers to E.164, creation times to UTC, and the key that makes a delivery count once.
// It knows nothing of HTTP, Kubernetes or MongoDB.
package lead

import (
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// StatusNew is the status of a lead nobody has worked yet.
const StatusNew = "new"

// Flags set on a lead whose data was kept as sent but looks unusual.
const (
	FlagPhoneUnusual      = "phone_unusual"
	FlagCreatedAtUnparsed = "created_at_unparsed"
	FlagEmailInvalid      = "email_invalid"
)

// Lead is one patient who asked to be called back.
type Lead struct {
	ID          bson.ObjectID     `bson:"_id"`
	Integration Integration       `bson:"integration"`
	ClientName  string            `bson:"client_name,omitempty"`
	Phone       Phone             `bson:"phone"`
	Email       string            `bson:"email,omitempty"`
	URL         string            `bson:"url,omitempty"`
	FormID      string            `bson:"form_id,omitempty"`
	Comment     string            `bson:"comment,omitempty"`
	CreatedAt   time.Time         `bson:"created_at"`
	CreatedRaw  string            `bson:"created_at_raw,omitempty"`
	ReceivedAt  time.Time         `bson:"received_at"`
	Notes       []Note            `bson:"notes,omitempty"`
	Extras      map[string]string `bson:"extras,omitempty"`
	Flags       []string          `bson:"flags,omitempty"`
	Raw         Raw               `bson:"raw"`
	Request     Request           `bson:"request"`
	DedupKey    string            `bson:"dedup_key"`
	// DedupKeyAlt is a second de-duplication key, unique like the first: for content keys the
	// same content on a time grid offset by half its buckets (see SetDedupKey); otherwise
	// DedupKey again.
	DedupKeyAlt string `bson:"dedup_key_alt"`
	Status      string `bson:"status"`
}

// Integration identifies the LeadIntegration that accepted a lead.
type Integration struct {
	Namespace string `bson:"namespace"`
	Name      string `bson:"name"`
	Source    string `bson:"source"`
}

// Phone is a phone number as sent and, where it could be read, in E.164.
type Phone struct {
	Raw   string `bson:"raw"`
	E164  string `bson:"e164,omitempty"`
	Valid bool   `bson:"valid"`
}

// Note is one structured answer sent with the lead (a Taplink record).
type Note struct {
	Type  string `bson:"type,omitempty"`
	Idx   string `bson:"idx,omitempty"`
	Title string `bson:"title,omitempty"`
	Value string `bson:"value"`
}

// Raw is the payload exactly as received: as text when it is UTF-8, else as binary.
type Raw struct {
	ContentType string `bson:"content_type,omitempty"`
	Body        string `bson:"body,omitempty"`
	BodyBinary  []byte `bson:"body_binary,omitempty"`
}

// NewRaw keeps body exactly as received.
func NewRaw(contentType string, body []byte) Raw {
	if utf8.Valid(body) {
		return Raw{ContentType: contentType, Body: string(body)}
	}
	return Raw{ContentType: contentType, BodyBinary: append([]byte(nil), body...)}
}

// Request is what is known of the HTTP request that carried the lead.
type Request struct {
	RemoteIP  string `bson:"remote_ip,omitempty"`
	UserAgent string `bson:"user_agent,omitempty"`
	RequestID string `bson:"request_id,omitempty"`
	// PeerIP is the socket peer (a trusted proxy) when it is not RemoteIP, the client.
	PeerIP string `bson:"peer_ip,omitempty"`
}

// Fields are a lead's text fields as a source decoder found them, before normalisation.
type Fields struct {
	ClientName string
	Phone      string
	Email      string
	URL        string
	FormID     string
	Comment    string
	CreatedAt  string
}
