package lead_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leadhook/leadhook/webhookserver/lead"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("loading time zone %s: %v", name, err)
	}
	return loc
}

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		region string
		want   lead.Phone
	}{
		{"international, valid", "+972507654321", "IL", lead.Phone{Raw: "+972507654321", E164: "+972507654321", Valid: true}},
		{"national with dashes", "050-765-4321", "IL", lead.Phone{Raw: "050-765-4321", E164: "+972507654321", Valid: true}},
		// libphonenumber's metadata treats the 050-123 block as unassigned: the number is
		// read and kept in E.164, but not called valid (the lead is flagged, not rejected).
		{"international, unassigned block", "+972501234567", "IL", lead.Phone{Raw: "+972501234567", E164: "+972501234567"}},
		{"national, unassigned block", "050-123-4567", "IL", lead.Phone{Raw: "050-123-4567", E164: "+972501234567"}},
		// Senders drop the "+": not an Israeli number, but valid as +7...
		{"missing plus retried", "79001234567", "IL", lead.Phone{Raw: "79001234567", E164: "+79001234567", Valid: true}},
		{"russian trunk prefix 8", "8 (900) 123-45-67", "RU", lead.Phone{Raw: "8 (900) 123-45-67", E164: "+79001234567", Valid: true}},
		{"surrounding space trimmed, raw kept", "  +7 900 123-45-67 ", "IL", lead.Phone{Raw: "  +7 900 123-45-67 ", E164: "+79001234567", Valid: true}},
		{"country code without plus in region", "972507654321", "IL", lead.Phone{Raw: "972507654321", E164: "+972507654321", Valid: true}},
		{"too short but parseable", "+9725012345", "IL", lead.Phone{Raw: "+9725012345", E164: "+9725012345"}},
		{"short local digits", "12345", "IL", lead.Phone{Raw: "12345", E164: "+97212345"}},
		{"garbage", "abc", "IL", lead.Phone{Raw: "abc"}},
		{"empty", "", "IL", lead.Phone{}},
		{"national without region", "0507654321", "", lead.Phone{Raw: "0507654321"}},
		{"national with unknown region", "0507654321", "ZZ", lead.Phone{Raw: "0507654321"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lead.NormalizePhone(tt.raw, tt.region); got != tt.want {
				t.Errorf("NormalizePhone(%q, %q) = %+v, want %+v", tt.raw, tt.region, got, tt.want)
			}
		})
	}
}

