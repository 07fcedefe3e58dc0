package controllers_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/leadhook/leadhook/api/v1alpha1"
	"github.com/leadhook/leadhook/webhookserver/verify"
)

var bg = context.Background()

func newIntegration(ns, name string, change ...func(*v1alpha1.LeadIntegrationSpec)) *v1alpha1.LeadIntegration {
	li := &v1alpha1.LeadIntegration{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.LeadIntegrationSpec{Source: v1alpha1.SourceGeneric, Path: "/api/" + ns + "/" + name},
	}
	for _, c := range change {
		c(&li.Spec)
	}
	return li
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(bg, obj); err != nil {
		t.Fatalf("creating %s: %v", obj.GetName(), err)
	}
}

// update re-reads the integration, changes its spec and writes it back, again if the
// controller's status patch got in between.
func update(t *testing.T, ns, name string, change func(*v1alpha1.LeadIntegrationSpec)) {
	t.Helper()
	if err := tryUpdate(ns, name, change); err != nil {
		t.Fatal(err)
	}
}

func tryUpdate(ns, name string, change func(*v1alpha1.LeadIntegrationSpec)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		li := &v1alpha1.LeadIntegration{}
		if err := k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: name}, li); err != nil {
			return err
		}
		change(&li.Spec)
		return k8s.Update(bg, li)
	})
}

// expectReady waits for the Ready condition to have this status and reason, at the
// integration's current generation.
func expectReady(t *testing.T, ns, name string, status metav1.ConditionStatus, reason string) *v1alpha1.LeadIntegration {
	t.Helper()
	return expectReadyMessage(t, ns, name, status, reason, "")
}

// expectReadyMessage is expectReady that also waits for the message to contain msg.
func expectReadyMessage(t *testing.T, ns, name string, status metav1.ConditionStatus, reason, msg string) *v1alpha1.LeadIntegration {
	t.Helper()
	li := &v1alpha1.LeadIntegration{}
	eventually(t, fmt.Sprintf("%s/%s Ready=%s/%s %q", ns, name, status, reason, msg), func() error {
		if err := k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: name}, li); err != nil {
			return err
		}
		c := meta.FindStatusCondition(li.Status.Conditions, v1alpha1.ConditionReady)
		switch {
		case c == nil:
			return fmt.Errorf("no Ready condition")
		case c.Status != status || c.Reason != reason || !strings.Contains(c.Message, msg):
			return fmt.Errorf("Ready=%s/%s (%s)", c.Status, c.Reason, c.Message)
		case li.Status.ObservedGeneration != li.Generation:
			return fmt.Errorf("observedGeneration %d, generation %d", li.Status.ObservedGeneration, li.Generation)
		}
		return nil
	})
	return li
}

func signingSecret(ns, name string, data map[string]string, labelled bool) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
	if labelled {
		s.Labels = map[string]string{v1alpha1.SecretLabel: "true"}
	}
	return s
}

func signed(secret string, generate bool) func(*v1alpha1.LeadIntegrationSpec) {
	return func(s *v1alpha1.LeadIntegrationSpec) {
		s.Signature = &v1alpha1.SignatureSpec{SecretRef: v1alpha1.SecretKeyRef{Name: secret}, Generate: generate}
	}
}

func TestReady(t *testing.T) {
	ns := namespace(t)
	create(t, newIntegration(ns, "website"))
	li := expectReady(t, ns, "website", metav1.ConditionTrue, v1alpha1.ReasonAccepting)
	if meta.FindStatusCondition(li.Status.Conditions, v1alpha1.ConditionStalled) != nil {
		t.Error("a ready integration has a Stalled condition")
	}
	// The API server applied the CRD's defaults.
	if li.Spec.Enabled == nil || !*li.Spec.Enabled || li.Spec.TimeZone != "UTC" || li.Spec.MaxBodyBytes != 65536 {
		t.Errorf("defaults not applied: %+v", li.Spec)
	}
}

func TestDisabledAndBack(t *testing.T) {
	ns := namespace(t)
	create(t, newIntegration(ns, "website", func(s *v1alpha1.LeadIntegrationSpec) { s.Enabled = ptr.To(false) }))
	expectReady(t, ns, "website", metav1.ConditionFalse, v1alpha1.ReasonDisabled)
	update(t, ns, "website", func(s *v1alpha1.LeadIntegrationSpec) { s.Enabled = ptr.To(true) })
	expectReady(t, ns, "website", metav1.ConditionTrue, v1alpha1.ReasonAccepting)
}

