package registry

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/leadhook/leadhook/api/v1alpha1"
)

// The webhook server only reads:
// +kubebuilder:rbac:groups=leadhook.io,resources=leadintegrations,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// Cluster feeds a Live registry from the API server through a controller-runtime cache of
// LeadIntegrations and labelled Secrets. It only reads. Run it as a manager Runnable: it
// builds the first table once the cache has synced, then rebuilds on every change.
type Cluster struct {
	Cache cache.Cache
	Log   *slog.Logger

	live    Live
	changed chan struct{}
}

// Lookup implements Registry.
func (c *Cluster) Lookup(path string) (*Integration, bool) { return c.live.Lookup(path) }

// Loaded reports whether the first table was built.
func (c *Cluster) Loaded() bool { return c.live.Table() != nil }

// NeedLeaderElection is false: every server replica serves.
func (c *Cluster) NeedLeaderElection() bool { return false }

// Start watches until ctx ends.
func (c *Cluster) Start(ctx context.Context) error {
	c.changed = make(chan struct{}, 1)
	for _, obj := range []client.Object{&v1alpha1.LeadIntegration{}, &corev1.Secret{}} {
		inf, err := c.Cache.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { c.poke() },
			UpdateFunc: func(any, any) { c.poke() },
			DeleteFunc: func(any) { c.poke() },
		}); err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
	}
	if !c.Cache.WaitForCacheSync(ctx) {
		return fmt.Errorf("integration cache did not sync")
	}
	if err := c.rebuild(ctx); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.changed:
			// Let a burst of events (kubectl apply of many objects) settle into one rebuild.
			time.Sleep(50 * time.Millisecond)
			if err := c.rebuild(ctx); err != nil {
				c.logger().Error("Could not rebuild integrations", "error", err)
			}
		}
	}
}

func (c *Cluster) poke() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// rebuild lists what the cache holds and swaps in a new table.
func (c *Cluster) rebuild(ctx context.Context) error {
	var items v1alpha1.LeadIntegrationList
	if err := c.Cache.List(ctx, &items); err != nil {
		return fmt.Errorf("listing integrations: %w", err)
	}
	var secrets corev1.SecretList
	if err := c.Cache.List(ctx, &secrets); err != nil {
		return fmt.Errorf("listing secrets: %w", err)
	}
	byName := make(map[string]*corev1.Secret, len(secrets.Items))
	for i := range secrets.Items {
		s := &secrets.Items[i]
		byName[s.Namespace+"/"+s.Name] = s
	}
	table, problems := Build(items.Items, func(namespace, name, key string) ([]byte, bool) {
		s, ok := byName[namespace+"/"+name]
		if !ok {
			return nil, false
		}
		v, ok := s.Data[key]
		return v, ok
	}, c.live.Table())
	c.live.Set(table)
	log := c.logger()
	for _, p := range problems {
		log.Warn("Integration not served", "integration", p.Key, "reason", p.Reason, "error", p.Err)
	}
	log.Info("Loaded integrations", "source", "cluster", "paths", table.Len())
	return nil
}

func (c *Cluster) logger() *slog.Logger {
	if c.Log == nil {
		return slog.Default()
	}
	return c.Log
}
