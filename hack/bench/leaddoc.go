package main

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"strings"
	"time"

	"github.com/leadhook/leadhook/webhookserver/lead"
)

// leadBuilder turns a delivery into a lead document of the shape leadhook stores, with the
// least work that gets there: no signature check, no limits, no charsets, no de-duplication
// lookup. The naive server (2) and the batched writer (3) use it, so their documents are the
// same as each other's and shaped like leadhook's (4).
type leadBuilder struct {
	opt lead.Options
}

func newLeadBuilder() (*leadBuilder, error) {
	loc, err := time.LoadLocation(benchZone)
	if err != nil {
		return nil, fmt.Errorf("loading time zone %s: %w", benchZone, err)
	}
	return &leadBuilder{opt: lead.Options{Region: benchRegion, Location: loc}}, nil
}

// build decodes body (sent to path with contentType and idempotencyKey) and builds its lead,
// de-duplication key included, received now.
func (b *leadBuilder) build(path, contentType, idempotencyKey string, body []byte, now time.Time) (*lead.Lead, error) {
	var (
		d   decoded
		err error
	)
	if path == pathTaplink {
		d, err = decodeTaplink(body)
		d.in = lead.Integration{Namespace: benchNS, Name: nameTaplink, Source: "Taplink"}
	} else {
		d, err = decodeGeneric(contentType, body)
		d.in = lead.Integration{Namespace: benchNS, Name: nameGeneric, Source: "Generic"}
	}
	if err != nil {
		return nil, err
	}
	l, err := lead.Build(d.fields, b.opt, now)
	if err != nil {
		return nil, fmt.Errorf("building lead: %w", err)
	}
	l.Integration, l.Notes, l.Extras = d.in, d.notes, d.extras
	l.Raw = lead.NewRaw(contentType, body)
	l.SetDedupKey(d.sourceID, idempotencyKey, 10*time.Minute)
	return l, nil
}

// decoded is what the minimal decoders read from a body.
type decoded struct {
	in       lead.Integration
	fields   lead.Fields
	notes    []lead.Note
	extras   map[string]string
	sourceID string
}

// decodeGeneric reads a JSON object or a urlencoded form with leadhook's own field names.
func decodeGeneric(contentType string, body []byte) (decoded, error) {
	text := map[string]string{}
	if mt, _, _ := mime.ParseMediaType(contentType); mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return decoded{}, fmt.Errorf("parsing form: %w", err)
		}
		for k := range form {
			text[k] = form.Get(k)
		}
	} else {
		var obj map[string]any
		if err := json.Unmarshal(body, &obj); err != nil {
			return decoded{}, fmt.Errorf("parsing JSON: %w", err)
		}
		for k, v := range obj {
			if s, ok := v.(string); ok {
				text[k] = s
			}
		}
	}
	return decoded{fields: lead.Fields{ClientName: text["client_name"], Phone: text["phone"], Email: text["email"],
		URL: text["url"], FormID: text["form_id"], Comment: text["comment"], CreatedAt: text["created_at"]}}, nil
}

// decodeTaplink reads {"action":…,"data":{…}}: the lead's fields, its records as notes and
// the other non-empty text fields as extras.
func decodeTaplink(body []byte) (decoded, error) {
	var env struct {
		Action string         `json:"action"`
		Data   map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return decoded{}, fmt.Errorf("parsing Taplink JSON: %w", err)
	}
	data := env.Data
	text := func(k string) string { s, _ := data[k].(string); return s }
	d := decoded{extras: map[string]string{}}
	d.fields = lead.Fields{ClientName: text("fullname"), Phone: text("phone"), Email: text("email"),
		URL: text("page_link"), FormID: text("block_id"), CreatedAt: text("tms_created")}
	records, _ := data["records"].([]any)
	for _, r := range records {
		rec, _ := r.(map[string]any)
		s := func(k string) string { v, _ := rec[k].(string); return v }
		d.notes = append(d.notes, lead.Note{Type: s("type"), Idx: s("idx"), Title: s("title"), Value: s("value")})
	}
	if env.Action != "" {
		d.extras["action"] = env.Action
	}
	for k, v := range data {
		if s, ok := v.(string); ok && strings.TrimSpace(s) != "" && !taplinkLeadField[k] {
			d.extras[k] = s
		}
	}
	if id := text("lead_id"); id != "" {
		d.sourceID = "taplink:" + text("profile_id") + ":" + id
	}
	return d, nil
}

// taplinkLeadField are the Taplink data fields that become the lead's own fields, not extras.
var taplinkLeadField = map[string]bool{"fullname": true, "name": true, "phone": true, "email": true}
