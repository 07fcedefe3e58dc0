package main

// End-to-end in cluster mode: a real kube-apiserver + etcd (envtest), the built binary as two
// processes (controller, and server on the embedded store), kubectl applying the samples.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// cluster is a test control plane with an admin kubeconfig and kubectl.
type cluster struct {
	kubeconfig string
	kubectlBin string
}

// startCluster starts a control plane; with withCRD, the LeadIntegration CRD is installed.
func startCluster(t *testing.T, withCRD bool) *cluster {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`, which builds kube-apiserver, etcd and kubectl into bin/k8s")
	}
	env := &envtest.Environment{}
	if withCRD {
		env.CRDDirectoryPaths, env.ErrorIfCRDPathMissing = []string{filepath.Join("config", "crd", "bases")}, true
	}
	if _, err := env.Start(); err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	user, err := env.AddUser(envtest.User{Name: "e2e-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{kubeconfig: filepath.Join(t.TempDir(), "kubeconfig"), kubectlBin: filepath.Join(assets, "kubectl")}
	if err := os.WriteFile(c.kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cluster) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.run("", args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// run runs kubectl with stdin and returns its combined output, failing or not.
func (c *cluster) run(stdin string, args ...string) (string, error) {
	cmd := exec.Command(c.kubectlBin, append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startProcess runs the leadhook binary with args until the test ends.
func startProcess(t *testing.T, args ...string) *bytes.Buffer {
	t.Helper()
	log := &bytes.Buffer{}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "KUBECONFIG=") // only the --kubeconfig given
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("leadhook %s log:\n%s", args[0], log)
		}
	})
	return log
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60s (%v)", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestClusterMode(t *testing.T) {
	c := startCluster(t, true)
	startProcess(t, "controller", "--kubeconfig", c.kubeconfig, "--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	listen, mongoListen := freeAddr(t), freeAddr(t)
	startProcess(t, "server", "--kubeconfig", c.kubeconfig, "--listen", listen, "--metrics-listen", freeAddr(t),
		"--data-dir", t.TempDir(), "--embedded-mongo-listen", mongoListen)
	s := &server{url: "http://" + listen, mongo: mongoListen}
	waitReady(t, s.url)

	// Nothing applied yet: no integration serves the path.
	if code, _ := s.post(t, "/api/lead", "application/json", readFixture(t, "generic-seed.json")); code != http.StatusForbidden {
		t.Fatalf("before apply: %d, want 403", code)
	}
	c.kubectl(t, "apply", "-k", "config/samples")
	c.kubectl(t, "wait", "--for=condition=Ready", "--timeout=30s", "-n", "clinic", "leadintegration/website", "leadintegration/taplink")
	out := c.kubectl(t, "get", "li", "-n", "clinic")
	for _, want := range []string{"SOURCE", "PATH", "ENABLED", "READY", "AGE", "website", "Generic", "/api/lead", "taplink", "Taplink", "True"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get li lacks %q:\n%s", want, out)
		}
	}

	// The fixtures are accepted and stored.
	postUntil := func(path string, body []byte, want int, headers ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, answer := s.post(t, path, "application/json", body, headers...)
			if code == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("POST %s: %d %v, want %d", path, code, answer, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	postUntil("/api/lead", readFixture(t, "generic-seed.json"), http.StatusOK)
	tapl := readFixture(t, "taplink-leads-created.json")
	postUntil("/api/taplink/lead", tapl, http.StatusOK, "taplink-signature", "f0c516ae690148af65bccf8a168a479acc2edba6")
	if code, _ := s.post(t, "/api/taplink/lead", "application/json", tapl); code != http.StatusUnauthorized {
		t.Errorf("unsigned Taplink delivery: %d, want 401", code)
	}
	if n := s.leadCount(t); n != 2 {
		t.Fatalf("%d leads stored, want 2", n)
	}

	// kubectl patch enabled=false → 403 "No active integration"; back → 200. Timed 20 times.
	var toggles []time.Duration
	for i := 0; i < 10; i++ {
		for _, on := range []bool{false, true} {
			start := time.Now()
			c.kubectl(t, "patch", "-n", "clinic", "li", "website", "--type=merge", "-p", fmt.Sprintf(`{"spec":{"enabled":%v}}`, on))
			want := http.StatusForbidden
			if on {
				want = http.StatusOK
			}
			body := []byte(fmt.Sprintf(`{"phone":"+972547712345","comment":"toggle %d %v"}`, i, on))
			postUntil("/api/lead", body, want)
			toggles = append(toggles, time.Since(start))
		}
	}
	sort.Slice(toggles, func(a, b int) bool { return toggles[a] < toggles[b] })
	t.Logf("toggle reaches the server (kubectl patch → answer changed), median of %d: %v (min %v, max %v)",
		len(toggles), toggles[len(toggles)/2], toggles[0], toggles[len(toggles)-1])
	c.kubectl(t, "patch", "-n", "clinic", "li", "website", "--type=merge", "-p", `{"spec":{"enabled":false}}`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, answer := s.post(t, "/api/lead", "application/json", readFixture(t, "generic-form.txt"))
		if code == http.StatusForbidden && answer["error"] == "No active integration" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("disabled: %d %v", code, answer)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A generated secret: unsigned → 401, signed with the key the controller made → 200.
	generated := `apiVersion: leadhook.io/v1alpha1
kind: LeadIntegration
metadata: {name: signed, namespace: clinic}
spec:
  source: Generic
  path: /api/signed
  signature:
    generate: true
    secretRef: {name: signed-signing}
`
	applyStdin(t, c, generated)
	c.kubectl(t, "wait", "--for=condition=Ready", "--timeout=30s", "-n", "clinic", "leadintegration/signed")
	keyHex := c.kubectl(t, "get", "secret", "-n", "clinic", "signed-signing", "-o", "jsonpath={.data.secret}")
	key := decodeBase64(t, keyHex)
	body := []byte(`{"client_name":"Signed","phone":"+972547712345"}`)
	postUntil("/api/signed", body, http.StatusUnauthorized)
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	postUntil("/api/signed", body, http.StatusOK, "X-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
}

func decodeBase64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return b
}

func applyStdin(t *testing.T, c *cluster, manifest string) {
	t.Helper()
	if out, err := c.run(manifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

// TestKustomizeInstall checks dist/install.yaml (make build-installer: config/default rendered
// into one file) is current, has the real API server validate it, applies it and checks each
// ServiceAccount may do what its role needs and nothing more.
func TestKustomizeInstall(t *testing.T) {
	c := startCluster(t, false) // the install brings the CRD
	installer, err := os.ReadFile(filepath.Join("dist", "install.yaml"))
	if err != nil {
		t.Fatalf("%v: run `make build-installer` (make test does)", err)
	}
	// The installer is config/default as kubectl kustomize renders it, but for the image (IMG).
	if got, want := withoutImages(string(installer)), withoutImages(c.kubectl(t, "kustomize", "config/default")); got != want {
		t.Fatalf("dist/install.yaml differs from config/default: run `make build-installer`")
	}
	if !strings.Contains(string(installer), "kind: CustomResourceDefinition") || strings.Count(string(installer), "kind: Deployment") != 2 {
		t.Fatalf("dist/install.yaml lacks the CRD or the two Deployments")
	}
	rendered := filepath.Join("dist", "install.yaml")
	// A server-side dry run cannot create the namespace the other objects go in; make it first.
	c.kubectl(t, "create", "namespace", "leadhook-system")
	c.kubectl(t, "apply", "--dry-run=server", "-f", rendered)
	c.kubectl(t, "apply", "-f", rendered)
	c.kubectl(t, "wait", "--for=condition=Established", "--timeout=30s", "crd/leadintegrations.leadhook.io")
	for _, obj := range []string{"deployment/leadhook-controller", "deployment/leadhook-server", "service/leadhook-server",
		"serviceaccount/leadhook-controller", "serviceaccount/leadhook-server"} {
		c.kubectl(t, "get", "-n", "leadhook-system", obj)
	}
	c.kubectl(t, "apply", "-k", "config/samples")
	checkCanI(t, c, installPermissions("leadhook-system", "leadhook-server", "leadhook-controller", "clinic"))
}

// withoutImages drops the image lines of a manifest, the one thing IMG changes.
func withoutImages(manifest string) string {
	var keep []string
	for _, line := range strings.Split(manifest, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "image: ") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// canI is one `kubectl auth can-i` question and the answer least privilege demands.
type canI struct {
	as, verb, resource, namespace string
	want                          bool
}

// installPermissions is what an install (kustomize or Helm) must grant, and must not: the
// server only reads LeadIntegrations and Secrets; the controller writes status, creates
// Secrets and Events, and elects a leader in its own namespace, and may change nothing else.
func installPermissions(namespace, serverSA, controllerSA, integrations string) []canI {
	server := "system:serviceaccount:" + namespace + ":" + serverSA
	controller := "system:serviceaccount:" + namespace + ":" + controllerSA
	return []canI{
		{server, "get", "leadintegrations.leadhook.io", integrations, true},
		{server, "list", "leadintegrations.leadhook.io", integrations, true},
		{server, "watch", "leadintegrations.leadhook.io", integrations, true},
		{server, "list", "secrets", integrations, true},
		{server, "watch", "secrets", integrations, true},
		{server, "create", "leadintegrations.leadhook.io", integrations, false},
		{server, "update", "leadintegrations.leadhook.io", integrations, false},
		{server, "patch", "leadintegrations.leadhook.io/status", integrations, false},
		{server, "update", "leadintegrations.leadhook.io/status", integrations, false},
		{server, "delete", "leadintegrations.leadhook.io", integrations, false},
		{server, "create", "secrets", integrations, false},
		{server, "update", "secrets", integrations, false},
		{server, "delete", "secrets", integrations, false},
		{server, "create", "events.events.k8s.io", integrations, false},
		{server, "create", "leases.coordination.k8s.io", namespace, false},
		{server, "list", "configmaps", namespace, false},
		{controller, "list", "leadintegrations.leadhook.io", integrations, true},
		{controller, "watch", "leadintegrations.leadhook.io", integrations, true},
		{controller, "patch", "leadintegrations.leadhook.io/status", integrations, true},
		{controller, "update", "leadintegrations.leadhook.io/status", integrations, true},
		{controller, "create", "secrets", integrations, true},
		{controller, "create", "events.events.k8s.io", integrations, true},
		{controller, "update", "leases.coordination.k8s.io", namespace, true},
		{controller, "create", "leases.coordination.k8s.io", namespace, true},
		{controller, "create", "events", namespace, true}, // leader election's core/v1 Events
		{controller, "update", "leadintegrations.leadhook.io", integrations, false},
		{controller, "delete", "leadintegrations.leadhook.io", integrations, false},
		{controller, "update", "secrets", integrations, false},
		{controller, "delete", "secrets", integrations, false},
		{controller, "update", "leases.coordination.k8s.io", integrations, false},
		{controller, "create", "pods", namespace, false},
	}
}

// checkCanI asks the API server each question as the ServiceAccount.
func checkCanI(t *testing.T, c *cluster, cases []canI) {
	t.Helper()
	for _, tc := range cases {
		args := []string{"auth", "can-i", "--as", tc.as}
		if tc.namespace == "" {
			args = append(args, "--all-namespaces")
		} else {
			args = append(args, "-n", tc.namespace)
		}
		args = append(args, tc.verb)
		if res, sub, ok := strings.Cut(tc.resource, "/"); ok {
			args = append(args, res, "--subresource", sub)
		} else {
			args = append(args, tc.resource)
		}
		out, _ := c.run("", args...) // exit 1 means "no"
		got := strings.TrimSpace(out) == "yes"
		if got != tc.want {
			t.Errorf("%s can %s %s in %q: %v (%s), want %v", tc.as[strings.LastIndex(tc.as, ":")+1:], tc.verb, tc.resource,
				tc.namespace, got, strings.TrimSpace(out), tc.want)
		}
	}
}