// A spec the CRD accepts but Go rejects is stalled: only a spec change can fix it.
func TestInvalidSpecStalls(t *testing.T) {
	ns := namespace(t)
	create(t, newIntegration(ns, "website", func(s *v1alpha1.LeadIntegrationSpec) { s.TimeZone = "Mars/Olympus" }))
	li := expectReady(t, ns, "website", metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec)
	if c := meta.FindStatusCondition(li.Status.Conditions, v1alpha1.ConditionStalled); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Stalled = %+v, want True", c)
	}
	update(t, ns, "website", func(s *v1alpha1.LeadIntegrationSpec) { s.TimeZone = "Asia/Jerusalem" })
	li = expectReady(t, ns, "website", metav1.ConditionTrue, v1alpha1.ReasonAccepting)
	if meta.FindStatusCondition(li.Status.Conditions, v1alpha1.ConditionStalled) != nil {
		t.Error("Stalled stays after the fix")
	}
}

// A referenced Secret that is missing, lacks the key or the label → SecretNotFound; Ready
// once it is right, without touching the integration.
func TestReferencedSecret(t *testing.T) {
	ns := namespace(t)
	create(t, newIntegration(ns, "taplink", signed("taplink-signing", false)))
	li := expectReady(t, ns, "taplink", metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	generation := li.Generation

	secret := signingSecret(ns, "taplink-signing", map[string]string{"other": "x"}, true)
	create(t, secret)
	expectReadyMessage(t, ns, "taplink", metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound, `no key "secret"`)

	secret.StringData = map[string]string{"secret": "phrase"}
	secret.Labels = nil
	if err := k8s.Update(bg, secret); err != nil {
		t.Fatal(err)
	}
	expectReadyMessage(t, ns, "taplink", metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound, v1alpha1.SecretLabel)

	if err := k8s.Get(bg, client.ObjectKeyFromObject(secret), secret); err != nil {
		t.Fatal(err)
	}
	secret.Labels = map[string]string{v1alpha1.SecretLabel: "true"}
	if err := k8s.Update(bg, secret); err != nil {
		t.Fatal(err)
	}
	li = expectReady(t, ns, "taplink", metav1.ConditionTrue, v1alpha1.ReasonAccepting)
	if li.Generation != generation {
		t.Errorf("the integration was changed (generation %d → %d)", generation, li.Generation)
	}

	// The Secret going away takes the integration out of service.
	if err := k8s.Delete(bg, secret); err != nil {
		t.Fatal(err)
	}
	expectReady(t, ns, "taplink", metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
}

// signature.generate creates a strong key in a Secret owned by the integration.
func TestGenerateSecret(t *testing.T) {
	ns := namespace(t)
	create(t, newIntegration(ns, "website", signed("website-signing", true)))
	li := expectReady(t, ns, "website", metav1.ConditionTrue, v1alpha1.ReasonAccepting)

	secret := &corev1.Secret{}
	if err := k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: "website-signing"}, secret); err != nil {
		t.Fatal(err)
	}
	key := secret.Data["secret"]
	if raw, err := hex.DecodeString(string(key)); err != nil || len(raw) != 32 {
		t.Errorf("generated key %d chars, want 64 hex characters (32 random bytes)", len(key))
	}
	if secret.Labels[v1alpha1.SecretLabel] != "true" {
		t.Errorf("generated Secret labels = %v", secret.Labels)
	}
	owner := metav1.GetControllerOf(secret)
	if owner == nil || owner.UID != li.UID || owner.Kind != "LeadIntegration" || owner.BlockOwnerDeletion == nil || !*owner.BlockOwnerDeletion {
		t.Errorf("owner = %+v, want the integration (garbage collection deletes the Secret with it)", owner)
	}

	// Deleted, it is generated again, with a new key.
	if err := k8s.Delete(bg, secret); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Secret generated again", func() error {
		again := &corev1.Secret{}
		if err := k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: "website-signing"}, again); err != nil {
			return err
		}
		if string(again.Data["secret"]) == string(key) {
			return fmt.Errorf("same key as before")
		}
		return nil
	})
	expectReady(t, ns, "website", metav1.ConditionTrue, v1alpha1.ReasonAccepting)

	// An event says the Secret was created.
	eventually(t, "SecretGenerated event", func() error { return expectEvent(ns, "website", "SecretGenerated") })

	// The integration deleted, the garbage collector deletes its Secret.
	if err := k8s.Delete(bg, newIntegration(ns, "website")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "generated Secret garbage-collected", func() error {
		err := k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: "website-signing"}, &corev1.Secret{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (err %v)", err)
	})
}

