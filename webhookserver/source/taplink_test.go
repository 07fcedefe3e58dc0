package source_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/leadhook/leadhook/webhookserver/lead"
	"github.com/leadhook/leadhook/webhookserver/source"
)

func decodeTaplink(t *testing.T, body string) *source.Decoded {
	t.Helper()
	d, err := source.Taplink{}.Decode(source.Request{Body: []byte(body), ContentType: ctJSON})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if d.Probe {
		t.Error("Taplink delivery decoded as a probe")
	}
	return d
}

// Real-shaped deliveries: both envelopes, every field where the contract says it goes.
func TestTaplinkFixtures(t *testing.T) {
	tests := []struct {
		name         string
		file         string
		want         lead.Fields
		wantNotes    []lead.Note
		wantExtras   map[string]string
		wantSourceID string
	}{
		{
			name: "leads.created envelope",
			file: "taplink-leads-created.json",
			want: lead.Fields{
				ClientName: "Иван Тестов", Phone: "79001234567", URL: "https://taplink.cc/demo_clinic",
				CreatedAt: "2025-03-24T12:49:57Z",
			},
			wantNotes: []lead.Note{
				{Type: "3", Idx: "1", Title: "Имя", Value: "Иван Тестов"},
				{Type: "7", Idx: "2", Title: "Телефон", Value: "79001234567"},
				{Type: "1", Idx: "3", Title: "Комментарий", Value: "Хочу на приём"},
			},
			// Blank values (block_id, email, utm_*) are not kept.
			wantExtras: map[string]string{
				"action": "leads.created", "profile_id": "1000001", "username": "demo_clinic",
				"contact_id": "2000002", "lead_id": "3000003", "lead_number": "17", "status_id": "1",
				"page_link": "https://taplink.cc/demo_clinic", "page_title": "Запись на консультацию",
				"ip": "198.51.100.23", "tms_created": "2025-03-24T12:49:57Z", "date_created": "2025-03-24",
			},
			wantSourceID: "taplink:1000001:3000003",
		},
		{
			name: "bare data envelope",
			file: "taplink-seed.json",
			want: lead.Fields{
				ClientName: "Jane Smith", Phone: "+972507654321", Email: "jane@example.com",
				URL: "https://taplink.cc/myclinic", FormID: "taplink_123",
			},
			wantNotes: []lead.Note{
				{Title: "Preferred Date", Value: "2023-08-30"},
				{Title: "Preferred Time", Value: "14:00"},
			},
			wantExtras: map[string]string{
				"block_id": "taplink_123", "page_link": "https://taplink.cc/myclinic", "page_title": "Medical Consultation",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decodeTaplink(t, string(fixture(t, tt.file)))
			if d.Fields != tt.want {
				t.Errorf("Fields = %+v\nwant     %+v", d.Fields, tt.want)
			}
			if !slices.Equal(d.Notes, tt.wantNotes) {
				t.Errorf("Notes = %+v\nwant    %+v", d.Notes, tt.wantNotes)
			}
			if !maps.Equal(d.Extras, tt.wantExtras) {
				t.Errorf("Extras = %q\nwant     %q", d.Extras, tt.wantExtras)
			}
			if d.SourceID != tt.wantSourceID {
				t.Errorf("SourceID = %q, want %q", d.SourceID, tt.wantSourceID)
			}
		})
	}
}

