package main

// The Helm chart (charts/leadhook), checked as a platform team would: helm lint --strict,
// helm template for each value set in charts/leadhook/ci and for combinations that must be
// refused, every rendering validated by a real API server (kubectl apply --dry-run=server) and
// applied, RBAC asked with `kubectl auth can-i`, and a real helm install, upgrade and uninstall.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const chartDir = "charts/leadhook"

// helm runs bin/helm with its own config, cache and kube cache directories (so a developer's
// Helm setup plays no part) and returns the combined output.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("bin", "helm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: run `make helm` (make test does), which builds helm from the Go module proxy", err)
	}
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home+"/config", "HELM_CACHE_HOME="+home+"/cache",
		"HELM_DATA_HOME="+home+"/data", "KUBECACHEDIR="+home+"/kube", "KUBECONFIG=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustHelm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// manifest is a rendered chart, its objects in order.
type manifest []*unstructured.Unstructured

func parseManifest(t *testing.T, text string) manifest {
	t.Helper()
	var m manifest
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return m
		}
		if err != nil {
			t.Fatalf("reading the rendered chart: %v", err)
		}
		obj := map[string]any{}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		if len(obj) > 0 {
			m = append(m, &unstructured.Unstructured{Object: obj})
		}
	}
}

// find is the object of this kind and name (any namespace), or nil.
func (m manifest) find(kind, name string) *unstructured.Unstructured {
	for _, o := range m {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// all is every object of a kind.
func (m manifest) all(kind string) manifest {
	var out manifest
	for _, o := range m {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// text is the objects as one YAML stream, for kubectl.
func (m manifest) text(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, o := range m {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.String()
}

// typed decodes the object of this kind and name into its API type; the test fails if absent.
func typed[T any](t *testing.T, m manifest, kind, name string) *T {
	t.Helper()
	o := m.find(kind, name)
	if o == nil {
		t.Fatalf("the rendering has no %s %s", kind, name)
	}
	v := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, v, true); err != nil {
		t.Fatalf("%s %s: %v", kind, name, err)
	}
	return v
}

// rendering is one helm template of the chart, with the names it was given.
type rendering struct {
	release, namespace string
	m                  manifest
}

func (r rendering) controller() string { return r.release + "-controller" }
func (r rendering) server() string     { return r.release + "-server" }

func (r rendering) deployment(t *testing.T, name string) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	d := typed[appsv1.Deployment](t, r.m, "Deployment", name)
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("deployment %s has %d containers, want 1", name, len(d.Spec.Template.Spec.Containers))
	}
	return d, &d.Spec.Template.Spec.Containers[0]
}

// pod returns the pod template and only container of the Deployment or StatefulSet named name.
func (r rendering) pod(t *testing.T, name string) (*corev1.PodSpec, *corev1.Container) {
	t.Helper()
	var pod *corev1.PodSpec
	switch {
	case r.m.find("Deployment", name) != nil:
		pod = &typed[appsv1.Deployment](t, r.m, "Deployment", name).Spec.Template.Spec
	case r.m.find("StatefulSet", name) != nil:
		pod = &typed[appsv1.StatefulSet](t, r.m, "StatefulSet", name).Spec.Template.Spec
	default:
		t.Fatalf("no Deployment or StatefulSet %s", name)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%s has %d containers, want 1", name, len(pod.Containers))
	}
	return pod, &pod.Containers[0]
}

// render runs helm template for release leadhook-<name> in namespace lh-<name>.
func render(t *testing.T, name string, args ...string) rendering {
	t.Helper()
	r := rendering{release: "leadhook-" + name, namespace: "lh-" + name}
	out := mustHelm(t, append([]string{"template", r.release, chartDir, "--namespace", r.namespace}, args...)...)
	r.m = parseManifest(t, out)
	return r
}

// chartCase is a value set of charts/leadhook/ci and what its rendering must contain.
type chartCase struct {
	name  string // ci/<name>-values.yaml
	check func(t *testing.T, r rendering)
}

var chartCases = []chartCase{
	{"default", func(t *testing.T, r rendering) {
		d, c := r.deployment(t, r.server())
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
			t.Errorf("server replicas %v, strategy %s: want 2, RollingUpdate", d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		wantMongoSecret(t, c, "leadhook-mongodb", "uri")
		wantArgs(t, c, "--mongo-database=leadhook", "--metrics-listen=:9090", "--shutdown-timeout=25s",
			"--spool-dir=/var/lib/leadhook/spool", "--spool-max-bytes=268435456")
		wantMount(t, d.Name, &d.Spec.Template.Spec, "/var/lib/leadhook/spool", func(v corev1.Volume) bool {
			return v.EmptyDir != nil && v.EmptyDir.SizeLimit != nil && v.EmptyDir.SizeLimit.String() == "512Mi"
		})
		if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g != 40 {
			t.Errorf("server terminationGracePeriodSeconds %v, want 5 (preStop) + 25 (drain) + 10", g)
		}
		pdb := typed[policyv1.PodDisruptionBudget](t, r.m, "PodDisruptionBudget", r.server())
		if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.MaxUnavailable != nil {
			t.Errorf("server PDB %+v, want minAvailable 1", pdb.Spec)
		}
		crd := r.m.find("CustomResourceDefinition", "leadintegrations.leadhook.io")
		if crd == nil || crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("the CRD is missing or lacks helm.sh/resource-policy: keep")
		}
		for kind, n := range map[string]int{"LeadIntegration": 2, "Ingress": 0, "NetworkPolicy": 0, "ServiceMonitor": 0,
			"HorizontalPodAutoscaler": 0, "PersistentVolumeClaim": 0, "StatefulSet": 0, "Role": 1, "ClusterRole": 2, "Service": 3} {
			if got := len(r.m.all(kind)); got != n {
				t.Errorf("%d objects of kind %s, want %d", got, kind, n)
			}
		}
		taplink := r.m.find("LeadIntegration", "taplink")
		if gen, _, _ := unstructured.NestedBool(taplink.Object, "spec", "signature", "generate"); !gen {
			t.Errorf("the Taplink sample should have its signing Secret generated: %v", taplink.Object["spec"])
		}
	}},
	{"ingress-tls", func(t *testing.T, r rendering) {
		d, c := r.deployment(t, r.server())
		if *d.Spec.Replicas != 3 {
			t.Errorf("server replicas %d, want 3", *d.Spec.Replicas)
		}
		wantMongoSecret(t, c, "leadhook-mongodb", "connectionString")
		wantArgs(t, c, "--trusted-proxies=10.0.0.0/8,fd00::/8", "--mongo-database=clinic_leads")
		ing := typed[networkingv1.Ingress](t, r.m, "Ingress", r.server())
		if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" || len(ing.Spec.Rules) != 2 {
			t.Fatalf("ingress class %v, %d rules: want nginx, 2", ing.Spec.IngressClassName, len(ing.Spec.Rules))
		}
		if len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "leadhook-tls" || len(ing.Spec.TLS[0].Hosts) != 2 {
			t.Errorf("ingress TLS %+v, want leadhook-tls for both hosts", ing.Spec.TLS)
		}
		if ing.Annotations["cert-manager.io/cluster-issuer"] != "letsencrypt" {
			t.Errorf("ingress annotations %v lack cert-manager's", ing.Annotations)
		}
		exact := ing.Spec.Rules[1].HTTP.Paths[0]
		if ing.Spec.Rules[1].Host != "taplink.example.com" || exact.Path != "/api/taplink/lead" || *exact.PathType != networkingv1.PathTypeExact ||
			exact.Backend.Service.Name != r.server() || exact.Backend.Service.Port.Number != 80 {
			t.Errorf("second ingress rule %+v, want taplink.example.com /api/taplink/lead Exact -> %s:80", ing.Spec.Rules[1], r.server())
		}
	}},
	{"embedded", func(t *testing.T, r rendering) {
		d, c := r.deployment(t, r.server())
		if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("server replicas %d, strategy %s: want 1, Recreate", *d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		// The spool is DATA_DIR/spool, on the claim: no volume of its own.
		wantArgs(t, c, "--mongo-uri=", "--data-dir=/var/lib/leadhook/data", "--embedded-mongo-listen=", "--spool-max-bytes=268435456")
		for _, a := range c.Args {
			if strings.HasPrefix(a, "--spool-dir") {
				t.Errorf("embedded store, yet the spool is elsewhere than on its claim: %s", a)
			}
		}
		for _, e := range c.Env {
			if e.Name == "LEADHOOK_MONGO_URI" {
				t.Errorf("embedded store, yet LEADHOOK_MONGO_URI is set: %+v", e)
			}
		}
		wantMount(t, d.Name, &d.Spec.Template.Spec, "/var/lib/leadhook/data", func(v corev1.Volume) bool {
			return v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == r.server()+"-data"
		})
		pvc := typed[corev1.PersistentVolumeClaim](t, r.m, "PersistentVolumeClaim", r.server()+"-data")
		if pvc.Annotations["helm.sh/resource-policy"] != "keep" || pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "standard" ||
			pvc.Spec.Resources.Requests.Storage().String() != "2Gi" {
			t.Errorf("data claim %+v: want kept, class standard, 2Gi", pvc)
		}
		if len(r.m.all("PodDisruptionBudget"))+len(r.m.all("HorizontalPodAutoscaler")) != 0 {
			t.Errorf("a single-replica store must have neither PDB nor HPA")
		}
	}},
	{"networkpolicy", func(t *testing.T, r rendering) {
		srv := typed[networkingv1.NetworkPolicy](t, r.m, "NetworkPolicy", r.server())
		ctl := typed[networkingv1.NetworkPolicy](t, r.m, "NetworkPolicy", r.controller())
		if len(srv.Spec.Ingress) != 2 || srv.Spec.Ingress[0].Ports[0].Port.IntValue() != 8080 ||
			srv.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "ingress-nginx" {
			t.Errorf("server ingress rules %+v: want 8080 from ingress-nginx, then metrics", srv.Spec.Ingress)
		}
		if !slices.Equal(egressPorts(srv), []int{53, 53, 443, 6443, 27017}) || !slices.Equal(egressPorts(ctl), []int{53, 53, 443, 6443}) {
			t.Errorf("egress ports: server %v, controller %v; want DNS, API server (+ MongoDB for the server)", egressPorts(srv), egressPorts(ctl))
		}
		if to := srv.Spec.Egress[2].To; len(to) != 1 || to[0].IPBlock == nil || to[0].IPBlock.CIDR != "10.20.0.0/16" {
			t.Errorf("MongoDB egress to %+v, want 10.20.0.0/16", to)
		}
	}},
	{"servicemonitor", func(t *testing.T, r rendering) {
		sms := r.m.all("ServiceMonitor")
		if len(sms) != 2 {
			t.Fatalf("%d ServiceMonitors, want one per component", len(sms))
		}
		for _, sm := range sms {
			sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
			var matched []string
			for _, svc := range r.m.all("Service") {
				if labelsMatch(svc.GetLabels(), sel) {
					matched = append(matched, svc.GetName())
				}
			}
			if len(matched) != 1 || matched[0] != sm.GetName()+"-metrics" {
				t.Errorf("ServiceMonitor %s selects Services %v, want only %s-metrics", sm.GetName(), matched, sm.GetName())
			}
			if sm.GetLabels()["release"] != "kube-prometheus-stack" {
				t.Errorf("ServiceMonitor %s lacks the extra label", sm.GetName())
			}
		}
	}},
	{"hpa", func(t *testing.T, r rendering) {
		d, c := r.deployment(t, r.server())
		if d.Spec.Replicas != nil {
			t.Errorf("with an HPA the Deployment must leave replicas alone, has %d", *d.Spec.Replicas)
		}
		hpa := typed[autoscalingv2.HorizontalPodAutoscaler](t, r.m, "HorizontalPodAutoscaler", r.server())
		if *hpa.Spec.MinReplicas != 3 || hpa.Spec.MaxReplicas != 12 || len(hpa.Spec.Metrics) != 2 || hpa.Spec.ScaleTargetRef.Name != r.server() {
			t.Errorf("HPA %+v: want 3..12 on CPU and memory of %s", hpa.Spec, r.server())
		}
		pdb := typed[policyv1.PodDisruptionBudget](t, r.m, "PodDisruptionBudget", r.server())
		if pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("server PDB %+v, want maxUnavailable 1 only", pdb.Spec)
		}
		typed[policyv1.PodDisruptionBudget](t, r.m, "PodDisruptionBudget", r.controller())
		wantArgs(t, c, "--spool-dir=/var/lib/leadhook/spool", "--spool-max-bytes=1073741824")
		wantMount(t, d.Name, &d.Spec.Template.Spec, "/var/lib/leadhook/spool", func(v corev1.Volume) bool { return v.Ephemeral != nil })
	}},
	{"spool-persistent", func(t *testing.T, r rendering) {
		if r.m.find("Deployment", r.server()) != nil {
			t.Fatalf("with spool.persistence the server must be a StatefulSet only")
		}
		ss := typed[appsv1.StatefulSet](t, r.m, "StatefulSet", r.server())
		if ss.Spec.Replicas != nil || ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement ||
			ss.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
			t.Errorf("StatefulSet replicas %v, %s, %s: want none (HPA), Parallel, RollingUpdate", ss.Spec.Replicas,
				ss.Spec.PodManagementPolicy, ss.Spec.UpdateStrategy.Type)
		}
		if len(ss.Spec.VolumeClaimTemplates) != 1 {
			t.Fatalf("%d claim templates, want one, the spool's", len(ss.Spec.VolumeClaimTemplates))
		}
		vct := ss.Spec.VolumeClaimTemplates[0]
		if vct.Name != "spool" || vct.Spec.Resources.Requests.Storage().String() != "2Gi" || vct.Spec.StorageClassName == nil ||
			*vct.Spec.StorageClassName != "standard" || vct.Labels["helm.sh/chart"] != "" || vct.Labels["app.kubernetes.io/version"] != "" {
			t.Errorf("claim template %s %+v: want spool, 2Gi, class standard, no labels that change with the chart", vct.Name, vct.Spec)
		}
		pod, c := r.pod(t, r.server())
		wantArgs(t, c, "--spool-dir=/var/lib/leadhook/spool", "--spool-max-bytes=1073741824")
		mounted := false
		for _, m := range c.VolumeMounts {
			mounted = mounted || (m.Name == "spool" && m.MountPath == "/var/lib/leadhook/spool")
		}
		for _, v := range pod.Volumes {
			mounted = mounted && v.Name != "spool" // a pod volume of that name would shadow the claim
		}
		if !mounted {
			t.Errorf("the spool claim is not what is mounted at /var/lib/leadhook/spool: %+v, volumes %+v", c.VolumeMounts, pod.Volumes)
		}
		headless := typed[corev1.Service](t, r.m, "Service", ss.Spec.ServiceName)
		if headless.Spec.ClusterIP != corev1.ClusterIPNone || !labelsMatch(ss.Spec.Template.Labels, headless.Spec.Selector) {
			t.Errorf("governing Service %s: clusterIP %q, selector %v; want headless, selecting the pods", headless.Name,
				headless.Spec.ClusterIP, headless.Spec.Selector)
		}
		hpa := typed[autoscalingv2.HorizontalPodAutoscaler](t, r.m, "HorizontalPodAutoscaler", r.server())
		if hpa.Spec.ScaleTargetRef.Kind != "StatefulSet" || hpa.Spec.ScaleTargetRef.Name != r.server() {
			t.Errorf("HPA scales %+v, want StatefulSet %s", hpa.Spec.ScaleTargetRef, r.server())
		}
		pdb := typed[policyv1.PodDisruptionBudget](t, r.m, "PodDisruptionBudget", r.server())
		if !labelsMatch(ss.Spec.Template.Labels, pdb.Spec.Selector.MatchLabels) {
			t.Errorf("server PDB selects %v, not the StatefulSet's pods", pdb.Spec.Selector.MatchLabels)
		}
	}},
	{"namespaced", func(t *testing.T, r rendering) {
		if r.m.find("CustomResourceDefinition", "leadintegrations.leadhook.io") != nil {
			t.Errorf("crds.enabled=false, yet the CRD is rendered")
		}
		for _, ns := range []string{"clinic-a", "clinic-b"} {
			var found bool
			for _, role := range r.m.all("Role") {
				found = found || (role.GetName() == r.server() && role.GetNamespace() == ns)
			}
			if !found {
				t.Errorf("no server Role in %s", ns)
			}
		}
		if len(r.m.all("ClusterRole")) != 1 {
			t.Errorf("%d ClusterRoles: only the controller's should be cluster-wide", len(r.m.all("ClusterRole")))
		}
		d, c := r.deployment(t, r.server())
		wantArgs(t, c, "--namespaces=clinic-a,clinic-b", "--metrics-listen=", "--tls-cert-file=/etc/leadhook/tls/tls.crt",
			"--tls-key-file=/etc/leadhook/tls/tls.key", "--shutdown-timeout=40s")
		if c.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS || c.Lifecycle != nil {
			t.Errorf("TLS: probes %s, want HTTPS; preStopSleepSeconds 0, yet lifecycle %+v", c.ReadinessProbe.HTTPGet.Scheme, c.Lifecycle)
		}
		wantMount(t, d.Name, &d.Spec.Template.Spec, "/etc/leadhook/tls", func(v corev1.Volume) bool {
			return v.Secret != nil && v.Secret.SecretName == "leadhook-server-tls"
		})
		if *d.Spec.Template.Spec.TerminationGracePeriodSeconds != 45 {
			t.Errorf("terminationGracePeriodSeconds %d, want 45", *d.Spec.Template.Spec.TerminationGracePeriodSeconds)
		}
		_, cc := r.deployment(t, r.controller())
		wantArgs(t, cc, "--metrics-bind-address=0")
		if len(r.m.all("Service")) != 1 {
			t.Errorf("metrics off: want only the webhook Service, have %d", len(r.m.all("Service")))
		}
	}},
}

