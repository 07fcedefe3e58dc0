package webhookserver_test

// The fixtures in testdata/ (copied from the senders' real-shaped deliveries) and their
// expected results, as listed in testdata/README.md; plus the Taplink behaviours around them.

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/leadhook/leadhook/api/v1alpha1"
	"github.com/leadhook/leadhook/webhookserver/lead"
)

func TestFixtureGenericSeed(t *testing.T) {
	e := newEnv(t)
	e.post(genericPath, jsonType, fixture(t, "generic-seed.json")).expectStored(t)
	l := e.onlyLead()
	want := time.Date(2023, 8, 23, 6, 49, 51, 0, mustZone(t, "Asia/Jerusalem"))
	if l.Phone.E164 != "+972501234567" || !l.CreatedAt.Equal(want) || l.CreatedRaw != "2023-08-23 06:49:51" {
		t.Errorf("phone %q created_at %v (raw %q), want +972501234567 at %v", l.Phone.E164, l.CreatedAt, l.CreatedRaw, want)
	}
	if l.ClientName != "John Doe" || l.Email != "john@example.com" || l.URL != "https://example.com/form" ||
		l.FormID != "contact_form_123" || l.Comment != "Patient interested in consultation" {
		t.Errorf("lead fields = %+v", l)
	}
}

func TestFixtureGenericForm(t *testing.T) {
	e := newEnv(t)
	e.post(genericPath, formType, fixture(t, "generic-form.txt")).expectStored(t)
	l := e.onlyLead()
	if l.ClientName != "Test Patient" || l.Phone.E164 != "+972501234567" || l.Email != "test@example.com" ||
		l.Comment != "call me after 5" || l.FormID != "footer_form" {
		t.Errorf("lead = %+v", l)
	}
}

func TestFixtureTaplinkSeed(t *testing.T) {
	body := fixture(t, "taplink-seed.json")
	e := newEnv(t)
	e.post(taplinkPath, jsonType, body, "taplink-signature", taplinkSignature(taplinkKey, body)).expectStored(t)
	l := e.onlyLead()
	if l.ClientName != "Jane Smith" || l.Phone.E164 != "+972507654321" || l.Email != "jane@example.com" {
		t.Errorf("lead = %+v", l)
	}
	wantNotes := []lead.Note{{Title: "Preferred Date", Value: "2023-08-30"}, {Title: "Preferred Time", Value: "14:00"}}
	if !equalNotes(l.Notes, wantNotes) {
		t.Errorf("notes = %+v, want %+v", l.Notes, wantNotes)
	}
	if l.Extras["page_title"] != "Medical Consultation" || l.Extras["block_id"] != "taplink_123" {
		t.Errorf("extras = %v", l.Extras)
	}
}

func TestFixtureTaplinkLeadsCreated(t *testing.T) {
	body := fixture(t, "taplink-leads-created.json")
	const header = "f0c516ae690148af65bccf8a168a479acc2edba6" // from the fixture's README, not computed
	e := newEnv(t)
	id := e.post(taplinkPath, jsonType, body, "taplink-signature", header).expectStored(t)
	l := e.onlyLead()
	if l.Phone.E164 != "+79001234567" || !l.Phone.Valid || l.Phone.Raw != "79001234567" || l.ClientName != "Иван Тестов" {
		t.Errorf("lead = %+v", l)
	}
	wantNotes := []lead.Note{
		{Type: "3", Idx: "1", Title: "Имя", Value: "Иван Тестов"},
		{Type: "7", Idx: "2", Title: "Телефон", Value: "79001234567"},
		{Type: "1", Idx: "3", Title: "Комментарий", Value: "Хочу на приём"},
	}
	if !equalNotes(l.Notes, wantNotes) {
		t.Errorf("notes = %+v", l.Notes)
	}
	if l.Extras["action"] != "leads.created" || l.Extras["lead_id"] != "3000003" || l.Extras["page_title"] != "Запись на консультацию" {
		t.Errorf("extras = %v", l.Extras)
	}
	if got := l.CreatedAt.UTC().Format(time.RFC3339); got != "2025-03-24T12:49:57Z" {
		t.Errorf("created_at = %s", got)
	}
	if l.Raw.Body != string(body) {
		t.Error("raw body not kept byte for byte")
	}
	// The same bytes again (Taplink retries) → 200 duplicate, still one lead, hours later too.
	e.clock.Advance(6 * time.Hour)
	e.post(taplinkPath, jsonType, body, "taplink-signature", header).expectDuplicate(t, id)
	e.onlyLead()
}

