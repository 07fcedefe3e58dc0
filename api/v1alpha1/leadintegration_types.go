package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Source names the payload format of a lead sender.
// +kubebuilder:validation:Enum=Generic;Taplink
type Source string

const (
	// SourceGeneric is a website form or any sender using leadhook's own field names.
	SourceGeneric Source = "Generic"
	// SourceTaplink is a Taplink page webhook.
	SourceTaplink Source = "Taplink"
)

// SignatureScheme names how a delivery proves who sent it.
// +kubebuilder:validation:Enum=TaplinkSHA1;HMACSHA256;StandardWebhooks;Token
type SignatureScheme string

const (
	// SchemeTaplinkSHA1 is Taplink's scheme: header taplink-signature carries the lowercase hex
	// HMAC-SHA1 of the raw body, keyed with the page owner's secret phrase.
	SchemeTaplinkSHA1 SignatureScheme = "TaplinkSHA1"
	// SchemeHMACSHA256 is a generic scheme: a header (X-Signature by default) carries
	// "sha256=<hex HMAC-SHA256 of the raw body>".
	SchemeHMACSHA256 SignatureScheme = "HMACSHA256"
	// SchemeStandardWebhooks is the Standard Webhooks scheme (https://www.standardwebhooks.com):
	// headers webhook-id, webhook-timestamp (unix seconds) and webhook-signature, a
	// space-separated list of "v1,<base64 HMAC-SHA256 of id.timestamp.body>". A timestamp
	// outside signature.replayWindow is refused, and webhook-id de-duplicates deliveries.
	SchemeStandardWebhooks SignatureScheme = "StandardWebhooks"
	// SchemeToken is a shared token in a header: Authorization (with or without "Bearer ")
	// by default, or signature.header. It proves only that the sender knows the token: it
	// does not cover the body, so use it only over HTTPS and with senders that can do no better.
	SchemeToken SignatureScheme = "Token"
)