// For StandardWebhooks the generated key is in the spec's whsec_<base64> form, and a
// created integration gets the default replay window.
func TestGenerateStandardWebhooksSecret(t *testing.T) {
	ns := namespace(t)
	create(t, newIntegration(ns, "hooks", signed("hooks-signing", true), func(s *v1alpha1.LeadIntegrationSpec) {
		s.Signature.Scheme = v1alpha1.SchemeStandardWebhooks
	}))
	li := expectReady(t, ns, "hooks", metav1.ConditionTrue, v1alpha1.ReasonAccepting)
	if w := li.Spec.Signature.ReplayWindow; w == nil || w.Duration != 5*time.Minute {
		t.Errorf("replayWindow = %v, want the default 5m", w)
	}
	secret := &corev1.Secret{}
	if err := k8s.Get(bg, types.NamespacedName{Namespace: ns, Name: "hooks-signing"}, secret); err != nil {
		t.Fatal(err)
	}
	key, err := verify.DecodeStandardWebhooksKey(secret.Data["secret"])
	if err != nil || len(key) != 32 || !strings.HasPrefix(string(secret.Data["secret"]), "whsec_") {
		t.Errorf("generated key is not whsec_ + base64 of 32 bytes (%d bytes decoded, %v)", len(key), err)
	}
}

