// Package controllers holds the LeadIntegration reconciler: it validates integrations,
// creates their signing Secrets when asked, settles path conflicts and reports all of it in
// status conditions and Events. It never touches MongoDB and never serves HTTP.
package controllers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/leadhook/leadhook/api/v1alpha1"
	"github.com/leadhook/leadhook/webhookserver/verify"
)

// Field indexes on LeadIntegration.
const (
	// PathIndex is the path an integration serves (spec.path or its source's default).
	PathIndex = "leadhook.io/path"
	// SecretIndex is the name of the Secret an integration's signature refers to.
	SecretIndex = "leadhook.io/secret"
)

// generatedKeyBytes is the entropy of a generated signing key (hex-encoded in the Secret).
const generatedKeyBytes = 32

// LeadIntegrationReconciler reconciles LeadIntegration objects.
type LeadIntegrationReconciler struct {
	client.Client
	// APIReader reads Secrets straight from the API server (they are not cached).
	APIReader client.Reader
	Recorder  recorder.EventRecorder
}

// +kubebuilder:rbac:groups=leadhook.io,resources=leadintegrations,verbs=get;list;watch
// +kubebuilder:rbac:groups=leadhook.io,resources=leadintegrations/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=leadhook.io,resources=leadintegrations/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one integration's status (and its generated Secret) up to date.
func (r *LeadIntegrationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	obj := &v1alpha1.LeadIntegration{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := obj.DeepCopy()
	defer func() { // the only place status is written
		if retErr == nil { // a transient error leaves observedGeneration behind: still in progress
			obj.Status.ObservedGeneration = obj.Generation
		}
		if !equality.Semantic.DeepEqual(before.Status, obj.Status) {
			if err := r.Status().Patch(ctx, obj, client.MergeFrom(before)); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("patching status of %s: %w", req.NamespacedName, err))
				return
			}
		}
		r.eventOnTransition(before, obj)
	}()
	return ctrl.Result{}, r.reconcile(ctx, obj)
}

// reconcile sets the conditions; it returns an error only for what a retry may fix.
func (r *LeadIntegrationReconciler) reconcile(ctx context.Context, obj *v1alpha1.LeadIntegration) error {
	spec := &obj.Spec
	if !spec.IsEnabled() {
		markNotReady(obj, v1alpha1.ReasonDisabled, "Integration is disabled; its path answers 403")
		return nil
	}
	if err := spec.Validate(); err != nil {
		markStalled(obj, v1alpha1.ReasonInvalidSpec, err.Error())
		return nil
	}
	owner, err := r.pathOwner(ctx, spec.EffectivePath())
	if err != nil {
		return err
	}
	if owner != nil && (owner.Namespace != obj.Namespace || owner.Name != obj.Name) {
		markNotReady(obj, v1alpha1.ReasonPathConflict,
			fmt.Sprintf("Path %s is served by the older integration %s/%s", spec.EffectivePath(), owner.Namespace, owner.Name))
		return nil
	}
	if spec.Signature != nil {
		ready, msg, err := r.ensureSecret(ctx, obj)
		if err != nil {
			markNotReady(obj, v1alpha1.ReasonSecretNotFound, "Could not read the signing Secret: "+err.Error())
			return err
		}
		if !ready {
			markNotReady(obj, v1alpha1.ReasonSecretNotFound, msg)
			return nil
		}
	}
	markReady(obj, fmt.Sprintf("Accepting leads on %s", spec.EffectivePath()))
	return nil
}

// pathOwner is the integration that serves path: the oldest enabled, valid one claiming it.
func (r *LeadIntegrationReconciler) pathOwner(ctx context.Context, path string) (*v1alpha1.LeadIntegration, error) {
	var list v1alpha1.LeadIntegrationList
	if err := r.List(ctx, &list, client.MatchingFields{PathIndex: path}); err != nil {
		return nil, fmt.Errorf("listing integrations on %s: %w", path, err)
	}
	var claimants []*v1alpha1.LeadIntegration
	for i := range list.Items {
		li := &list.Items[i]
		if li.DeletionTimestamp.IsZero() && li.Spec.IsEnabled() && li.Spec.Validate() == nil {
			claimants = append(claimants, li)
		}
	}
	if len(claimants) == 0 {
		return nil, nil
	}
	sort.Slice(claimants, func(a, b int) bool { return older(claimants[a], claimants[b]) })
	return claimants[0], nil
}

