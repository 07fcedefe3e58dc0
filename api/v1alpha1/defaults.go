package v1alpha1

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"time"
)

// Defaults applied by the API server through the CRD, repeated here for local mode and for
// objects read before defaulting.
const (
	DefaultGenericPath     = "/api/lead"
	DefaultTaplinkPath     = "/api/taplink/lead"
	DefaultTimeZone        = "UTC"
	DefaultMaxBodyBytes    = 65536
	DefaultSecretKey       = "secret"
	DefaultSignatureHeader = "X-Signature"
	DefaultDuplicateWindow = 10 * time.Minute
	DefaultTokenHeader     = "Authorization"
	DefaultReplayWindow    = 5 * time.Minute
	// MaxReplayWindow bounds signature.replayWindow: a longer window makes a captured
	// delivery replayable for longer, and a sender's clock is never that far off.
	MaxReplayWindow = 24 * time.Hour
)

// SecretLabel marks the Secrets the webhook server may read: it watches only Secrets
// carrying it with the value "true". Generated Secrets carry it; label your own.
const SecretLabel = "leadhook.io/signing-secret"

// Condition types and reasons written to LeadIntegration status.
const (
	ConditionReady   = "Ready"
	ConditionStalled = "Stalled"

	ReasonAccepting      = "Accepting"
	ReasonDisabled       = "Disabled"
	ReasonInvalidSpec    = "InvalidSpec"
	ReasonSecretNotFound = "SecretNotFound"
	ReasonPathConflict   = "PathConflict"
)

var (
	pathPattern   = regexp.MustCompile(`^/[A-Za-z0-9._~/-]*$`)
	probePath     = regexp.MustCompile(`^/(healthz|readyz)/*$`)
	regionPattern = regexp.MustCompile(`^[A-Z]{2}$`)
	headerPattern = regexp.MustCompile(`^[A-Za-z0-9-]+$`)
)

// IsEnabled reports whether the integration is switched on (the default).
func (s *LeadIntegrationSpec) IsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// EffectivePath is the path served: spec.path, or the source's default.
func (s *LeadIntegrationSpec) EffectivePath() string {
	switch {
	case s.Path != "":
		return s.Path
	case s.Source == SourceTaplink:
		return DefaultTaplinkPath
	default:
		return DefaultGenericPath
	}
}

// EffectiveTimeZone is spec.timeZone or UTC.
func (s *LeadIntegrationSpec) EffectiveTimeZone() string {
	if s.TimeZone == "" {
		return DefaultTimeZone
	}
	return s.TimeZone
}

// EffectiveMaxBodyBytes is spec.maxBodyBytes or 64 KiB.
func (s *LeadIntegrationSpec) EffectiveMaxBodyBytes() int64 {
	if s.MaxBodyBytes <= 0 {
		return DefaultMaxBodyBytes
	}
	return s.MaxBodyBytes
}

// EffectiveDuplicateWindow is spec.duplicateWindow or ten minutes.
func (s *LeadIntegrationSpec) EffectiveDuplicateWindow() time.Duration {
	if s.DuplicateWindow == nil || s.DuplicateWindow.Duration <= 0 {
		return DefaultDuplicateWindow
	}
	return s.DuplicateWindow.Duration
}

// EffectiveScheme is signature.scheme or the source's own scheme.
func (s *SignatureSpec) EffectiveScheme(src Source) SignatureScheme {
	switch {
	case s.Scheme != "":
		return s.Scheme
	case src == SourceTaplink:
		return SchemeTaplinkSHA1
	default:
		return SchemeHMACSHA256
	}
}

// EffectiveReplayWindow is signature.replayWindow or five minutes.
func (s *SignatureSpec) EffectiveReplayWindow() time.Duration {
	if s.ReplayWindow == nil || s.ReplayWindow.Duration <= 0 {
		return DefaultReplayWindow
	}
	return s.ReplayWindow.Duration
}

// EffectiveKey is secretRef.key or "secret".
func (r *SecretKeyRef) EffectiveKey() string {
	if r.Key == "" {
		return DefaultSecretKey
	}
	return r.Key
}

