package main

// The image cannot be built here (no container engine), so these check what can be checked
// without one: the Dockerfile's shape, and that .dockerignore keeps out what must stay out
// while leaving every file the build compiles in the context.

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile checks the Dockerfile is a two-stage static build onto distroless nonroot.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) != 2 || !strings.HasPrefix(froms[0][1], "golang:") || froms[1][1] != "gcr.io/distroless/static:nonroot" {
		t.Errorf("stages %v: want a golang build stage, then gcr.io/distroless/static:nonroot", froms)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^RUN CGO_ENABLED=0 .*go build -trimpath .*-o /out/leadhook \.$`),
		regexp.MustCompile(`(?m)^COPY --from=build /out/leadhook /leadhook$`),
		regexp.MustCompile(`(?m)^USER 65532:65532$`),
		regexp.MustCompile(`(?m)^ENTRYPOINT \["/leadhook"\]$`),
	} {
		if !want.MatchString(df) {
			t.Errorf("the Dockerfile has no line matching %s", want)
		}
	}
}

// TestDockerignore checks the build context: bin/, data/ (leads), .git/ and dist/ are left
// out, and nothing the build needs (go.mod, go.sum, every Go file of the module) is.
func TestDockerignore(t *testing.T) {
	raw, err := os.ReadFile(".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore exception %q: this check does not model exceptions; keep the file to plain patterns", line)
		}
		patterns = append(patterns, strings.Trim(line, "/"))
	}
	// ignored reports whether a pattern matches the path or one of its parent directories,
	// as Docker matches them (relative to the context root).
	ignored := func(p string) bool {
		for dir := p; dir != "." && dir != "/"; dir = path.Dir(dir) {
			for _, pat := range patterns {
				if ok, _ := path.Match(pat, dir); ok {
					return true
				}
			}
		}
		return false
	}
	for _, p := range []string{"bin/helm", "data/leads.sqlite", ".git/HEAD", "dist/install.yaml", "leadhook.test"} {
		if !ignored(p) {
			t.Errorf("%s is in the build context", p)
		}
	}
	out, err := exec.Command("go", "list", "-f", `{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, f := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			t.Fatal(err)
		}
		needed = append(needed, filepath.ToSlash(rel))
	}
	if len(needed) < 10 {
		t.Fatalf("go list found only %v", needed)
	}
	for _, p := range needed {
		if ignored(p) {
			t.Errorf(".dockerignore leaves %s out of the build context, which the build needs", p)
		}
	}
}