// older orders integrations by creation time, then namespace/name (as the server does).
func older(a, b *v1alpha1.LeadIntegration) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

// ensureSecret checks the referenced Secret holds the key and the label the webhook server
// needs, creating it (owned by the integration) when signature.generate asks and it is
// missing. An existing Secret is never changed. ready=false comes with a message for status.
func (r *LeadIntegrationReconciler) ensureSecret(ctx context.Context, obj *v1alpha1.LeadIntegration) (ready bool, msg string, err error) {
	ref := obj.Spec.Signature.SecretRef
	key := ref.EffectiveKey()
	secret := &corev1.Secret{}
	err = r.APIReader.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: ref.Name}, secret)
	switch {
	case apierrors.IsNotFound(err) && obj.Spec.Signature.Generate:
		if secret, err = r.generateSecret(ctx, obj); err != nil {
			return false, "", err
		}
	case apierrors.IsNotFound(err):
		return false, fmt.Sprintf("Secret %s not found", ref.Name), nil
	case err != nil:
		return false, "", fmt.Errorf("getting Secret %s/%s: %w", obj.Namespace, ref.Name, err)
	}
	if len(secret.Data[key]) == 0 {
		return false, fmt.Sprintf("Secret %s has no key %q", ref.Name, key), nil
	}
	if secret.Labels[v1alpha1.SecretLabel] != "true" {
		return false, fmt.Sprintf("Secret %s lacks the label %s=true, without which the webhook server cannot read it", ref.Name, v1alpha1.SecretLabel), nil
	}
	return true, "", nil
}

// generatedKey is how a generated key is written: for StandardWebhooks in the spec's
// whsec_<base64> form, which sender libraries expect; otherwise hex.
func generatedKey(obj *v1alpha1.LeadIntegration, raw []byte) []byte {
	if obj.Spec.Signature.EffectiveScheme(obj.Spec.Source) == v1alpha1.SchemeStandardWebhooks {
		return []byte(verify.StandardWebhooksSecretPrefix + base64.StdEncoding.EncodeToString(raw))
	}
	return []byte(hex.EncodeToString(raw))
}

// generateSecret creates the referenced Secret with a strong random key, owned by obj so it
// is garbage-collected with it.
func (r *LeadIntegrationReconciler) generateSecret(ctx context.Context, obj *v1alpha1.LeadIntegration) (*corev1.Secret, error) {
	ref := obj.Spec.Signature.SecretRef
	raw := make([]byte, generatedKeyBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("generating a signing key: %w", err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      ref.Name,
			Namespace: obj.Namespace,
			Labels:    map[string]string{v1alpha1.SecretLabel: "true", "app.kubernetes.io/managed-by": "leadhook"},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{ref.EffectiveKey(): generatedKey(obj, raw)},
	}
	if err := controllerutil.SetControllerReference(obj, secret, r.Scheme()); err != nil {
		return nil, fmt.Errorf("owning Secret %s/%s: %w", obj.Namespace, ref.Name, err)
	}
	if err := r.Create(ctx, secret); err != nil {
		if apierrors.IsAlreadyExists(err) { // created meanwhile: read it on the next pass
			return nil, fmt.Errorf("secret %s/%s appeared while creating it: %w", obj.Namespace, ref.Name, err)
		}
		return nil, fmt.Errorf("creating Secret %s/%s: %w", obj.Namespace, ref.Name, err)
	}
	logf.FromContext(ctx).Info("Created signing Secret", "secret", ref.Name)
	r.Recorder.Eventf(obj, secret, corev1.EventTypeNormal, "SecretGenerated", "Generate", "Created signing Secret %s", ref.Name)
	return secret, nil
}

func markReady(obj *v1alpha1.LeadIntegration, msg string) {
	setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAccepting, msg)
	meta.RemoveStatusCondition(&obj.Status.Conditions, v1alpha1.ConditionStalled)
}

