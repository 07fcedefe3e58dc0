package lead

import (
	"errors"
	"math"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// ErrPhoneRequired is returned when no phone was sent anywhere the source can carry one.
var ErrPhoneRequired = errors.New("Phone is required") //nolint:staticcheck // the contract's exact text

// Options are the integration settings that shape normalisation.
type Options struct {
	Region   string         // default region for phones without a country code
	Location *time.Location // zone of zone-less created_at values
}

// Build turns decoded fields into a normalised lead received at the given time. It rejects
// only a lead without a phone; anything unusual is kept as sent and flagged.
func Build(f Fields, opt Options, received time.Time) (*Lead, error) {
	f = trimFields(f)
	if f.Phone == "" {
		return nil, ErrPhoneRequired
	}
	l := &Lead{
		ID:         bson.NewObjectID(),
		ClientName: f.ClientName,
		Phone:      NormalizePhone(f.Phone, opt.Region),
		Email:      f.Email,
		URL:        f.URL,
		FormID:     f.FormID,
		Comment:    f.Comment,
		CreatedRaw: f.CreatedAt,
		ReceivedAt: received.UTC().Truncate(time.Millisecond),
		Status:     StatusNew,
	}
	if !l.Phone.Valid {
		l.Flags = append(l.Flags, FlagPhoneUnusual)
	}
	if f.Email != "" {
		if _, err := mail.ParseAddress(f.Email); err != nil {
			l.Flags = append(l.Flags, FlagEmailInvalid)
		}
	}
	l.CreatedAt = l.ReceivedAt
	if f.CreatedAt != "" {
		if t, ok := ParseCreatedAt(f.CreatedAt, opt.Location); ok {
			l.CreatedAt = t
		} else {
			l.Flags = append(l.Flags, FlagCreatedAtUnparsed)
		}
	}
	return l, nil
}

func trimFields(f Fields) Fields {
	for _, p := range []*string{&f.ClientName, &f.Phone, &f.Email, &f.URL, &f.FormID, &f.Comment, &f.CreatedAt} {
		*p = strings.TrimSpace(*p)
	}
	return f
}

// NormalizePhone reads raw as a phone number of the given default region. A number that is
// not valid there but is valid with a leading "+" (senders often drop it) is read that way.
// E164 is set whenever the number could be parsed; Valid only when it is a real number.
func NormalizePhone(raw, region string) Phone {
	p := Phone{Raw: raw}
	s := strings.TrimSpace(raw)
	num, err := phonenumbers.Parse(s, region)
	valid := err == nil && phonenumbers.IsValidNumber(num)
	if !valid && !strings.HasPrefix(s, "+") {
		if alt, altErr := phonenumbers.Parse("+"+s, ""); altErr == nil && phonenumbers.IsValidNumber(alt) {
			num, err, valid = alt, nil, true
		}
	}
	if err == nil {
		p.E164 = phonenumbers.Format(num, phonenumbers.E164)
		p.Valid = valid
	}
	return p
}

// Zone-less layouts of created_at, read in the integration's time zone.
var localLayouts = []string{
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
	"02.01.2006 15:04:05",
	"02.01.2006 15:04",
	"02.01.2006",
}

// Layouts of created_at that carry their own zone.
var zonedLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05 -0700 MST",
	time.RFC1123Z,
	time.RFC1123,
}

// ParseCreatedAt reads a sender's creation time: zone-less text in loc, RFC 3339 and similar
// zoned text, or unix seconds (milliseconds when the number is that large). It returns UTC
// at millisecond precision, as MongoDB stores it.
func ParseCreatedAt(raw string, loc *time.Location) (time.Time, bool) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return time.Time{}, false
	}
	if loc == nil {
		loc = time.UTC
	}
	if t, ok := parseUnix(s); ok {
		return t, true
	}
	for _, layout := range zonedLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(time.Millisecond), true
		}
	}
	for _, layout := range localLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC().Truncate(time.Millisecond), true
		}
	}
	return time.Time{}, false
}

// parseUnix reads unix seconds, with an optional fraction, or unix milliseconds (13 digits and
// more), within years 1970..9999.
func parseUnix(s string) (time.Time, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || strings.ContainsAny(s, "eEnNiIxXpP_") {
		return time.Time{}, false
	}
	const maxSeconds = 253402300799 // 9999-12-31T23:59:59Z
	if f > maxSeconds*1000 {
		return time.Time{}, false
	}
	// Take the time from the digits: float arithmetic loses milliseconds (1692773391.123 → .122).
	whole, frac, _ := strings.Cut(strings.TrimLeft(s, "+-"), ".")
	n, err := strconv.ParseInt("0"+whole, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	if f > maxSeconds {
		return time.UnixMilli(n).UTC(), true // milliseconds; a fraction of one is dropped
	}
	ms, _ := strconv.Atoi((frac + "000")[:3])
	return time.Unix(n, int64(ms)*int64(time.Millisecond)).UTC(), true
}
