package source

import (
	"strings"

	"github.com/leadhook/leadhook/webhookserver/lead"
)

// Taplink decodes Taplink page webhooks: {"action":"leads.created","data":{...}} or the bare
// {"data":{...}}. Values arrive as strings; the phone may be only in data.records.
type Taplink struct{}

// Record types and titles that carry a phone or a name when data lacks them.
var (
	taplinkPhoneTypes  = map[string]bool{"7": true, "phone": true, "tel": true}
	taplinkPhoneTitles = map[string]bool{
		"phone": true, "telephone": true, "phone number": true, "tel": true, "mobile": true,
		"телефон": true, "номер телефона": true, "тел": true, "טלפון": true, "מספר טלפון": true, "נייד": true,
	}
	taplinkNameTypes  = map[string]bool{"3": true, "name": true}
	taplinkNameTitles = map[string]bool{"name": true, "full name": true, "имя": true, "фио": true, "שם": true, "שם מלא": true}
)

// taplinkExtras are the data fields kept with the lead for staff.
var taplinkExtras = []string{
	"profile_id", "username", "contact_id", "block_id", "lead_id", "lead_number", "status_id",
	"page_link", "page_title", "ip", "tms_created", "date_created",
	"utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
}

// Decode implements Decoder.
func (Taplink) Decode(r Request) (*Decoded, error) {
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if b.mediaType != mediaJSON {
		return nil, unsupportedMedia("Unsupported media type %s: Taplink sends application/json", quoteShort(b.mediaType))
	}
	env, err := decodeJSONObject(b.text)
	if err != nil {
		return nil, err
	}
	action, err := fieldText(env, "action", "action")
	if err != nil {
		return nil, err
	}
	data, ok := env["data"].(map[string]any)
	if !ok {
		if _, present := env["data"]; present {
			return nil, invalid("Field data must be an object")
		}
		return nil, invalid("Field data is required")
	}
	text := func(key string) (string, error) { return fieldText(data, key, "data."+key) }

	d := &Decoded{}
	var name, phone, email, page, block, created, profile, leadID string
	for _, f := range []struct {
		dst  *string
		keys []string
	}{
		{&name, []string{"fullname", "name"}},
		{&phone, []string{"phone"}},
		{&email, []string{"email"}},
		{&page, []string{"page_link"}},
		{&block, []string{"block_id"}},
		{&created, []string{"tms_created", "date_created"}},
		{&profile, []string{"profile_id"}},
		{&leadID, []string{"lead_id"}},
	} {
		for _, k := range f.keys {
			s, err := text(k)
			if err != nil {
				return nil, err
			}
			if strings.TrimSpace(s) != "" {
				*f.dst = s
				break
			}
		}
	}
	notes, err := taplinkRecords(data["records"])
	if err != nil {
		return nil, err
	}
	d.Notes = notes
	if strings.TrimSpace(phone) == "" {
		phone = recordValue(notes, taplinkPhoneTypes, taplinkPhoneTitles)
	}
	if strings.TrimSpace(name) == "" {
		name = recordValue(notes, taplinkNameTypes, taplinkNameTitles)
	}
	if err := checkPhone(phone); err != nil {
		return nil, err
	}
	d.Fields = lead.Fields{ClientName: name, Phone: phone, Email: email, URL: page, FormID: block, CreatedAt: created}
	d.Extras = map[string]string{}
	if action != "" {
		d.Extras["action"] = action
	}
	for _, k := range taplinkExtras {
		if s, ok := extraText(k, data[k]); ok {
			d.Extras[k] = s
		}
	}
	if strings.TrimSpace(leadID) != "" {
		// A lead id is unique within its profile; payments.created repeats it for the same lead.
		d.SourceID = "taplink:" + strings.TrimSpace(profile) + ":" + strings.TrimSpace(leadID)
	}
	return d, nil
}

// taplinkRecords reads data.records: [{type, idx, title, value}], values as text (a list
// value is joined with "; ").
func taplinkRecords(v any) ([]lead.Note, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, invalid("Field data.records must be a list")
	}
	notes := make([]lead.Note, 0, len(list))
	for _, item := range list {
		rec, ok := item.(map[string]any)
		if !ok {
			return nil, invalid("Field data.records must hold objects")
		}
		var n lead.Note
		for _, f := range []struct {
			dst *string
			key string
		}{{&n.Type, "type"}, {&n.Idx, "idx"}, {&n.Title, "title"}} {
			s, err := fieldText(rec, f.key, "data.records."+f.key)
			if err != nil {
				return nil, err
			}
			*f.dst = s
		}
		value, err := recordText(rec["value"])
		if err != nil {
			return nil, err
		}
		if len(value) > MaxValueBytes {
			return nil, tooLong("data.records.value", MaxValueBytes)
		}
		n.Value = value
		notes = append(notes, n)
	}
	return notes, nil
}

func recordText(v any) (string, error) {
	if s, ok := scalarText(v); ok {
		return s, nil
	}
	list, ok := v.([]any)
	if !ok {
		return "", invalid("Field data.records.value must be a string")
	}
	parts := make([]string, 0, len(list))
	for _, item := range list {
		s, ok := scalarText(item)
		if !ok {
			return "", invalid("Field data.records.value must be a string")
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; "), nil
}

// recordValue is the first non-empty record value of one of the types or titles.
func recordValue(notes []lead.Note, types, titles map[string]bool) string {
	for _, n := range notes {
		title := strings.ToLower(strings.Trim(strings.TrimSpace(n.Title), ":*"))
		if (types[strings.ToLower(n.Type)] || titles[title]) && strings.TrimSpace(n.Value) != "" {
			return n.Value
		}
	}
	return ""
}
