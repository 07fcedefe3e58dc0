package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/leadhook/leadhook/api/v1alpha1"
	"github.com/leadhook/leadhook/webhookserver/verify"
)

// schemeNone sends a delivery unsigned.
const schemeNone = "none"

// sendOptions are the flags of "leadhook send".
type sendOptions struct {
	url         string
	file        string
	scheme      string
	secret      string
	secretFile  string
	header      string
	contentType string
	id          string
	timestamp   int64
	timeout     time.Duration
}

const sendUsage = `Usage: leadhook send --url URL --file FILE [flags]

Posts FILE's exact bytes to URL, signed the way an integration's signature.scheme expects,
prints the answer's status and body, and exits 0 only when the answer is 200.
The secret and the signature are never printed.

Schemes (--scheme):
  none              unsigned (the default)
  TaplinkSHA1       taplink-signature: hex HMAC-SHA1 of the body
  HMACSHA256        X-Signature (or --header): sha256=<hex HMAC-SHA256 of the body>
  StandardWebhooks  webhook-id (--id, else a random msg_...), webhook-timestamp (--timestamp,
                    else now) and webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>;
                    a whsec_<base64> secret is base64-decoded, any other is used as raw bytes
  Token             Authorization: Bearer <secret> (or the bare secret in --header)

The secret is --secret, or the first non-blank line of --secret-file (a Secret value may
hold several keys, one per line; pass the one to sign with). Prefer --secret-file: a
command line is visible to other users of the machine and kept in shell history.

Examples, against "make run":
  leadhook send --url http://localhost:8080/api/taplink/lead \
    --file webhookserver/testdata/taplink-leads-created.json --scheme TaplinkSHA1 --secret test-secret
  leadhook send --url http://localhost:8080/api/webhooks/lead \
    --file webhookserver/testdata/generic-seed.json --scheme StandardWebhooks \
    --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw --id msg_1

Flags:
`

func parseSendFlags(args []string, helpOut, errOut io.Writer) (*sendOptions, error) {
	o := &sendOptions{}
	fs := flag.NewFlagSet("leadhook send", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), sendUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.url, "url", "", "URL to POST to (required), e.g. http://localhost:8080/api/lead")
	fs.StringVar(&o.file, "file", "", "file whose exact bytes are the body (required)")
	fs.StringVar(&o.scheme, "scheme", schemeNone, "signature scheme: TaplinkSHA1, HMACSHA256, StandardWebhooks, Token or none")
	fs.StringVar(&o.secret, "secret", "", "signing key or token (see --secret-file)")
	fs.StringVar(&o.secretFile, "secret-file", "", "file holding the signing key or token (its first non-blank line)")
	fs.StringVar(&o.header, "header", "", "header carrying the signature (HMACSHA256, default X-Signature) or token (Token, default Authorization)")
	fs.StringVar(&o.contentType, "content-type", "application/json", "Content-Type of the body")
	fs.StringVar(&o.id, "id", "", "delivery id: webhook-id for StandardWebhooks (default: random), else sent as Idempotency-Key")
	fs.Int64Var(&o.timestamp, "timestamp", 0, "StandardWebhooks: webhook-timestamp in unix seconds (default: now)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for the answer")
	if err := parseFlags(fs, args, helpOut, errOut); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var errs []error
	if o.url == "" {
		errs = append(errs, errors.New("--url is required"))
	}
	if o.file == "" {
		errs = append(errs, errors.New("--file is required"))
	}
	switch v1alpha1.SignatureScheme(o.scheme) {
	case v1alpha1.SchemeTaplinkSHA1, v1alpha1.SchemeHMACSHA256, v1alpha1.SchemeStandardWebhooks, v1alpha1.SchemeToken:
		if o.secret == "" && o.secretFile == "" {
			errs = append(errs, fmt.Errorf("--scheme %s needs --secret or --secret-file", o.scheme))
		}
	case schemeNone:
		if o.secret != "" || o.secretFile != "" {
			errs = append(errs, errors.New("--secret and --secret-file need a --scheme"))
		}
	default:
		errs = append(errs, fmt.Errorf("--scheme %q is not one of TaplinkSHA1, HMACSHA256, StandardWebhooks, Token, none", o.scheme))
	}
	if o.secret != "" && o.secretFile != "" {
		errs = append(errs, errors.New("give --secret or --secret-file, not both"))
	}
	switch v1alpha1.SignatureScheme(o.scheme) {
	case v1alpha1.SchemeHMACSHA256, v1alpha1.SchemeToken:
	default:
		if o.header != "" {
			errs = append(errs, errors.New("--header applies to the HMACSHA256 and Token schemes only"))
		}
	}
	if o.timestamp != 0 && o.scheme != string(v1alpha1.SchemeStandardWebhooks) {
		errs = append(errs, errors.New("--timestamp applies to the StandardWebhooks scheme only"))
	}
	if o.timestamp < 0 {
		errs = append(errs, errors.New("--timestamp must be unix seconds"))
	}
	return o, errors.Join(errs...)
}

