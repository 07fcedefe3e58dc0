package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// countingHandler counts WithAttrs calls on the handler it wraps.
type countingHandler struct {
	slog.Handler
	withAttrs *int
}

func (h countingHandler) WithAttrs(a []slog.Attr) slog.Handler {
	*h.withAttrs++
	return countingHandler{h.Handler.WithAttrs(a), h.withAttrs}
}

func TestQuietLoggerKeepsErrorsWithTheirAttributesAndFormatsNothingElse(t *testing.T) {
	var out bytes.Buffer
	calls := 0
	base := countingHandler{slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}), &calls}
	l := quietLogger(slog.New(base)).With("conn", "c1").WithGroup("msg").With("op", "insert")
	l.Info("wire message", "body", "lead data")
	l.Debug("more wire")
	if out.Len() != 0 || calls != 0 {
		t.Fatalf("below the floor: wrote %q, formatted attributes %d times; want nothing", out.String(), calls)
	}
	l.Error("handler failed", "err", "boom")
	got := out.String()
	for _, want := range []string{`msg="handler failed"`, "conn=c1", "msg.op=insert", "msg.err=boom"} {
		if !strings.Contains(got, want) {
			t.Errorf("error record %q lacks %s", got, want)
		}
	}
	if strings.Contains(got, "lead data") {
		t.Errorf("a dropped record leaked: %q", got)
	}
	if l.Handler().Enabled(context.Background(), slog.LevelWarn) {
		t.Error("warn enabled below the error floor")
	}
}
