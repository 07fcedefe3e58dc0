package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/leadhook/leadhook/api/v1alpha1"
)

// Files feeds a Live registry from a directory of YAML (or JSON) manifests: LeadIntegrations
// and the Secrets they reference, several documents per file allowed. Local mode uses it.
type Files struct {
	Dir      string
	Interval time.Duration // how often the directory is re-read; default 500ms
	Log      *slog.Logger

	live     Live
	lastSum  [sha256.Size]byte
	lastGood map[string][]manifest // per file: its last readable manifests
}

// manifest is one document of a file.
type manifest struct {
	integration *v1alpha1.LeadIntegration
	secret      *corev1.Secret
}

// Lookup implements Registry.
func (f *Files) Lookup(path string) (*Integration, bool) { return f.live.Lookup(path) }

// Loaded reports whether the directory was read at least once.
func (f *Files) Loaded() bool { return f.live.Table() != nil }

// Load reads the directory once. A file that cannot be read keeps the manifests it had when
// it last could be (an editor may be half-way through saving it).
func (f *Files) Load() error {
	files, err := manifestFiles(f.Dir)
	if err != nil {
		return err
	}
	sum := sha256.New()
	contents := make(map[string][]byte, len(files))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("reading %s: %w", name, err)
		}
		contents[name] = b
		fmt.Fprintf(sum, "%s\x00%d\x00", name, len(b))
		sum.Write(b)
	}
	var digest [sha256.Size]byte
	copy(digest[:], sum.Sum(nil))
	if f.live.Table() != nil && digest == f.lastSum {
		return nil
	}
	if f.lastGood == nil {
		f.lastGood = map[string][]manifest{}
	}
	good := map[string][]manifest{}
	var problems []error
	for name, b := range contents {
		ms, err := parseManifests(b)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", name, err))
			if prev, ok := f.lastGood[name]; ok {
				good[name] = prev
			}
			continue
		}
		good[name] = ms
	}
	f.lastGood, f.lastSum = good, digest
	items, secrets := collect(good)
	table, unserved := Build(items, secrets, f.live.Table())
	f.live.Set(table)
	log := f.logger()
	for _, p := range problems {
		log.Error("Could not read integration file", "error", p)
	}
	for _, p := range unserved {
		log.Warn("Integration not served", "integration", p.Key, "reason", p.Reason, "error", p.Err)
	}
	log.Info("Loaded integrations", "dir", f.Dir, "paths", table.Len())
	return nil
}

// Run re-reads the directory every Interval until ctx ends.
func (f *Files) Run(ctx context.Context) {
	interval := f.Interval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := f.Load(); err != nil {
				f.logger().Error("Could not read integrations", "dir", f.Dir, "error", err)
			}
		}
	}
}

func (f *Files) logger() *slog.Logger {
	if f.Log == nil {
		return slog.Default()
	}
	return f.Log
}

// manifestFiles lists the .yaml, .yml and .json files of dir (not recursively), sorted.
func manifestFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading integrations directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.Type().IsRegular() && (ext == ".yaml" || ext == ".yml" || ext == ".json") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(names)
	return names, nil
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*\r?$`) // \r: files saved with CRLF line ends

// parseManifests reads the LeadIntegrations and Secrets of one file, strictly: an unknown
// field is an error, so a typo never silently changes what is served. Other kinds are skipped.
func parseManifests(b []byte) ([]manifest, error) {
	var out []manifest
	for i, doc := range docSeparator.Split(string(b), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		switch {
		case head.Kind == "LeadIntegration" && head.APIVersion == v1alpha1.GroupVersion.String():
			obj := &v1alpha1.LeadIntegration{}
			if err := decodeStrict([]byte(doc), obj); err != nil {
				return nil, fmt.Errorf("document %d (LeadIntegration): %w", i+1, err)
			}
			defaultNamespace(&obj.ObjectMeta.Namespace)
			if err := validateNames(obj.Namespace, obj.Name); err != nil {
				return nil, fmt.Errorf("document %d (LeadIntegration): %w", i+1, err)
			}
			out = append(out, manifest{integration: obj})
		case head.Kind == "Secret" && head.APIVersion == "v1":
			obj := &corev1.Secret{}
			if err := decodeStrict([]byte(doc), obj); err != nil {
				return nil, fmt.Errorf("document %d (Secret): %w", i+1, err)
			}
			defaultNamespace(&obj.ObjectMeta.Namespace)
			if err := validateNames(obj.Namespace, obj.Name); err != nil {
				return nil, fmt.Errorf("document %d (Secret): %w", i+1, err)
			}
			out = append(out, manifest{secret: obj})
		}
	}
	return out, nil
}

// decodeStrict reads a YAML document as the API server reads JSON: field names match exactly
// (case included), and unknown or repeated fields are errors, so a file local mode serves is
// one a cluster would take as written.
func decodeStrict(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, obj)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// validateNames applies the API server's rules for names and namespaces, so a file cannot
// hold what a cluster would refuse (a "/" in a name would blur whose leads are whose).
func validateNames(namespace, name string) error {
	if name == "" {
		return fmt.Errorf("metadata.name is required")
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("metadata.name %q: %s", name, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return fmt.Errorf("metadata.namespace %q: %s", namespace, strings.Join(errs, "; "))
	}
	return nil
}

func defaultNamespace(ns *string) {
	if *ns == "" {
		*ns = "default"
	}
}

// collect gathers the integrations and a secret lookup from every file's manifests, files in
// name order (a later Secret of the same name wins).
func collect(byFile map[string][]manifest) ([]v1alpha1.LeadIntegration, Secrets) {
	names := make([]string, 0, len(byFile))
	for name := range byFile {
		names = append(names, name)
	}
	sort.Strings(names)
	var items []v1alpha1.LeadIntegration
	secrets := map[string]*corev1.Secret{}
	for _, name := range names {
		for _, m := range byFile[name] {
			if m.integration != nil {
				items = append(items, *m.integration)
			}
			if m.secret != nil {
				secrets[m.secret.Namespace+"/"+m.secret.Name] = m.secret
			}
		}
	}
	return items, func(namespace, name, key string) ([]byte, bool) {
		s, ok := secrets[namespace+"/"+name]
		if !ok {
			return nil, false
		}
		if v, ok := s.StringData[key]; ok {
			return []byte(v), true
		}
		v, ok := s.Data[key]
		return bytes.Clone(v), ok
	}
}