// Taplink's phone may be only in records: a phone-typed record, or a phone title.
func TestTaplinkPhoneFromRecords(t *testing.T) {
	for name, records := range map[string]string{
		"phone type":    `[{"type":"7","idx":"1","title":"Contact","value":"+972507654321"}]`,
		"russian title": `[{"type":"1","idx":"1","title":"Телефон","value":"+972507654321"}]`,
		"hebrew title":  `[{"type":"1","idx":"1","title":"טלפון","value":"050-765-4321"}]`,
		"english title": `[{"type":"1","idx":"1","title":"Phone:","value":"0507654321"}]`,
	} {
		t.Run(name, func(t *testing.T) {
			body := []byte(`{"action":"leads.created","data":{"profile_id":"1","lead_id":"9","fullname":"Dana","phone":"","records":` + records + `}}`)
			e := newEnv(t)
			e.post(taplinkPath, jsonType, body, "taplink-signature", taplinkSignature(taplinkKey, body)).expectStored(t)
			l := e.onlyLead()
			if l.Phone.E164 != "+972507654321" || len(l.Notes) != 1 {
				t.Errorf("phone %+v notes %+v", l.Phone, l.Notes)
			}
		})
	}
}

// A payments.created event for a known lead_id must not create a second lead.
func TestTaplinkPaymentForKnownLead(t *testing.T) {
	created := fixture(t, "taplink-leads-created.json")
	payment := bytes.Replace(created, []byte(`"action":"leads.created"`), []byte(`"action":"payments.created"`), 1)
	payment = bytes.Replace(payment, []byte(`"offers":[]`), []byte(`"offers":[{"title":"Consultation","price":"100"}]`), 1)
	e := newEnv(t)
	id := e.post(taplinkPath, jsonType, created, "taplink-signature", taplinkSignature(taplinkKey, created)).expectStored(t)
	e.post(taplinkPath, jsonType, payment, "taplink-signature", taplinkSignature(taplinkKey, payment)).expectDuplicate(t, id)
	e.onlyLead()
	// A payment event may carry no phone at all: for a known lead it is still a duplicate.
	bare := []byte(`{"action":"payments.created","data":{"profile_id":"1000001","lead_id":"3000003","phone":"","records":[]}}`)
	e.post(taplinkPath, jsonType, bare, "taplink-signature", taplinkSignature(taplinkKey, bare)).expectDuplicate(t, id)
	e.onlyLead()
	// For an unknown lead it is what it is: a delivery without a phone.
	unknown := bytes.Replace(bare, []byte("3000003"), []byte("3000999"), 1)
	e.post(taplinkPath, jsonType, unknown, "taplink-signature", taplinkSignature(taplinkKey, unknown)).
		expect(t, http.StatusUnprocessableEntity, false, "Phone is required")
	// Another lead of the same profile is a new lead.
	other := bytes.Replace(created, []byte(`"lead_id":"3000003"`), []byte(`"lead_id":"3000004"`), 1)
	e.post(taplinkPath, jsonType, other, "taplink-signature", taplinkSignature(taplinkKey, other)).expectStored(t)
}

// Both envelopes are accepted; values may be numbers; an unsigned Taplink integration works too.
func TestTaplinkEnvelopes(t *testing.T) {
	e := newEnv(t, integration("taplink", v1alpha1.SourceTaplink))
	e.post(taplinkPath, jsonType, []byte(`{"data":{"name":"Dana","phone":"+972507654321","lead_id":1,"profile_id":2}}`)).expectStored(t)
	e.post(taplinkPath, jsonType, []byte(`{"action":"leads.created","data":{"name":"Dana","phone":"+972507654321","lead_id":"1","profile_id":"2"}}`)).
		expect(t, http.StatusOK, true, "")
	if l := e.onlyLead(); l.ClientName != "Dana" || l.Extras["lead_id"] != "1" {
		t.Errorf("lead = %+v", l)
	}
}

func equalNotes(a, b []lead.Note) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