// checkPods checks what every rendering's pods must have: restricted security, probes,
// resources, a /tmp volume, ServiceAccounts of their own, flags the binary accepts, a grace
// period longer than the server's drain, and the MongoDB URI only from a Secret.
func checkPods(t *testing.T, r rendering) {
	t.Helper()
	accounts := map[string]string{}
	for _, name := range []string{r.controller(), r.server()} {
		pod, c := r.pod(t, name)
		accounts[pod.ServiceAccountName] = name
		psc, sc := pod.SecurityContext, c.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil ||
			psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod security context %+v, want runAsNonRoot and RuntimeDefault seccomp", name, psc)
		}
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil ||
			*sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s: container security context %+v, want read-only root, no escalation, drop ALL", name, sc)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("%s: probes %+v %+v, want /healthz and /readyz", name, c.LivenessProbe, c.ReadinessProbe)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: resources %+v, want CPU requests and a memory limit", name, c.Resources)
		}
		wantMount(t, name, pod, "/tmp", func(v corev1.Volume) bool { return v.EmptyDir != nil })
		for _, e := range c.Env {
			if e.Name == "LEADHOOK_MONGO_URI" && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				t.Errorf("%s: LEADHOOK_MONGO_URI must come from a Secret: %+v", name, e)
			}
		}
		for _, a := range c.Args {
			if strings.HasPrefix(a, "--mongo-uri=") && a != "--mongo-uri=" {
				t.Errorf("%s: an inline MongoDB URI in the args", name)
			}
		}
	}
	if len(accounts) != 2 {
		t.Errorf("controller and server share a ServiceAccount: %v", accounts)
	}
	_, cc := r.deployment(t, r.controller())
	if cc.Args[0] != "controller" || !slices.Contains(cc.Args, "--leader-elect") {
		t.Errorf("controller args %v, want controller --leader-elect", cc.Args)
	}
	if out, err := exec.Command(binary, append(slices.Clone(cc.Args), "--help")...).CombinedOutput(); err != nil {
		t.Errorf("leadhook refuses the controller's flags %v: %v\n%s", cc.Args, err, out)
	}
	serverPod, sc := r.pod(t, r.server())
	if sc.Args[0] != "server" {
		t.Fatalf("server args %v, want server first", sc.Args)
	}
	o, err := parseServerFlags(sc.Args[1:])
	if err != nil {
		t.Errorf("leadhook server refuses the chart's flags %v: %v", sc.Args, err)
		return
	}
	if o.integrations != "config/samples" {
		t.Errorf("the chart sets --integrations, so the server would not read the cluster")
	}
	stop := int64(o.shutdownTimeout / time.Second)
	if c := sc.Lifecycle; c != nil && c.PreStop != nil && c.PreStop.Sleep != nil {
		stop += c.PreStop.Sleep.Seconds
	}
	if g := serverPod.TerminationGracePeriodSeconds; g == nil || *g <= stop {
		t.Errorf("server terminationGracePeriodSeconds %v, want more than preStop + --shutdown-timeout = %ds", g, stop)
	}
}