func TestParseCreatedAt(t *testing.T) {
	jerusalem := mustLoad(t, "Asia/Jerusalem")
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		raw  string
		loc  *time.Location
		want time.Time // zero: not parseable
	}{
		// Zone-less text is read in the integration's zone (IDT, +03:00, in August).
		{"zone-less, summer", "2023-08-23 06:49:51", jerusalem, utc("2023-08-23T03:49:51Z")},
		{"zone-less with T", "2023-08-23T06:49:51", jerusalem, utc("2023-08-23T03:49:51Z")},
		{"zone-less, winter", "2023-01-15 10:00:00", jerusalem, utc("2023-01-15T08:00:00Z")},
		{"zone-less, fraction truncated to ms", "2023-08-23 06:49:51.123999", jerusalem, utc("2023-08-23T03:49:51.123Z")},
		{"zone-less, minutes", "2023-08-23 06:49", jerusalem, utc("2023-08-23T03:49:00Z")},
		{"date only", "2023-08-23", jerusalem, utc("2023-08-22T21:00:00Z")},
		{"surrounding space", "  2023-08-23 06:49:51\n", jerusalem, utc("2023-08-23T03:49:51Z")},
		{"no location means UTC", "2023-08-23 06:49:51", nil, utc("2023-08-23T06:49:51Z")},
		{"dotted day first", "23.08.2023 06:49", jerusalem, utc("2023-08-23T03:49:00Z")},
		{"dotted with seconds", "23.08.2023 06:49:51", jerusalem, utc("2023-08-23T03:49:51Z")},
		{"dotted date only", "23.08.2023", jerusalem, utc("2023-08-22T21:00:00Z")},
		// Zoned text keeps its own offset, whatever the integration's zone.
		{"RFC 3339 with offset", "2023-08-23T06:49:51+03:00", time.UTC, utc("2023-08-23T03:49:51Z")},
		{"RFC 3339 Z", "2025-03-24T12:49:57Z", jerusalem, utc("2025-03-24T12:49:57Z")},
		{"RFC 3339 nano truncated", "2023-08-23T06:49:51.123456789-02:00", jerusalem, utc("2023-08-23T08:49:51.123Z")},
		{"space and numeric offset", "2023-08-23 06:49:51 +0300", jerusalem, utc("2023-08-23T03:49:51Z")},
		{"RFC 1123Z", "Wed, 23 Aug 2023 06:49:51 +0300", jerusalem, utc("2023-08-23T03:49:51Z")},
		// Unix time is absolute.
		{"unix seconds", "1692773391", jerusalem, utc("2023-08-23T06:49:51Z")},
		{"unix seconds with fraction", "1692773391.5", jerusalem, utc("2023-08-23T06:49:51.5Z")},
		{"unix seconds with ms fraction", "1692773391.123", jerusalem, utc("2023-08-23T06:49:51.123Z")},
		{"unix seconds, fraction truncated to ms", "1692773391.1239", jerusalem, utc("2023-08-23T06:49:51.123Z")},
		{"unix milliseconds", "1692773391123", jerusalem, utc("2023-08-23T06:49:51.123Z")},
		{"unix milliseconds, every digit kept", "1692773391001", jerusalem, utc("2023-08-23T06:49:51.001Z")},
		{"unix zero", "0", jerusalem, utc("1970-01-01T00:00:00Z")},
		{"last second of 9999", "253402300799", jerusalem, utc("9999-12-31T23:59:59Z")},
		// Not a time.
		{"empty", "", jerusalem, time.Time{}},
		{"blank", "   ", jerusalem, time.Time{}},
		{"garbage", "yesterday", jerusalem, time.Time{}},
		{"negative unix", "-1", jerusalem, time.Time{}},
		{"exponent", "1e9", jerusalem, time.Time{}},
		{"hex", "0x10", jerusalem, time.Time{}},
		{"NaN", "NaN", jerusalem, time.Time{}},
		{"infinity", "Inf", jerusalem, time.Time{}},
		{"beyond 9999 even as ms", "253402300799001", jerusalem, time.Time{}},
		{"month 13", "2023-13-01 00:00:00", jerusalem, time.Time{}},
		{"US order", "08/23/2023", jerusalem, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := lead.ParseCreatedAt(tt.raw, tt.loc)
			if wantOK := !tt.want.IsZero(); ok != wantOK {
				t.Fatalf("ParseCreatedAt(%q) ok = %v, want %v (got %s)", tt.raw, ok, wantOK, got)
			}
			if !got.Equal(tt.want) {
				t.Errorf("ParseCreatedAt(%q) = %s, want %s", tt.raw, got.Format(time.RFC3339Nano), tt.want.Format(time.RFC3339Nano))
			}
			if ok && got.Location() != time.UTC {
				t.Errorf("ParseCreatedAt(%q) is in %s, want UTC", tt.raw, got.Location())
			}
		})
	}
}

