package main

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/leadhook/leadhook/webhookserver/verify"
)

// The integrations every subject is addressed as: leadhook serves them from the directory the
// harness writes (integrationsYAML), and the naive server and the batched writer stamp the
// same names on their leads.
const (
	pathGeneric   = "/api/lead"
	pathTaplink   = "/api/taplink/lead"
	benchNS       = "bench"
	nameGeneric   = "website"
	nameTaplink   = "taplink"
	taplinkSecret = "bench-secret"
	benchRegion   = "IL"
	benchZone     = "Asia/Jerusalem"
)

// integrationsYAML is leadhook's integrations directory for the run: a Generic integration on
// /api/lead and a Taplink one on /api/taplink/lead signed with taplinkSecret; no rate limit.
const integrationsYAML = `apiVersion: leadhook.io/v1alpha1
kind: LeadIntegration
metadata: {name: ` + nameGeneric + `, namespace: ` + benchNS + `}
spec:
  source: Generic
  path: ` + pathGeneric + `
  defaultRegion: ` + benchRegion + `
  timeZone: ` + benchZone + `
---
apiVersion: leadhook.io/v1alpha1
kind: LeadIntegration
metadata: {name: ` + nameTaplink + `, namespace: ` + benchNS + `}
spec:
  source: Taplink
  path: ` + pathTaplink + `
  defaultRegion: ` + benchRegion + `
  timeZone: ` + benchZone + `
  signature:
    scheme: TaplinkSHA1
    secretRef: {name: taplink-signing, key: secret}
---
apiVersion: v1
kind: Secret
metadata:
  name: taplink-signing
  namespace: ` + benchNS + `
  labels: {leadhook.io/signing-secret: "true"}
stringData:
  secret: ` + taplinkSecret + `
`

// kind is one of the three payloads of the mix.
type kind int

const (
	kindJSON    kind = iota // generic JSON on /api/lead
	kindForm                // generic urlencoded form on /api/lead
	kindTaplink             // a signed Taplink leads.created delivery on /api/taplink/lead
	numKinds
)

func (k kind) String() string {
	return [...]string{"generic JSON", "urlencoded form", "Taplink JSON"}[k]
}

// request is one delivery to send.
type request struct {
	kind   kind
	path   string
	header http.Header
	body   []byte
}

// Body templates, shaped like the fixtures in webhookserver/testdata. Only numbers are
// substituted into them, so no escaping is needed. Phones are valid numbers (IL mobile;
// Russian mobile for Taplink, as in the fixture), different for every request.
const (
	jsonTemplate = `{"client_name":"Bench Patient %[1]d","phone":"+97250%07[2]d","email":"patient%[1]d@example.com",` +
		`"url":"https://clinic.example/contact","form_id":"contact_form_123","comment":"Patient interested in consultation, request %[1]d",` +
		`"created_at":"2025-03-24 12:49:57"}`
	formTemplate    = `client_name=Bench+Patient+%[1]d&phone=050-%03[2]d-%04[3]d&email=patient%[1]d%%40example.com&comment=call+me+after+5&form_id=footer_form`
	taplinkTemplate = `{"action":"leads.created","data":{"profile_id":"%[1]d","username":"bench_clinic","status_id":"1",` +
		`"contact_id":"%[2]d","block_id":"","lead_id":"%[2]d","lead_number":"%[2]d","page_link":"https://taplink.cc/bench_clinic",` +
		`"page_title":"Запись на консультацию","ip":"198.51.100.23","tms_created":"2025-03-24T12:49:57Z","date_created":"2025-03-24",` +
		`"utm_source":"","utm_medium":"","utm_campaign":"","utm_content":"","utm_term":"","fullname":"Иван Тестов %[2]d","email":"",` +
		`"phone":"7900%07[3]d","records":[{"type":"3","idx":"1","title":"Имя","value":"Иван Тестов %[2]d"},` +
		`{"type":"7","idx":"2","title":"Телефон","value":"7900%07[3]d"},{"type":"1","idx":"3","title":"Комментарий","value":"Хочу на приём"}],` +
		`"records_extended":[],"offers":[]}}`
)

// generator makes the benchmark's deliveries in turn: one third each of generic JSON,
// urlencoded form and signed Taplink JSON. Every delivery is unique (its phone, its
// Idempotency-Key, its Taplink lead_id), so de-duplication never spares a write. Safe for
// concurrent use.
type generator struct {
	seq   atomic.Uint64
	nonce uint32 // tells runs apart: it is in every Idempotency-Key and Taplink profile_id
}

func newGenerator() *generator {
	return &generator{nonce: uint32(time.Now().UnixNano()>>10) | 1}
}

// next is the next delivery of the mix.
func (g *generator) next() request {
	return g.make(g.seq.Add(1) - 1)
}

// make is the n-th delivery of the mix.
func (g *generator) make(n uint64) request {
	local := n % 10_000_000 // the phone's subscriber digits
	h := http.Header{"User-Agent": {"leadhook-bench"}}
	r := request{kind: kind(n % uint64(numKinds)), header: h}
	switch r.kind {
	case kindJSON:
		r.path, r.body = pathGeneric, fmt.Appendf(nil, jsonTemplate, n, local)
		h.Set("Content-Type", "application/json")
		h.Set("Idempotency-Key", fmt.Sprintf("bench-%x-%d", g.nonce, n))
	case kindForm:
		r.path, r.body = pathGeneric, fmt.Appendf(nil, formTemplate, n, local/10_000, local%10_000)
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		h.Set("Idempotency-Key", fmt.Sprintf("bench-%x-%d", g.nonce, n))
	case kindTaplink: // Taplink sends no delivery id: its (profile_id, lead_id) is the key
		r.path, r.body = pathTaplink, fmt.Appendf(nil, taplinkTemplate, g.nonce, n, local)
		h.Set("Content-Type", "application/json")
		h.Set(verify.HeaderTaplink, verify.SignTaplinkSHA1([]byte(taplinkSecret), r.body))
	}
	return r
}