func wantArgs(t *testing.T, c *corev1.Container, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(c.Args, w) {
			t.Errorf("%s args %v lack %s", c.Name, c.Args, w)
		}
	}
}

func wantMongoSecret(t *testing.T, c *corev1.Container, secret, key string) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == "LEADHOOK_MONGO_URI" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
			e.ValueFrom.SecretKeyRef.Name == secret && e.ValueFrom.SecretKeyRef.Key == key {
			return
		}
	}
	t.Errorf("%s env %+v lacks LEADHOOK_MONGO_URI from Secret %s key %s", c.Name, c.Env, secret, key)
}

// wantMount checks the container mounts a volume at path, and the volume is as wanted.
func wantMount(t *testing.T, name string, pod *corev1.PodSpec, path string, ok func(corev1.Volume) bool) {
	t.Helper()
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.MountPath != path {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && ok(v) {
				return
			}
		}
		t.Errorf("%s: the volume at %s is not as wanted: %+v", name, path, pod.Volumes)
		return
	}
	t.Errorf("%s mounts nothing at %s", name, path)
}

func egressPorts(np *networkingv1.NetworkPolicy) []int {
	var ports []int
	for _, rule := range np.Spec.Egress {
		for _, p := range rule.Ports {
			ports = append(ports, p.Port.IntValue())
		}
	}
	return ports
}

func labelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// TestChartLint runs helm lint --strict with every value set in charts/leadhook/ci.
func TestChartLint(t *testing.T) {
	for _, tc := range chartCases {
		out := mustHelm(t, "lint", "--strict", chartDir, "-f", valuesFile(tc.name))
		if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
			t.Errorf("helm lint %s:\n%s", tc.name, out)
		}
	}
	files, _ := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if len(files) != len(chartCases) {
		t.Errorf("%d value sets in %s/ci, %d in chartCases: test each one", len(files), chartDir, len(chartCases))
	}
}

func valuesFile(name string) string { return filepath.Join(chartDir, "ci", name+"-values.yaml") }

// TestChartRefuses renders combinations that must fail, each with a message saying what to change.
func TestChartRefuses(t *testing.T) {
	def, emb, sm := valuesFile("default"), valuesFile("embedded"), valuesFile("servicemonitor")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no MongoDB and no embedded store", nil, "set mongo.existingSecret to a Secret holding the MongoDB connection string"},
		{"both stores", []string{"-f", def, "--set", "embeddedStore.enabled=true"}, "mongo.existingSecret and embeddedStore.enabled exclude each other"},
		{"embedded store with 3 replicas", []string{"-f", emb, "--set", "webhookServer.replicas=3"}, "webhookServer.replicas must be 1 (or unset), not 3"},
		{"embedded store with an HPA", []string{"-f", emb, "--set", "webhookServer.autoscaling.enabled=true"}, "webhookServer.autoscaling.enabled must be false"},
		{"ServiceMonitor without metrics", []string{"-f", sm, "--set", "metrics.enabled=false"}, "prometheus.serviceMonitor.enabled needs metrics.enabled=true"},
		{"ServiceMonitor timeout over its interval", []string{"-f", sm, "--set", "prometheus.serviceMonitor.scrapeTimeout=1m30s"},
			"scrapeTimeout (1m30s) must not be longer than its interval (30s)"},
		{"a typo in a key", []string{"-f", def, "--set", "webhookServer.replica=3"}, "additional properties 'replica' not allowed"},
		{"an inline MongoDB URI", []string{"-f", def, "--set", "mongo.uri=mongodb://u:p@db"}, "additional properties 'uri' not allowed"},
		{"an unknown integration source", []string{"-f", def, "--set", "integrations[0].spec.source=Tilda"}, "/integrations/0/spec/source"},
		{"a trusted proxy that is no CIDR", []string{"-f", def, "--set", "webhookServer.trustedProxies={10.0.0.1}"}, "/webhookServer/trustedProxies/0"},
		{"both PDB bounds", []string{"-f", def, "--set", "webhookServer.podDisruptionBudget.maxUnavailable=1",
			"--set", "webhookServer.podDisruptionBudget.minAvailable=1"}, "set minAvailable or maxUnavailable, not both"},
		{"a grace period shorter than the drain", []string{"-f", def, "--set", "webhookServer.terminationGracePeriodSeconds=30"},
			"terminationGracePeriodSeconds (30) must be longer than preStopSleepSeconds + shutdownTimeoutSeconds (30)"},
		{"an Ingress without hosts", []string{"-f", def, "--set", "webhookServer.ingress.enabled=true", "--set", "webhookServer.ingress.hosts=null"},
			"needs at least one entry in webhookServer.ingress.hosts"},
		{"TLS without a Secret", []string{"-f", def, "--set", "webhookServer.tls.enabled=true"}, "webhookServer.tls.enabled needs webhookServer.tls.secretName"},
		{"one spool claim for many replicas", []string{"-f", def, "--set", "webhookServer.spool.enabled=true",
			"--set", "webhookServer.spool.volume.persistentVolumeClaim.claimName=spool"}, "each webhook-server replica needs a spool of its own"},
		{"a spool larger than its emptyDir", []string{"-f", def, "--set", "webhookServer.spool.maxBytes=1073741824"},
			"webhookServer.spool.maxBytes (1073741824) must not exceed webhookServer.spool.sizeLimit (512Mi)"},
		{"a spool larger than a decimal sizeLimit", []string{"-f", def, "--set", "webhookServer.spool.sizeLimit=200M"},
			"webhookServer.spool.maxBytes (268435456) must not exceed webhookServer.spool.sizeLimit (200M)"},
		{"a spool claim smaller than the spool", []string{"-f", def, "--set", "webhookServer.spool.persistence.enabled=true",
			"--set", "webhookServer.spool.persistence.size=200Mi"}, "must not exceed webhookServer.spool.persistence.size (200Mi)"},
		{"a spool claim and a spool volume", []string{"-f", def, "--set", "webhookServer.spool.persistence.enabled=true",
			"--set", "webhookServer.spool.volume.emptyDir.medium=Memory"}, "leave webhookServer.spool.volume empty"},
		{"an integration the server would not watch", []string{"-f", def, "--set", "webhookServer.watchNamespaces={clinic}"},
			"integration website is in namespace lh-refused, which webhookServer.watchNamespaces (clinic) leaves out"},
	}
	for _, tc := range cases {
		out, err := helm(t, append([]string{"template", "leadhook", chartDir, "--namespace", "lh-refused"}, tc.args...)...)
		if err == nil {
			t.Errorf("%s: rendered, want a failure", tc.name)
		} else if !strings.Contains(out, tc.want) {
			t.Errorf("%s: the failure does not say %q:\n%s", tc.name, tc.want, out)
		}
	}
}

