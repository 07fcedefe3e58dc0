package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sendResult is one run of `leadhook send`.
type sendResult struct {
	code           int
	stdout, stderr string
}

func runSendBinary(t *testing.T, args ...string) sendResult {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"send"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := sendResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running leadhook send: %v", err)
	}
	return r
}

// TestSend posts the fixtures with `leadhook send` to the binary serving the samples: signed
// Taplink and Standard Webhooks deliveries are stored, repeats are duplicates, bad secrets
// and stale timestamps exit non-zero with the server's 401, and neither the tool's output nor
// the server's log shows a secret or a signature.
func TestSend(t *testing.T) {
	s := startServer(t, copySamples(t), t.TempDir(), freeAddr(t), freeAddr(t))
	taplinkFile := filepath.Join("webhookserver", "testdata", "taplink-leads-created.json")
	seedFile := filepath.Join("webhookserver", "testdata", "generic-seed.json")
	const whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretFile := filepath.Join(t.TempDir(), "webhooks-secret")
	if err := os.WriteFile(secretFile, []byte("\n"+whsec+"\r\nwhsec_b2xkIGtleQ==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	taplink := []string{"--url", s.url + "/api/taplink/lead", "--file", taplinkFile, "--scheme", "TaplinkSHA1"}
	hooks := []string{"--url", s.url + "/api/webhooks/lead", "--file", seedFile, "--scheme", "StandardWebhooks"}
	stale := strconv.FormatInt(time.Now().Add(-10*time.Minute).Unix(), 10)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string // in stdout
	}{
		{"Taplink", append(taplink, "--secret", "test-secret"), 0, []string{"200 OK", `"status":true`, `"lead_id"`}},
		{"Taplink again is a duplicate", append(taplink, "--secret", "test-secret"), 0, []string{"200 OK", `"duplicate":true`}},
		{"Taplink, wrong phrase", append(taplink, "--secret", "test-secret2"), 1, []string{"401", `"error":"Invalid signature"`}},
		{"Taplink unsigned", []string{"--url", s.url + "/api/taplink/lead", "--file", taplinkFile}, 1, []string{"401", "Signature required"}},
		{"StandardWebhooks from a secret file", append(hooks, "--secret-file", secretFile, "--id", "msg_e2e_1"), 0, []string{"200 OK", `"lead_id"`}},
		{"StandardWebhooks, same id again", append(hooks, "--secret", whsec, "--id", "msg_e2e_1"), 0, []string{`"duplicate":true`}},
		{"StandardWebhooks, stale timestamp", append(hooks, "--secret", whsec, "--id", "msg_e2e_2", "--timestamp", stale), 1,
			[]string{"401", "Timestamp outside the allowed window"}},
		{"StandardWebhooks, wrong key", append(hooks, "--secret", "whsec_b3RoZXIga2V5", "--id", "msg_e2e_3"), 1, []string{"401", "Invalid signature"}},
		{"StandardWebhooks, random id", append(hooks, "--secret", whsec), 0, []string{"200 OK"}},
		{"Generic unsigned", []string{"--url", s.url + "/api/lead", "--file", seedFile}, 0, []string{"200 OK"}},
		{"no integration", []string{"--url", s.url + "/api/nothing", "--file", seedFile}, 1, []string{"403", "No active integration"}},
	}
	var all bytes.Buffer
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runSendBinary(t, tt.args...)
			all.WriteString(r.stdout + r.stderr)
			if r.code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
	if n := s.leadCount(t); n != 4 { // Taplink, StandardWebhooks msg_e2e_1 and random id, Generic
		t.Errorf("%d leads stored, want 4", n)
	}
	if !strings.Contains(all.String(), "webhook-id msg_e2e_1") {
		t.Errorf("the delivery id is not reported:\n%s", all.String())
	}
	s.stop(t)
	for _, secret := range []string{"test-secret", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "b2xkIGtleQ", "b3RoZXIga2V5",
		"f0c516ae690148af65bccf8a168a479acc2edba6", "v1,"} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("leadhook send output contains %q:\n%s", secret, all.String())
		}
		if strings.Contains(s.log.String(), secret) {
			t.Errorf("server log contains %q:\n%s", secret, s.log)
		}
	}
}

func TestSendHelpAndBadFlags(t *testing.T) {
	r := runSendBinary(t, "--help")
	for _, w := range []string{"--url", "--file", "--scheme", "--secret-file", "--header", "--content-type", "--id",
		"TaplinkSHA1", "HMACSHA256", "StandardWebhooks", "Token", "none", "whsec_"} {
		if r.code != 0 || !strings.Contains(r.stdout, strings.TrimPrefix(w, "-")) {
			t.Errorf("send --help (exit %d) lacks %q on stdout (help is asked for: it can be piped):\n%s", r.code, w, r.stdout)
		}
	}
	if r := runSendBinary(t, "--no-such-flag"); r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "Usage: leadhook send") {
		t.Errorf("unknown flag: exit %d, stdout %q; want exit 2 and the usage on stderr only", r.code, r.stdout)
	}
	if r := runSendBinary(t); r.code == 0 || !strings.Contains(r.stderr, "--url is required") {
		t.Errorf("no flags: exit %d, %s", r.code, r.stderr)
	}
	out, _ := exec.Command(binary, "help").Output()
	if !strings.Contains(string(out), "leadhook send") {
		t.Errorf("usage does not list send:\n%s", out)
	}
}

func TestParseSendFlags(t *testing.T) {
	base := []string{"--url", "http://localhost:8080/api/lead", "--file", "body.json"}
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" means valid
	}{
		{"unsigned", base, ""},
		{"taplink", append(base, "--scheme", "TaplinkSHA1", "--secret", "s"), ""},
		{"hmac with header", append(base, "--scheme", "HMACSHA256", "--secret", "s", "--header", "X-Hub-Signature-256"), ""},
		{"token with header", append(base, "--scheme", "Token", "--secret-file", "f", "--header", "X-Api-Key"), ""},
		{"standard webhooks with id and timestamp", append(base, "--scheme", "StandardWebhooks", "--secret", "s", "--id", "m", "--timestamp", "1614265330"), ""},
		{"missing url and file", nil, "--url is required"},
		{"unknown scheme", append(base, "--scheme", "MD5", "--secret", "s"), "is not one of"},
		{"scheme names are exact", append(base, "--scheme", "taplinksha1", "--secret", "s"), "is not one of"},
		{"scheme without secret", append(base, "--scheme", "HMACSHA256"), "needs --secret"},
		{"secret without scheme", append(base, "--secret", "s"), "need a --scheme"},
		{"both secrets", append(base, "--scheme", "Token", "--secret", "s", "--secret-file", "f"), "not both"},
		{"header for taplink", append(base, "--scheme", "TaplinkSHA1", "--secret", "s", "--header", "X"), "--header applies"},
		{"timestamp for hmac", append(base, "--scheme", "HMACSHA256", "--secret", "s", "--timestamp", "1"), "--timestamp applies"},
		{"stray argument", append(base, "extra"), "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseSendFlags(tt.args, io.Discard, io.Discard)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("parseSendFlags = %v, want %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "--secret s") {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}
