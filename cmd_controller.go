package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/leadhook/leadhook/api/v1alpha1"
	"github.com/leadhook/leadhook/controllers"
)

// newScheme knows the built-in kinds and LeadIntegration.
func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("registering built-in kinds: %w", err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("registering LeadIntegration: %w", err)
	}
	return s, nil
}

func runController(args []string) error {
	fs := flag.NewFlagSet("leadhook controller", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: leadhook controller [flags]

Reconciles LeadIntegrations: validates them, creates signing Secrets when asked
(signature.generate), settles path conflicts and writes Ready/Stalled conditions and Events.
Connects with --kubeconfig, $KUBECONFIG or the in-cluster service account.

Flags:
`)
		fs.PrintDefaults()
	}
	var metricsAddr, probeAddr, leaderNamespace string
	var leaderElect bool
	fs.StringVar(&metricsAddr, "metrics-bind-address", ":8081", "address of the Prometheus metrics endpoint (0 disables it)")
	fs.StringVar(&probeAddr, "health-probe-bind-address", ":8082", "address of /healthz and /readyz")
	fs.BoolVar(&leaderElect, "leader-elect", false, "elect a leader so only one replica reconciles")
	fs.StringVar(&leaderNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: the pod's own)")
	config.RegisterFlags(fs) // --kubeconfig
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := parseFlags(fs, args, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	scheme, err := newScheme()
	if err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("finding the cluster: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:  probeAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        "leadhook-controller.leadhook.io",
		LeaderElectionNamespace: leaderNamespace,
		// Stepping down promptly on SIGTERM lets the next replica take over without waiting
		// for the lease to expire.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	rec := &controllers.LeadIntegrationReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("leadhook-controller"),
	}
	if err := rec.SetupWithManager(ctx, mgr); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding readiness check: %w", err)
	}
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running manager: %w", err)
	}
	return nil
}
