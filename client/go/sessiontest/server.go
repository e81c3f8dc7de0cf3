// Package sessiontest starts the real sessiontoken-server binary for tests: on 127.0.0.1
// with a port it picks, in a fresh temporary data directory with a random KEK, stopped with
// SIGTERM. The binary is $SESSIONTOKEN_SERVER (ctest sets it).
package sessiontest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var listenRE = regexp.MustCompile(`^sessiontoken-server listening on (127\.0\.0\.1:\d+)$`)

// Server is a running sessiontoken-server.
type Server struct {
	Address string // 127.0.0.1:port
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

func init() {
	// Never let a proxy from the environment see loopback traffic.
	for _, v := range []string{"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy", "all_proxy", "ALL_PROXY"} {
		os.Unsetenv(v)
	}
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv("SESSIONTOKEN_SERVER")
	if bin == "" {
		t.Fatal("SESSIONTOKEN_SERVER is not set (ctest sets it; by hand: " +
			"SESSIONTOKEN_SERVER=build/release/server/sessiontoken-server go test ...)")
	}
	dir := t.TempDir()
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	kekFile := filepath.Join(dir, "kek.hex")
	if err := os.WriteFile(kekFile, []byte(hex.EncodeToString(kek)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{logPath: filepath.Join(dir, "server.log"), done: make(chan struct{})}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	s.cmd = exec.Command(bin, "--listen=127.0.0.1:0", "--data_dir="+filepath.Join(dir, "data"),
		"--kek_file="+kekFile)
	s.cmd.Stderr = logFile
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SESSIONTOKEN_KEK=") {
			env = append(env, e)
		}
	}
	s.cmd.Env = env
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	go func() { s.cmd.Wait(); close(s.done) }()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() { // drain
		}
	}()
	select {
	case line, ok := <-lines:
		m := listenRE.FindStringSubmatch(line)
		if !ok || m == nil {
			s.Stop()
			t.Fatalf("server did not announce its port (first line %q):\n%s", line, s.Log())
		}
		s.Address = m[1]
	case <-time.After(15 * time.Second):
		s.Stop()
		t.Fatalf("server did not announce its port within 15 s:\n%s", s.Log())
	}
	return s
}

// Stop sends SIGTERM and waits for the exit (SIGKILL after 15 s). Idempotent.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Log returns what the server wrote to stderr.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}