// TestChartFilesMatchConfig checks the chart's copies of the generated CRD and RBAC rules
// (charts/leadhook/files, copied by make manifests) are the generated files, byte for byte.
func TestChartFilesMatchConfig(t *testing.T) {
	for chartFile, generated := range map[string]string{
		"files/crds/leadhook.io_leadintegrations.yaml": "config/crd/bases/leadhook.io_leadintegrations.yaml",
		"files/rbac/controller-role.yaml":              "config/rbac/controller/role.yaml",
		"files/rbac/server-role.yaml":                  "config/rbac/server/role.yaml",
	} {
		got, err := os.ReadFile(filepath.Join(chartDir, chartFile))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(generated)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/%s differs from %s: run `make manifests`", chartDir, chartFile, generated)
		}
	}
}

// TestChart renders every value set, checks what it renders, has the API server validate it
// (server-side dry run), applies it, and checks the objects, the CRD, the sample integrations
// and RBAC; then installs, upgrades and uninstalls the chart with helm itself. One control plane
// serves every step.
func TestChart(t *testing.T) {
	c := startCluster(t, false) // the chart brings the CRD

	// First, helm itself, on a cluster that has never seen leadhook: the README's command.
	t.Run("helm lifecycle", func(t *testing.T) { helmLifecycle(t, c) })

	// The ServiceMonitor case needs the Prometheus Operator's CRD; a minimal stand-in.
	c.kubectl(t, "apply", "-f", filepath.Join("testdata", "servicemonitor-crd.yaml"))
	c.kubectl(t, "wait", "--for=condition=Established", "--timeout=30s", "crd/servicemonitors.monitoring.coreos.com")
	c.kubectl(t, "create", "namespace", "clinic-a")
	c.kubectl(t, "create", "namespace", "clinic-b")

	for _, tc := range chartCases {
		t.Run(tc.name, func(t *testing.T) {
			r := render(t, tc.name, "-f", valuesFile(tc.name))
			tc.check(t, r)
			checkPods(t, r)
			c.kubectl(t, "create", "namespace", r.namespace)
			applyRendering(t, c, r.m)
			if tc.name == "default" {
				checkCRD(t, c, r)
				checkSampleIntegrations(t, c, r)
				// The Roles are cluster-wide: ask about another namespace than the release's.
				checkCanI(t, c, installPermissions(r.namespace, r.server(), r.controller(), "clinic-a"))
			}
			if tc.name == "namespaced" {
				checkCanI(t, c, namespacedPermissions(r))
			}
		})
	}
}