// Validate repeats in Go the rules the CRD enforces (and a few it cannot), so that local mode
// and API servers that skip CEL reject the same specs.
func (s *LeadIntegrationSpec) Validate() error {
	var errs []error
	switch s.Source {
	case SourceGeneric, SourceTaplink:
	case "":
		errs = append(errs, errors.New("spec.source is required"))
	default:
		errs = append(errs, fmt.Errorf("spec.source %q is not one of Generic, Taplink", s.Source))
	}
	if s.Path != "" && (len(s.Path) > 256 || !pathPattern.MatchString(s.Path)) {
		errs = append(errs, fmt.Errorf("spec.path %q must start with / and use only letters, digits and ._~/-", s.Path))
	}
	if probePath.MatchString(s.Path) {
		errs = append(errs, fmt.Errorf("spec.path %q is one of the server's probes (/healthz, /readyz)", s.Path))
	}
	if s.DefaultRegion != "" && !regionPattern.MatchString(s.DefaultRegion) {
		errs = append(errs, fmt.Errorf("spec.defaultRegion %q must be two capital letters", s.DefaultRegion))
	}
	if _, err := time.LoadLocation(s.EffectiveTimeZone()); err != nil {
		errs = append(errs, fmt.Errorf("spec.timeZone %q is not a known time zone", s.TimeZone))
	}
	if s.MaxBodyBytes != 0 && (s.MaxBodyBytes < 1024 || s.MaxBodyBytes > 4<<20) {
		errs = append(errs, fmt.Errorf("spec.maxBodyBytes %d must be between 1024 and 4194304", s.MaxBodyBytes))
	}
	if len(s.AllowedSourceRanges) > 64 {
		errs = append(errs, errors.New("spec.allowedSourceRanges must have at most 64 items"))
	}
	for _, c := range s.AllowedSourceRanges {
		if _, err := netip.ParsePrefix(c); err != nil {
			errs = append(errs, fmt.Errorf("spec.allowedSourceRanges: %q is not a CIDR", c))
		}
	}
	if rl := s.RateLimit; rl != nil && (rl.RequestsPerSecond < 1 || rl.Burst < 0) {
		errs = append(errs, errors.New("spec.rateLimit.requestsPerSecond must be at least 1 and burst not negative"))
	}
	if rl := s.RateLimit; rl != nil && (rl.PerClientRequestsPerSecond < 0 || rl.PerClientBurst < 0) {
		errs = append(errs, errors.New("spec.rateLimit.perClientRequestsPerSecond and perClientBurst must not be negative"))
	}
	if rl := s.RateLimit; rl != nil && rl.PerClientBurst != 0 && rl.PerClientRequestsPerSecond == 0 {
		errs = append(errs, errors.New("spec.rateLimit.perClientBurst needs perClientRequestsPerSecond"))
	}
	if sig := s.Signature; sig != nil {
		switch sig.EffectiveScheme(s.Source) {
		case SchemeTaplinkSHA1, SchemeHMACSHA256, SchemeStandardWebhooks, SchemeToken:
		default:
			errs = append(errs, fmt.Errorf("spec.signature.scheme %q is not one of TaplinkSHA1, HMACSHA256, StandardWebhooks, Token", sig.Scheme))
		}
		if sig.Header != "" && (len(sig.Header) > 128 || !headerPattern.MatchString(sig.Header)) {
			errs = append(errs, fmt.Errorf("spec.signature.header %q must be a header name of letters, digits and -", sig.Header))
		}
		if w := sig.ReplayWindow; w != nil && (w.Duration < time.Second || w.Duration > MaxReplayWindow) {
			errs = append(errs, fmt.Errorf("spec.signature.replayWindow %s must be between 1s and %s", w.Duration, MaxReplayWindow))
		}
		if sig.SecretRef.Name == "" {
			errs = append(errs, errors.New("spec.signature.secretRef.name is required"))
		}
	}
	return errors.Join(errs...)
}
