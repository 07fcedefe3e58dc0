package lead_test

import (
	"strings"
	"testing"
	"time"

	"github.com/leadhook/leadhook/webhookserver/lead"
)

// FuzzParseCreatedAt: any text either fails or gives a UTC time at millisecond precision,
// the same every time.
func FuzzParseCreatedAt(f *testing.F) {
	for _, s := range []string{
		"2023-08-23 06:49:51", "2023-08-23T06:49:51+03:00", "2025-03-24T12:49:57Z",
		"1692773391", "1692773391123", "1692773391.5", "23.08.2023 06:49", "2023-08-23",
		"Wed, 23 Aug 2023 06:49:51 +0300", "", "garbage", "-0", "+1.", ".5", "1e9", "253402300799001",
	} {
		f.Add(s)
	}
	jerusalem := mustLoad(f, "Asia/Jerusalem")
	f.Fuzz(func(t *testing.T, raw string) {
		got, ok := lead.ParseCreatedAt(raw, jerusalem)
		if !ok {
			if !got.IsZero() {
				t.Errorf("ParseCreatedAt(%q) failed but returned %s", raw, got)
			}
			return
		}
		if got.Location() != time.UTC {
			t.Errorf("ParseCreatedAt(%q) = %s, not UTC", raw, got)
		}
		if !got.Equal(got.Truncate(time.Millisecond)) {
			t.Errorf("ParseCreatedAt(%q) = %s, finer than a millisecond", raw, got.Format(time.RFC3339Nano))
		}
		if again, _ := lead.ParseCreatedAt(raw, jerusalem); !again.Equal(got) {
			t.Errorf("ParseCreatedAt(%q) = %s, then %s", raw, got, again)
		}
	})
}

// FuzzNormalizePhone: any text and region give E164 empty or "+digits", keep Raw as sent,
// and call valid only a number that has an E164 form.
func FuzzNormalizePhone(f *testing.F) {
	for _, c := range [][2]string{
		{"+972501234567", "IL"}, {"050-123-4567", "IL"}, {"79001234567", "IL"}, {"8 (900) 123-45-67", "RU"},
		{"abc", "IL"}, {"", "IL"}, {"+", ""}, {"++1", "US"}, {"0501234567", "ZZ"}, {"tel:+1-650-253-0000", "US"},
		{"+1 650 253 0000 ext. 1234", "US"}, {"٠٥٠١٢٣٤٥٦٧", "IL"}, {"+800 1234 5678", "001"},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, raw, region string) {
		p := lead.NormalizePhone(raw, region)
		if p.Raw != raw {
			t.Errorf("Raw = %q, want %q", p.Raw, raw)
		}
		if p.E164 != "" && (!strings.HasPrefix(p.E164, "+") || strings.Trim(p.E164[1:], "0123456789") != "") {
			t.Errorf("NormalizePhone(%q, %q).E164 = %q, not E.164", raw, region, p.E164)
		}
		if p.Valid && p.E164 == "" {
			t.Errorf("NormalizePhone(%q, %q) valid without E164", raw, region)
		}
	})
}