// applyRendering validates the objects with a server-side dry run, then applies them, CRDs
// first (a custom resource cannot be validated before its CRD is established), and checks
// each exists.
func applyRendering(t *testing.T, c *cluster, m manifest) {
	t.Helper()
	var crds, rest manifest
	for _, o := range m {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o)
		} else {
			rest = append(rest, o)
		}
	}
	for _, part := range []manifest{crds, rest} {
		if len(part) == 0 {
			continue
		}
		text := part.text(t)
		if out, err := c.run(text, "apply", "--dry-run=server", "-f", "-"); err != nil {
			t.Fatalf("the API server refuses the rendering: %v\n%s", err, out)
		}
		applyStdin(t, c, text)
		for _, o := range part {
			if o.GetKind() == "CustomResourceDefinition" {
				c.kubectl(t, "wait", "--for=condition=Established", "--timeout=30s", "crd/"+o.GetName())
			}
		}
		out, err := c.run(text, "get", "-f", "-", "-o", "name")
		if got := strings.Fields(out); err != nil || len(got) != len(part) {
			t.Fatalf("after apply, kubectl get finds %d of %d objects: %v\n%s", len(got), len(part), err, out)
		}
	}
}

// checkCRD checks the chart's CRD, as the API server holds it, is config/crd/bases' one.
func checkCRD(t *testing.T, c *cluster, r rendering) {
	t.Helper()
	var want map[string]any
	raw, err := os.ReadFile(filepath.Join("config", "crd", "bases", "leadhook.io_leadintegrations.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	rendered := r.m.find("CustomResourceDefinition", "leadintegrations.leadhook.io")
	if !reflect.DeepEqual(rendered.Object["spec"], want["spec"]) {
		t.Errorf("the chart's CRD spec differs from config/crd/bases")
	}
	out := c.kubectl(t, "get", "crd", "leadintegrations.leadhook.io", "-o",
		`jsonpath={.metadata.annotations.helm\.sh/resource-policy} {.status.conditions[?(@.type=="Established")].status}`)
	if out != "keep True" {
		t.Errorf("CRD annotation and Established: %q, want \"keep True\"", out)
	}
}

// checkSampleIntegrations checks the API server accepted the chart's two sample
// integrations (and defaulted them from the CRD), and refuses one the CRD forbids.
func checkSampleIntegrations(t *testing.T, c *cluster, r rendering) {
	t.Helper()
	out := c.kubectl(t, "get", "leadintegrations", "-n", r.namespace, "website", "taplink", "-o",
		`jsonpath={range .items[*]}{.metadata.name}:{.spec.source}:{.spec.enabled}:{.spec.maxBodyBytes} {end}`)
	if want := "website:Generic:true:65536 taplink:Taplink:true:65536 "; out != want {
		t.Errorf("sample integrations as stored: %q, want %q", out, want)
	}
	badValues := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(badValues, []byte("integrations: [{name: bad, spec: {source: Generic, defaultRegion: Israel}}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := render(t, "default", "-f", valuesFile("default"), "-f", badValues).m.all("LeadIntegration").text(t)
	if out, err := c.run(text, "apply", "--dry-run=server", "-f", "-"); err == nil || !strings.Contains(out, "spec.defaultRegion") {
		t.Errorf("an integration with defaultRegion Israel was not refused by the CRD: %v\n%s", err, out)
	}
}

// namespacedPermissions: with watchNamespaces the server reads only those namespaces.
func namespacedPermissions(r rendering) []canI {
	server := "system:serviceaccount:" + r.namespace + ":" + r.server()
	cases := []canI{
		{server, "list", "secrets", "", false},
		{server, "list", "leadintegrations.leadhook.io", "", false},
		{server, "watch", "secrets", "kube-system", false},
		{server, "watch", "secrets", r.namespace, false},
	}
	for _, ns := range []string{"clinic-a", "clinic-b"} {
		cases = append(cases,
			canI{server, "watch", "leadintegrations.leadhook.io", ns, true},
			canI{server, "list", "secrets", ns, true},
			canI{server, "create", "secrets", ns, false},
			canI{server, "patch", "leadintegrations.leadhook.io/status", ns, false})
	}
	return cases
}

// helmLifecycle installs the chart with helm as the README says, upgrades it with a changed
// integration, and uninstalls it: the CRD and the generated state must survive as designed.
func helmLifecycle(t *testing.T, c *cluster) {
	const ns = "leadhook-system"
	kc := []string{"--kubeconfig", c.kubeconfig, "--namespace", ns}
	out := mustHelm(t, append([]string{"install", "leadhook", chartDir, "--create-namespace",
		"--set", "mongo.existingSecret=leadhook-mongodb"}, kc...)...)
	for _, want := range []string{"STATUS: deployed", "http://localhost:8080/api/lead", "http://localhost:8080/api/taplink/lead",
		"port-forward service/leadhook-server 8080:80", "get secret taplink-signing"} {
		if !strings.Contains(out, want) {
			t.Errorf("helm install output (NOTES) lacks %q:\n%s", want, out)
		}
	}
	for _, obj := range []string{"deployment/leadhook-controller", "deployment/leadhook-server", "service/leadhook-server",
		"leadintegration/website", "leadintegration/taplink", "poddisruptionbudget/leadhook-server"} {
		c.kubectl(t, "get", "-n", ns, obj)
	}
	uid := c.kubectl(t, "get", "-n", ns, "leadintegration/taplink", "-o", "jsonpath={.metadata.uid}")

	// Switch the website integration off and add one, by values.
	upgrade := filepath.Join(t.TempDir(), "upgrade.yaml")
	if err := os.WriteFile(upgrade, []byte(`mongo: {existingSecret: leadhook-mongodb}
integrations:
  - name: website
    spec: {source: Generic, path: /api/lead, enabled: false}
  - name: taplink
    spec:
      source: Taplink
      path: /api/taplink/lead
      defaultRegion: IL
      timeZone: Asia/Jerusalem
      signature: {scheme: TaplinkSHA1, generate: true, secretRef: {name: taplink-signing, key: secret}}
  - name: landing
    spec: {source: Generic, path: /api/landing/lead}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	mustHelm(t, append([]string{"upgrade", "leadhook", chartDir, "-f", upgrade}, kc...)...)
	if got := c.kubectl(t, "get", "-n", ns, "leadintegration/website", "-o", "jsonpath={.spec.enabled}"); got != "false" {
		t.Errorf("after the upgrade website is enabled=%s, want false", got)
	}
	c.kubectl(t, "get", "-n", ns, "leadintegration/landing")
	if got := c.kubectl(t, "get", "-n", ns, "leadintegration/taplink", "-o", "jsonpath={.metadata.uid}"); got != uid {
		t.Errorf("the upgrade recreated taplink (uid %s, was %s): its generated Secret would go with it", got, uid)
	}

	// Spool claims per pod: the server becomes a StatefulSet, and a later upgrade of it is
	// accepted (its claim templates and other fixed fields do not change).
	persistent := []string{"upgrade", "leadhook", chartDir, "-f", upgrade, "--set", "webhookServer.spool.persistence.enabled=true"}
	mustHelm(t, append(slices.Clone(persistent), kc...)...)
	c.kubectl(t, "get", "-n", ns, "statefulset/leadhook-server", "service/leadhook-server-pods")
	if out := c.kubectl(t, "get", "deployments", "-n", ns, "-o", "name"); strings.Contains(out, "leadhook-server") {
		t.Errorf("the server's Deployment is still there beside its StatefulSet:\n%s", out)
	}
	mustHelm(t, append(append(persistent, "--set", "webhookServer.logLevel=debug"), kc...)...)
	if got := c.kubectl(t, "get", "-n", ns, "statefulset/leadhook-server", "-o", "jsonpath={.spec.template.spec.containers[0].args}"); !strings.Contains(got, "--log-level=debug") {
		t.Errorf("the second upgrade did not reach the StatefulSet: args %s", got)
	}

	mustHelm(t, append([]string{"uninstall", "leadhook"}, kc...)...)
	c.kubectl(t, "get", "crd", "leadintegrations.leadhook.io") // kept
	out = c.kubectl(t, "get", "deployments,statefulsets,leadintegrations", "-n", ns, "-o", "name")
	if strings.TrimSpace(out) != "" {
		t.Errorf("after helm uninstall these remain:\n%s", out)
	}
}