// LeadIntegrationSpec configures one inbound lead source: where it is served, how its
// deliveries are checked and how its leads are normalised.
type LeadIntegrationSpec struct {
	// Source selects the payload decoder. Immutable.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="source is immutable"
	// +required
	Source Source `json:"source"`

	// Enabled switches the integration on and off. A disabled integration's path answers
	// 403 "No active integration".
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// Path is the URL path this integration serves. Defaults to /api/lead for Generic and
	// /api/taplink/lead for Taplink. Unique among enabled integrations; not /healthz or
	// /readyz, the server's probes.
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9._~/-]*$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^/(healthz|readyz)/*$')",message="path /healthz and /readyz are the server's probes"
	// +optional
	Path string `json:"path,omitempty"`

	// DefaultRegion is the ISO 3166-1 alpha-2 region used to read phone numbers written
	// without a country code (for example IL, RU, US).
	// +kubebuilder:validation:Pattern=`^[A-Z]{2}$`
	// +optional
	DefaultRegion string `json:"defaultRegion,omitempty"`

	// TimeZone is the IANA time zone of zone-less created_at values.
	// +kubebuilder:default=UTC
	// +kubebuilder:validation:MaxLength=64
	// +optional
	TimeZone string `json:"timeZone,omitempty"`

	// Signature, when set, makes every delivery carry a valid signature of its raw body.
	// +optional
	Signature *SignatureSpec `json:"signature,omitempty"`

	// AllowedSourceRanges, when not empty, limits deliveries to these CIDRs (IPv4 or IPv6).
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	AllowedSourceRanges []string `json:"allowedSourceRanges,omitempty"`

	// RateLimit bounds the deliveries this integration accepts; above it senders get 429.
	// +optional
	RateLimit *RateLimitSpec `json:"rateLimit,omitempty"`

	// MaxBodyBytes is the largest request body accepted; larger ones get 413. At most 4 MiB, so
	// a lead with its raw body and decoded text stays within one MongoDB document (16 MiB).
	// +kubebuilder:default=65536
	// +kubebuilder:validation:Minimum=1024
	// +kubebuilder:validation:Maximum=4194304
	// +optional
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`

	// DuplicateWindow is how long an identical lead without a delivery id
	// (no Taplink lead_id, no Idempotency-Key or webhook-id header) counts as a duplicate.
	// +kubebuilder:default="10m"
	// +optional
	DuplicateWindow *metav1.Duration `json:"duplicateWindow,omitempty"`
}

// SignatureSpec names the signing scheme and the Secret holding its key.
type SignatureSpec struct {
	// Scheme is the signing scheme: TaplinkSHA1, HMACSHA256, StandardWebhooks or Token.
	// Defaults to TaplinkSHA1 for Taplink, HMACSHA256 otherwise.
	// +optional
	Scheme SignatureScheme `json:"scheme,omitempty"`

	// Header overrides the header that carries the signature or token: for HMACSHA256
	// (default X-Signature) and Token (default Authorization, where a "Bearer " prefix is
	// optional). The other schemes use their own fixed headers and ignore it.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9-]+$`
	// +optional
	Header string `json:"header,omitempty"`

	// ReplayWindow is how far a signed timestamp may lie from the server's clock, in the past
	// or in the future, before the delivery is refused with 401 (StandardWebhooks only; the
	// other schemes carry no timestamp). Between 1s and 24h.
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="replayWindow must be between 1s and 24h"
	// +optional
	ReplayWindow *metav1.Duration `json:"replayWindow,omitempty"`

	// SecretRef names the Secret, in the integration's namespace, and the key holding the
	// signing key. The key's value may hold several keys, one per line (blank lines ignored):
	// a delivery signed with any of them is accepted, so keys can be rotated without losing
	// deliveries. StandardWebhooks keys written as whsec_<base64> are base64-decoded; every
	// other value is used as its raw bytes.
	// +required
	SecretRef SecretKeyRef `json:"secretRef"`

	// Generate asks the controller to create the referenced Secret with a strong random key
	// when it does not exist. An existing Secret is never overwritten.
	// +optional
	Generate bool `json:"generate,omitempty"`
}

// SecretKeyRef points at one key of a Secret in the integration's namespace.
type SecretKeyRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// Key within the Secret's data.
	// +kubebuilder:default=secret
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// RateLimitSpec is a token bucket for the integration, and optionally one per client address.
// +kubebuilder:validation:XValidation:rule="!has(self.perClientBurst) || has(self.perClientRequestsPerSecond)",message="perClientBurst needs perClientRequestsPerSecond"
type RateLimitSpec struct {
	// RequestsPerSecond is the sustained rate.
	// +kubebuilder:validation:Minimum=1
	// +required
	RequestsPerSecond int32 `json:"requestsPerSecond"`

	// Burst is the bucket size. Defaults to twice the rate.
	// +kubebuilder:validation:Minimum=1
	// +optional
	Burst int32 `json:"burst,omitempty"`

	// PerClientRequestsPerSecond, when set, also gives every client address (an IPv6 client
	// by its /64) a bucket of its own at this rate, so that one sender cannot use up the
	// integration's whole budget. The client address is the one --trusted-proxies resolves.
	// +kubebuilder:validation:Minimum=1
	// +optional
	PerClientRequestsPerSecond int32 `json:"perClientRequestsPerSecond,omitempty"`

	// PerClientBurst is the size of each client's bucket. Defaults to twice the per-client rate.
	// +kubebuilder:validation:Minimum=1
	// +optional
	PerClientBurst int32 `json:"perClientBurst,omitempty"`
}

// LeadIntegrationStatus is the observed state of a LeadIntegration.
type LeadIntegrationStatus struct {
	// Conditions: Ready, plus Stalled for errors a retry cannot fix.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation the conditions describe.
	// +kubebuilder:default=-1
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// LeadIntegration switches one lead source on or off and configures how its deliveries
// are checked and stored.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=li;leadint,categories=leadhook
// +kubebuilder:printcolumn:name="Source",type=string,JSONPath=`.spec.source`
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.spec.path`
// +kubebuilder:printcolumn:name="Enabled",type=boolean,JSONPath=`.spec.enabled`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type LeadIntegration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec LeadIntegrationSpec `json:"spec"`
	// +optional
	Status LeadIntegrationStatus `json:"status,omitempty"`
}

// LeadIntegrationList is a list of LeadIntegrations.
// +kubebuilder:object:root=true
type LeadIntegrationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LeadIntegration `json:"items"`
}

func init() {
	SchemeBuilder.Register(&LeadIntegration{}, &LeadIntegrationList{})
}