// An existing Secret is adopted as it is, never overwritten.
func TestGenerateNeverOverwrites(t *testing.T) {
	ns := namespace(t)
	mine := signingSecret(ns, "website-signing", map[string]string{"secret": "my own phrase"}, true)
	create(t, mine)
	create(t, newIntegration(ns, "website", signed("website-signing", true)))
	expectReady(t, ns, "website", metav1.ConditionTrue, v1alpha1.ReasonAccepting)
	got := &corev1.Secret{}
	if err := k8s.Get(bg, client.ObjectKeyFromObject(mine), got); err != nil {
		t.Fatal(err)
	}
	if string(got.Data["secret"]) != "my own phrase" || metav1.GetControllerOf(got) != nil {
		t.Errorf("existing Secret changed: data %q, owner %v", got.Data["secret"], metav1.GetControllerOf(got))
	}
	// Not owned, it outlives the integration.
	if err := k8s.Delete(bg, newIntegration(ns, "website")); err != nil {
		t.Fatal(err)
	}

	// Not even when the key is missing: that is reported instead.
	other := signingSecret(ns, "other-signing", map[string]string{"unrelated": "x"}, true)
	create(t, other)
	create(t, newIntegration(ns, "landing", signed("other-signing", true)))
	expectReady(t, ns, "landing", metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	if err := k8s.Get(bg, client.ObjectKeyFromObject(other), got); err != nil {
		t.Fatal(err)
	}
	if len(got.Data) != 1 {
		t.Errorf("existing Secret changed: %v", got.Data)
	}
	// The garbage collector (running; see TestGenerateSecret) left the unowned Secret alone.
	if err := k8s.Get(bg, client.ObjectKeyFromObject(mine), got); err != nil {
		t.Errorf("the user's own Secret went with the integration: %v", err)
	}
}

// Two enabled integrations on one path: the older keeps it; the other is PathConflict until
// the conflict is resolved.
func TestPathConflict(t *testing.T) {
	ns, ns2 := namespace(t), namespace(t)
	path := "/api/conflict-" + ns
	onPath := func(s *v1alpha1.LeadIntegrationSpec) { s.Path = path }
	create(t, newIntegration(ns, "first", onPath))
	expectReady(t, ns, "first", metav1.ConditionTrue, v1alpha1.ReasonAccepting)
	time.Sleep(1100 * time.Millisecond) // creation timestamps have one-second resolution
	create(t, newIntegration(ns2, "second", onPath))
	expectReadyMessage(t, ns2, "second", metav1.ConditionFalse, v1alpha1.ReasonPathConflict, ns+"/first")
	expectReady(t, ns, "first", metav1.ConditionTrue, v1alpha1.ReasonAccepting)
	eventually(t, "PathConflict event", func() error { return expectEvent(ns2, "second", v1alpha1.ReasonPathConflict) })

	// The owner disabled: the other takes the path.
	update(t, ns, "first", func(s *v1alpha1.LeadIntegrationSpec) { s.Enabled = ptr.To(false) })
	expectReady(t, ns2, "second", metav1.ConditionTrue, v1alpha1.ReasonAccepting)
	// Enabled again, the older wins it back.
	update(t, ns, "first", func(s *v1alpha1.LeadIntegrationSpec) { s.Enabled = ptr.To(true) })
	expectReady(t, ns2, "second", metav1.ConditionFalse, v1alpha1.ReasonPathConflict)
	expectReady(t, ns, "first", metav1.ConditionTrue, v1alpha1.ReasonAccepting)
	// The owner deleted: the other takes the path.
	if err := k8s.Delete(bg, newIntegration(ns, "first")); err != nil {
		t.Fatal(err)
	}
	expectReady(t, ns2, "second", metav1.ConditionTrue, v1alpha1.ReasonAccepting)
	// A default path counts as that path.
	create(t, newIntegration(ns, "generic-a", func(s *v1alpha1.LeadIntegrationSpec) { s.Path = "" }))
	expectReady(t, ns, "generic-a", metav1.ConditionTrue, v1alpha1.ReasonAccepting)
	time.Sleep(1100 * time.Millisecond)
	create(t, newIntegration(ns, "generic-b", func(s *v1alpha1.LeadIntegrationSpec) { s.Path = v1alpha1.DefaultGenericPath }))
	expectReady(t, ns, "generic-b", metav1.ConditionFalse, v1alpha1.ReasonPathConflict)
	for _, n := range []string{"generic-a", "generic-b"} {
		if err := k8s.Delete(bg, newIntegration(ns, n)); err != nil {
			t.Fatal(err)
		}
	}
}

// The API server itself rejects what the CRD's markers and CEL rules forbid.
func TestAPIServerRejectsInvalidSpecs(t *testing.T) {
	ns := namespace(t)
	cases := map[string]func(*v1alpha1.LeadIntegrationSpec){
		"unknown source":      func(s *v1alpha1.LeadIntegrationSpec) { s.Source = "Tilda" },
		"missing source":      func(s *v1alpha1.LeadIntegrationSpec) { s.Source = "" },
		"relative path":       func(s *v1alpha1.LeadIntegrationSpec) { s.Path = "api/lead" },
		"path with query":     func(s *v1alpha1.LeadIntegrationSpec) { s.Path = "/api/lead?x=1" },
		"probe path":          func(s *v1alpha1.LeadIntegrationSpec) { s.Path = "/readyz/" },
		"lower-case region":   func(s *v1alpha1.LeadIntegrationSpec) { s.DefaultRegion = "il" },
		"tiny body limit":     func(s *v1alpha1.LeadIntegrationSpec) { s.MaxBodyBytes = 10 },
		"huge body limit":     func(s *v1alpha1.LeadIntegrationSpec) { s.MaxBodyBytes = 4<<20 + 1 },
		"zero rate":           func(s *v1alpha1.LeadIntegrationSpec) { s.RateLimit = &v1alpha1.RateLimitSpec{} },
		"unknown scheme":      func(s *v1alpha1.LeadIntegrationSpec) { signed("x", false)(s); s.Signature.Scheme = "MD5" },
		"secret without name": func(s *v1alpha1.LeadIntegrationSpec) { signed("", false)(s) },
		"bad header name":     func(s *v1alpha1.LeadIntegrationSpec) { signed("x", false)(s); s.Signature.Header = "X Sig" },
		"zero replay window": func(s *v1alpha1.LeadIntegrationSpec) {
			signed("x", false)(s)
			s.Signature.ReplayWindow = &metav1.Duration{}
		},
		"day-long replay window": func(s *v1alpha1.LeadIntegrationSpec) {
			signed("x", false)(s)
			s.Signature.ReplayWindow = &metav1.Duration{Duration: 25 * time.Hour}
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			li := newIntegration(ns, "invalid", change)
			err := k8s.Create(bg, li)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("created (err %v), want Invalid", err)
			}
		})
	}
	t.Run("source is immutable", func(t *testing.T) {
		create(t, newIntegration(ns, "fixed"))
		err := tryUpdate(ns, "fixed", func(s *v1alpha1.LeadIntegrationSpec) { s.Source = v1alpha1.SourceTaplink })
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "immutable") {
			t.Fatalf("update = %v, want Invalid: source is immutable", err)
		}
	})
}

// expectEvent finds an events.k8s.io Event about the integration with the reason.
func expectEvent(ns, name, reason string) error {
	var list eventsv1.EventList
	if err := k8s.List(bg, &list, client.InNamespace(ns)); err != nil {
		return err
	}
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason {
			return nil
		}
	}
	return fmt.Errorf("no %s event for %s/%s among %d", reason, ns, name, len(list.Items))
}