func TestBuild(t *testing.T) {
	jerusalem := mustLoad(t, "Asia/Jerusalem")
	opt := lead.Options{Region: "IL", Location: jerusalem}
	// Received in another zone and with sub-millisecond digits: stored as UTC milliseconds.
	received := time.Date(2023, 8, 23, 10, 0, 0, 123456789, time.FixedZone("X", 2*3600))
	receivedMS := time.Date(2023, 8, 23, 8, 0, 0, 123000000, time.UTC)

	full := lead.Fields{
		ClientName: "  John Doe ",
		Phone:      " 050-765-4321 ",
		Email:      "john@example.com",
		URL:        "https://example.com/form",
		FormID:     "contact_form_123",
		Comment:    "Patient interested in consultation",
		CreatedAt:  "2023-08-23 06:49:51",
	}
	with := func(change func(*lead.Fields)) lead.Fields {
		f := full
		change(&f)
		return f
	}

	tests := []struct {
		name          string
		fields        lead.Fields
		wantPhone     lead.Phone
		wantEmail     string
		wantCreatedAt time.Time
		wantFlags     []string
	}{
		{
			name:          "clean lead",
			fields:        full,
			wantPhone:     lead.Phone{Raw: "050-765-4321", E164: "+972507654321", Valid: true},
			wantEmail:     "john@example.com",
			wantCreatedAt: time.Date(2023, 8, 23, 3, 49, 51, 0, time.UTC),
		},
		{
			name:          "no created_at: received time",
			fields:        with(func(f *lead.Fields) { f.CreatedAt = " " }),
			wantPhone:     lead.Phone{Raw: "050-765-4321", E164: "+972507654321", Valid: true},
			wantEmail:     "john@example.com",
			wantCreatedAt: receivedMS,
		},
		{
			name:          "unparseable created_at: received time, flagged",
			fields:        with(func(f *lead.Fields) { f.CreatedAt = "tomorrow at noon" }),
			wantPhone:     lead.Phone{Raw: "050-765-4321", E164: "+972507654321", Valid: true},
			wantEmail:     "john@example.com",
			wantCreatedAt: receivedMS,
			wantFlags:     []string{lead.FlagCreatedAtUnparsed},
		},
		{
			name:          "invalid email kept and flagged",
			fields:        with(func(f *lead.Fields) { f.Email = "john at example" }),
			wantPhone:     lead.Phone{Raw: "050-765-4321", E164: "+972507654321", Valid: true},
			wantEmail:     "john at example",
			wantCreatedAt: time.Date(2023, 8, 23, 3, 49, 51, 0, time.UTC),
			wantFlags:     []string{lead.FlagEmailInvalid},
		},
		{
			name:          "unusual phone kept and flagged",
			fields:        with(func(f *lead.Fields) { f.Phone = "12345" }),
			wantPhone:     lead.Phone{Raw: "12345", E164: "+97212345"},
			wantEmail:     "john@example.com",
			wantCreatedAt: time.Date(2023, 8, 23, 3, 49, 51, 0, time.UTC),
			wantFlags:     []string{lead.FlagPhoneUnusual},
		},
		{
			name:          "unreadable phone kept and flagged",
			fields:        with(func(f *lead.Fields) { f.Phone = "call me" }),
			wantPhone:     lead.Phone{Raw: "call me"},
			wantEmail:     "john@example.com",
			wantCreatedAt: time.Date(2023, 8, 23, 3, 49, 51, 0, time.UTC),
			wantFlags:     []string{lead.FlagPhoneUnusual},
		},
		{
			name: "everything unusual at once",
			fields: with(func(f *lead.Fields) {
				f.Phone, f.Email, f.CreatedAt = "abc", "@", "31.02.2023"
			}),
			wantPhone:     lead.Phone{Raw: "abc"},
			wantEmail:     "@",
			wantCreatedAt: receivedMS,
			wantFlags:     []string{lead.FlagPhoneUnusual, lead.FlagEmailInvalid, lead.FlagCreatedAtUnparsed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := lead.Build(tt.fields, opt, received)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if l.Phone != tt.wantPhone {
				t.Errorf("Phone = %+v, want %+v", l.Phone, tt.wantPhone)
			}
			if l.Email != tt.wantEmail {
				t.Errorf("Email = %q, want %q", l.Email, tt.wantEmail)
			}
			if !l.CreatedAt.Equal(tt.wantCreatedAt) {
				t.Errorf("CreatedAt = %s, want %s", l.CreatedAt, tt.wantCreatedAt)
			}
			if want := strings.TrimSpace(tt.fields.CreatedAt); l.CreatedRaw != want {
				t.Errorf("CreatedRaw = %q, want %q", l.CreatedRaw, want)
			}
			if !slices.Equal(l.Flags, tt.wantFlags) {
				t.Errorf("Flags = %q, want %q", l.Flags, tt.wantFlags)
			}
			if !l.ReceivedAt.Equal(receivedMS) || l.ReceivedAt.Location() != time.UTC {
				t.Errorf("ReceivedAt = %s, want %s", l.ReceivedAt, receivedMS)
			}
			// Text fields are trimmed and otherwise kept as sent.
			if l.ClientName != "John Doe" || l.URL != full.URL || l.FormID != full.FormID || l.Comment != full.Comment {
				t.Errorf("text fields = %q %q %q %q", l.ClientName, l.URL, l.FormID, l.Comment)
			}
			if l.Status != lead.StatusNew {
				t.Errorf("Status = %q, want %q", l.Status, lead.StatusNew)
			}
			if l.ID.IsZero() {
				t.Error("ID is zero")
			}
		})
	}
}

func TestBuildRequiresPhone(t *testing.T) {
	for _, phone := range []string{"", " ", "\t\r\n", "\u00a0"} {
		l, err := lead.Build(lead.Fields{ClientName: "John", Phone: phone, Email: "john@example.com"}, lead.Options{Region: "IL"}, time.Now())
		if !errors.Is(err, lead.ErrPhoneRequired) {
			t.Errorf("Build(phone %q) error = %v, want ErrPhoneRequired", phone, err)
		}
		if l != nil {
			t.Errorf("Build(phone %q) returned a lead", phone)
		}
	}
	if got := lead.ErrPhoneRequired.Error(); got != "Phone is required" {
		t.Errorf("ErrPhoneRequired = %q, the contract's text is %q", got, "Phone is required")
	}
}