// readSecret is --secret, or the first non-blank line of --secret-file. Errors never carry
// the secret.
func readSecret(o *sendOptions) ([]byte, error) {
	if o.secretFile == "" {
		return []byte(o.secret), nil
	}
	b, err := os.ReadFile(o.secretFile)
	if err != nil {
		return nil, fmt.Errorf("reading --secret-file: %w", err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if line = bytes.TrimSuffix(line, []byte("\r")); len(bytes.TrimSpace(line)) > 0 {
			return line, nil
		}
	}
	return nil, fmt.Errorf("--secret-file %s holds no key", o.secretFile)
}

// sign sets the headers that sign body for o.scheme, and returns a description of them for
// the user (the delivery id, never the secret or the signature).
func sign(o *sendOptions, h http.Header, secret, body []byte, now time.Time) (string, error) {
	switch v1alpha1.SignatureScheme(o.scheme) {
	case v1alpha1.SchemeTaplinkSHA1:
		h.Set(verify.HeaderTaplink, verify.SignTaplinkSHA1(secret, body))
	case v1alpha1.SchemeHMACSHA256:
		name := o.header
		if name == "" {
			name = verify.HeaderSignature
		}
		h.Set(name, verify.SignHMACSHA256(secret, body))
	case v1alpha1.SchemeToken:
		verify.SetToken(h, o.header, string(secret))
	case v1alpha1.SchemeStandardWebhooks:
		key, err := verify.DecodeStandardWebhooksKey(secret)
		if err != nil {
			return "", fmt.Errorf("the secret: %w", err)
		}
		id := o.id
		if id == "" {
			raw := make([]byte, 12)
			if _, err := rand.Read(raw); err != nil {
				return "", fmt.Errorf("making a webhook-id: %w", err)
			}
			id = "msg_" + hex.EncodeToString(raw)
		}
		ts := o.timestamp
		if ts == 0 {
			ts = now.Unix()
		}
		h.Set(verify.HeaderWebhookID, id)
		h.Set(verify.HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
		h.Set(verify.HeaderWebhookSignature, verify.SignStandardWebhooks(key, id, ts, body))
		return fmt.Sprintf("signed with StandardWebhooks, webhook-id %s, webhook-timestamp %d", id, ts), nil
	default:
		return "unsigned", nil
	}
	return "signed with " + o.scheme, nil
}

func runSend(args []string) error {
	o, err := parseSendFlags(args, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	body, err := os.ReadFile(o.file)
	if err != nil {
		return fmt.Errorf("reading --file: %w", err)
	}
	secret, err := readSecret(o)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, o.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	if o.contentType != "" {
		req.Header.Set("Content-Type", o.contentType)
	}
	req.Header.Set("User-Agent", "leadhook-send")
	if o.id != "" && o.scheme != string(v1alpha1.SchemeStandardWebhooks) {
		req.Header.Set("Idempotency-Key", o.id)
	}
	how, err := sign(o, req.Header, secret, body, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "POST %s: %d bytes of %s, %s\n", o.url, len(body), o.file, how)
	client := &http.Client{
		Timeout: o.timeout,
		// A redirect would turn the POST into a GET: report it instead of following it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("posting: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	fmt.Println(resp.Status)
	fmt.Println(strings.TrimRight(string(answer), "\n"))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the answer is %d, not 200", resp.StatusCode)
	}
	return nil
}