// The phone and name may live only in records: by record type, or by a title in any of the
// clinics' languages.
func TestTaplinkRecordFallbacks(t *testing.T) {
	tests := []struct {
		name      string
		data      string // the data object
		wantPhone string
		wantName  string
	}{
		{"phone by type 7", `{"phone":"","records":[{"type":"1","title":"Comment","value":"555"},{"type":"7","title":"Contact","value":"+79001234567"}]}`, "+79001234567", ""},
		{"phone by Russian title", `{"records":[{"type":"1","title":"Телефон","value":"89001234567"}]}`, "89001234567", ""},
		{"phone by Russian title, upper case", `{"records":[{"type":"1","title":"ТЕЛЕФОН","value":"89001234567"}]}`, "89001234567", ""},
		{"phone by English title with colon", `{"records":[{"type":"1","title":" Phone: ","value":"+1 650 253 0000"}]}`, "+1 650 253 0000", ""},
		{"phone by title with required mark", `{"records":[{"type":"1","title":"Phone*","value":"+1 650 253 0000"}]}`, "+1 650 253 0000", ""},
		{"phone by Hebrew title", `{"records":[{"type":"1","title":"טלפון","value":"050-765-4321"}]}`, "050-765-4321", ""},
		{"blank phone record skipped", `{"records":[{"type":"7","title":"Phone","value":" "},{"type":"1","title":"Mobile","value":"0507654321"}]}`, "0507654321", ""},
		{"data.phone wins over records", `{"phone":"111","records":[{"type":"7","title":"Phone","value":"222"}]}`, "111", ""},
		{"phone-like text in another record ignored", `{"records":[{"type":"1","title":"Comment","value":"+79001234567"}]}`, "", ""},
		{"no phone anywhere", `{"fullname":"X","records":[]}`, "", "X"},
		{"name by type 3", `{"fullname":"","records":[{"type":"3","title":"Who","value":"Иван"}]}`, "", "Иван"},
		{"name by Hebrew title", `{"records":[{"type":"1","title":"שם מלא","value":"דנה"}]}`, "", "דנה"},
		{"name key when fullname blank", `{"fullname":" ","name":"Jane"}`, "", "Jane"},
		{"fullname wins over name", `{"fullname":"Jane Smith","name":"Jane"}`, "", "Jane Smith"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decodeTaplink(t, `{"action":"leads.created","data":`+tt.data+`}`)
			if d.Fields.Phone != tt.wantPhone {
				t.Errorf("Phone = %q, want %q", d.Fields.Phone, tt.wantPhone)
			}
			if d.Fields.ClientName != tt.wantName {
				t.Errorf("ClientName = %q, want %q", d.Fields.ClientName, tt.wantName)
			}
		})
	}
}

// Records are kept as notes, in order, with values as text.
func TestTaplinkRecordValues(t *testing.T) {
	d := decodeTaplink(t, `{"data":{"phone":"1","records":[
		{"type":"5","idx":"1","title":"Services","value":["Cleaning","Whitening"]},
		{"type":"6","idx":2,"title":"Count","value":3},
		{"title":"Agree","value":true},
		{"title":"Empty","value":null},
		{"title":"Mixed list","value":["a",1,false]},
		{"title":"No value"}
	]}}`)
	want := []lead.Note{
		{Type: "5", Idx: "1", Title: "Services", Value: "Cleaning; Whitening"},
		{Type: "6", Idx: "2", Title: "Count", Value: "3"},
		{Title: "Agree", Value: "true"},
		{Title: "Empty"},
		{Title: "Mixed list", Value: "a; 1; false"},
		{Title: "No value"},
	}
	if !slices.Equal(d.Notes, want) {
		t.Errorf("Notes = %+v\nwant    %+v", d.Notes, want)
	}
}

// A payments.created event repeats the lead's ids: it must map to the same source id, so the
// store sees a duplicate rather than a second lead.
func TestTaplinkSourceID(t *testing.T) {
	created := decodeTaplink(t, string(fixture(t, "taplink-leads-created.json")))
	tests := []struct {
		name string
		body string
		want string
	}{
		{"payments.created, same ids", `{"action":"payments.created","data":{"profile_id":"1000001","lead_id":"3000003","phone":"79001234567","amount":"100.00"}}`, created.SourceID},
		{"ids as numbers", `{"action":"payments.created","data":{"profile_id":1000001,"lead_id":3000003}}`, created.SourceID},
		{"ids with spaces", `{"data":{"profile_id":" 1000001 ","lead_id":" 3000003"}}`, created.SourceID},
		{"another lead", `{"data":{"profile_id":"1000001","lead_id":"3000004","phone":"1"}}`, "taplink:1000001:3000004"},
		{"another profile", `{"data":{"profile_id":"1000002","lead_id":"3000003","phone":"1"}}`, "taplink:1000002:3000003"},
		{"no lead id", `{"data":{"profile_id":"1000001","phone":"1"}}`, ""},
		{"blank lead id", `{"data":{"profile_id":"1000001","lead_id":" ","phone":"1"}}`, ""},
	}
	if created.SourceID != "taplink:1000001:3000003" {
		t.Fatalf("leads.created SourceID = %q", created.SourceID)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeTaplink(t, tt.body).SourceID; got != tt.want {
				t.Errorf("SourceID = %q, want %q", got, tt.want)
			}
		})
	}
	pay := decodeTaplink(t, tests[0].body)
	if pay.Extras["action"] != "payments.created" {
		t.Errorf("action extra = %q, want payments.created", pay.Extras["action"])
	}
}