func markNotReady(obj *v1alpha1.LeadIntegration, reason, msg string) {
	setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	meta.RemoveStatusCondition(&obj.Status.Conditions, v1alpha1.ConditionStalled)
}

// markStalled is for what only a change of the spec can fix.
func markStalled(obj *v1alpha1.LeadIntegration, reason, msg string) {
	setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	setCondition(obj, v1alpha1.ConditionStalled, metav1.ConditionTrue, reason, msg)
}

func setCondition(obj *v1alpha1.LeadIntegration, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: obj.Generation,
	})
}

// eventOnTransition records an Event when Ready changes status or reason.
func (r *LeadIntegrationReconciler) eventOnTransition(before, after *v1alpha1.LeadIntegration) {
	was := meta.FindStatusCondition(before.Status.Conditions, v1alpha1.ConditionReady)
	now := meta.FindStatusCondition(after.Status.Conditions, v1alpha1.ConditionReady)
	if now == nil || (was != nil && was.Status == now.Status && was.Reason == now.Reason) {
		return
	}
	typ := corev1.EventTypeNormal
	if now.Status != metav1.ConditionTrue && now.Reason != v1alpha1.ReasonDisabled {
		typ = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(after, nil, typ, now.Reason, "Reconcile", "%s", now.Message)
}

// SetupWithManager registers the indexes and watches.
func (r *LeadIntegrationReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.LeadIntegration{}, PathIndex, func(o client.Object) []string {
		return []string{o.(*v1alpha1.LeadIntegration).Spec.EffectivePath()}
	}); err != nil {
		return fmt.Errorf("indexing integrations by path: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.LeadIntegration{}, SecretIndex, func(o client.Object) []string {
		if sig := o.(*v1alpha1.LeadIntegration).Spec.Signature; sig != nil && sig.SecretRef.Name != "" {
			return []string{sig.SecretRef.Name}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing integrations by secret: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("leadintegration").
		For(&v1alpha1.LeadIntegration{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// A change to one integration can settle or start another's path conflict.
		Watches(&v1alpha1.LeadIntegration{}, r.pathPeers()).
		// A Secret appearing, changing or going away changes the integrations that use it.
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.secretUsers)).
		Complete(r)
}

// pathPeers enqueues the other integrations on an integration's path, old and new.
func (r *LeadIntegrationReconciler) pathPeers() handler.EventHandler {
	enqueue := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], objs ...client.Object) {
		for _, o := range objs {
			li, ok := o.(*v1alpha1.LeadIntegration)
			if !ok {
				continue
			}
			var list v1alpha1.LeadIntegrationList
			if err := r.List(ctx, &list, client.MatchingFields{PathIndex: li.Spec.EffectivePath()}); err != nil {
				logf.FromContext(ctx).Error(err, "Could not list integrations on a path", "path", li.Spec.EffectivePath())
				continue
			}
			for _, peer := range list.Items {
				if peer.Namespace != li.Namespace || peer.Name != li.Name {
					q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: peer.Namespace, Name: peer.Name}})
				}
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.Object)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			deleting := func(o client.Object) bool { return o.GetDeletionTimestamp() != nil }
			if e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() || deleting(e.ObjectOld) != deleting(e.ObjectNew) {
				enqueue(ctx, q, e.ObjectOld, e.ObjectNew)
			}
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.Object)
		},
	}
}

// secretUsers maps a Secret to the integrations in its namespace that refer to it.
func (r *LeadIntegrationReconciler) secretUsers(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.LeadIntegrationList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{SecretIndex: o.GetName()}); err != nil {
		logf.FromContext(ctx).Error(err, "Could not list integrations using a Secret", "secret", o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, li := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: li.Namespace, Name: li.Name}})
	}
	return reqs
}
