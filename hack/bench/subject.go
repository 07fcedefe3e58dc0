package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// subject is one process under test, started by the driver in a directory of its own.
type subject struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error         // how it exited; read after done
}

// startSubject runs path with args, its stderr (and stdout, unless given) in dir/process.log.
// The process gets SIGTERM if the driver dies, so no subject outlives a crashed run.
func startSubject(name, dir string, stdout io.Writer, path string, args ...string) (*subject, error) {
	s := &subject{name: name, logPath: filepath.Join(dir, "process.log"), done: make(chan struct{})}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("creating log of %s: %w", name, err)
	}
	s.cmd = exec.Command(path, args...)
	s.cmd.Stderr, s.cmd.Stdout = logFile, logFile
	if stdout != nil {
		s.cmd.Stdout = stdout
	}
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := s.cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", name, path, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		_ = logFile.Close()
		close(s.done)
	}()
	return s, nil
}

// exited reports whether the process has ended.
func (s *subject) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// waitReady polls url until it answers 200, the process exits, or timeout passes.
func (s *subject) waitReady(ctx context.Context, url string, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return s.failed(fmt.Errorf("not ready at %s after %v", url, timeout))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return s.failed(fmt.Errorf("exited before it was ready: %v", s.waitErr))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// wait waits for the process to exit by itself, at most timeout.
func (s *subject) wait(ctx context.Context, timeout time.Duration) error {
	select {
	case <-s.done:
		if s.waitErr != nil {
			return s.failed(s.waitErr)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return s.failed(fmt.Errorf("still running after %v", timeout))
	}
}

// stop sends SIGTERM, waits up to 30s for the process to exit (then kills it), and reports
// an exit that was not clean.
func (s *subject) stop() error {
	if s.exited() {
		return nil
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping %s: %w", s.name, err)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return s.failed(errors.New("did not stop within 30s of SIGTERM; killed"))
	}
	if s.waitErr != nil {
		return s.failed(fmt.Errorf("exited badly after SIGTERM: %w", s.waitErr))
	}
	return nil
}

// failed wraps err with the subject's name and the end of its log.
func (s *subject) failed(err error) error {
	return fmt.Errorf("%s: %w\n--- end of %s:\n%s", s.name, err, s.logPath, tail(s.logPath, 20))
}

// tail is the last n lines of a file (or why they cannot be read).
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// peakRSS is a process's peak resident set size in bytes: VmHWM in /proc/<pid>/status
// (pid "self" for this process).
func peakRSS(pid string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, fmt.Errorf("reading peak RSS: %w", err)
	}
	return parseVmHWM(b)
}

// parseVmHWM reads the VmHWM line ("VmHWM:	  123456 kB") of a /proc status file, in bytes.
func parseVmHWM(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmHWM line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing VmHWM: %w", err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// freeAddr is a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	return addr, nil
}