func TestTaplinkRejects(t *testing.T) {
	const malformed = "Malformed payload"
	tests := []struct {
		name   string
		ct     string
		body   string
		status int
		msg    string
	}{
		{"data missing", ctJSON, `{"action":"leads.created"}`, 422, "data"},
		{"data null", ctJSON, `{"action":"leads.created","data":null}`, 422, "data must be an object"},
		{"data a string", ctJSON, `{"data":"phone=1"}`, 422, "data must be an object"},
		{"data a list", ctJSON, `{"data":[{"phone":"1"}]}`, 422, "data must be an object"},
		{"records not a list", ctJSON, `{"data":{"phone":"1","records":"Phone: 1"}}`, 422, "data.records must be a list"},
		{"records an object", ctJSON, `{"data":{"phone":"1","records":{"type":"7"}}}`, 422, "data.records must be a list"},
		{"record not an object", ctJSON, `{"data":{"phone":"1","records":["Phone: 1"]}}`, 422, "data.records"},
		{"record value an object", ctJSON, `{"data":{"phone":"1","records":[{"title":"x","value":{"a":1}}]}}`, 422, "data.records.value"},
		{"record value a nested list", ctJSON, `{"data":{"phone":"1","records":[{"title":"x","value":[["a"]]}]}}`, 422, "data.records.value"},
		{"record title a list", ctJSON, `{"data":{"phone":"1","records":[{"title":["x"],"value":"1"}]}}`, 422, "data.records.title"},
		{"phone a list", ctJSON, `{"data":{"phone":["1","2"]}}`, 422, "data.phone"},
		{"fullname an object", ctJSON, `{"data":{"phone":"1","fullname":{"first":"J"}}}`, 422, "data.fullname"},
		{"action a list", ctJSON, `{"action":["leads.created"],"data":{"phone":"1"}}`, 422, "action"},
		{"form content type", ctForm, `data%5Bphone%5D=1`, 415, ctForm},
		{"form content type, JSON body", ctForm, `{"data":{"phone":"1"}}`, 415, ctForm},
		{"multipart content type", "multipart/form-data; boundary=b", "--b--", 415, "multipart/form-data"},
		{"text/plain", "text/plain", `{"data":{"phone":"1"}}`, 415, "text/plain"},
		{"unknown charset", "application/json; charset=x-klingon", `{"data":{"phone":"1"}}`, 415, "x-klingon"},
		{"bad JSON", ctJSON, `{"data":{"phone":"1"}`, 400, malformed},
		{"empty body", ctJSON, ``, 400, malformed},
		{"top-level list", ctJSON, `[{"data":{"phone":"1"}}]`, 400, malformed},
		{"trailing data", ctJSON, `{"data":{"phone":"1"}}]`, 400, malformed},
		{"invalid UTF-8", ctJSON, "{\"data\":{\"phone\":\"1\",\"fullname\":\"\xd0\"}}", 400, malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := source.Taplink{}.Decode(source.Request{Body: []byte(tt.body), ContentType: tt.ct})
			if err == nil {
				t.Fatalf("Decode succeeded: %+v", d)
			}
			se := decodeErr(t, err, tt.status, tt.msg)
			if tt.status == 400 && se.Message != malformed {
				t.Errorf("message = %q, want exactly %q", se.Message, malformed)
			}
		})
	}
}

// Taplink sends JSON without a charset, sometimes with one, in any case.
func TestTaplinkMediaTypes(t *testing.T) {
	body := fixture(t, "taplink-leads-created.json")
	for _, ct := range []string{"", "application/json", "Application/JSON; Charset=UTF-8", "application/json;charset=utf-8"} {
		d, err := source.Taplink{}.Decode(source.Request{Body: body, ContentType: ct})
		if err != nil {
			t.Errorf("Content-Type %q: %v", ct, err)
			continue
		}
		if d.Fields.Phone != "79001234567" {
			t.Errorf("Content-Type %q: Phone = %q", ct, d.Fields.Phone)
		}
	}
}
