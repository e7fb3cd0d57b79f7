package gittest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHServer serves the bare repositories under a root over SSH on
// 127.0.0.1, authenticating clients by public key and running the real
// git-upload-pack / git-receive-pack for exec requests.
type SSHServer struct {
	t          testing.TB
	root       string
	gitBin     string
	listener   net.Listener
	hostKey    ssh.Signer
	config     *ssh.ServerConfig
	authorized [][]byte

	ctx    context.Context //nolint:containedctx // the server's lifetime, cancelled at cleanup
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}

	logins atomic.Int64
}

// NewSSHServer starts an SSH git server for the bare repositories under root
// that accepts the given client public keys, and stops it when the test
// ends. Paths in requests are resolved under root ("/repo.git" and
// "repo.git" alike); anything else is refused.
func NewSSHServer(t testing.TB, root string, authorized ...ssh.PublicKey) *SSHServer {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("gittest: the SSH server needs the git binary: %v", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate host key: %v", err)
	}
	hostKey, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("host key: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &SSHServer{t: t, root: root, gitBin: gitBin, listener: l, hostKey: hostKey, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	for _, k := range authorized {
		s.authorized = append(s.authorized, k.Marshal())
	}
	s.config = &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			for _, a := range s.authorized {
				if bytes.Equal(a, key.Marshal()) {
					s.logins.Add(1)
					return &ssh.Permissions{}, nil
				}
			}
			return nil, errors.New("unknown public key")
		},
	}
	s.config.AddHostKey(hostKey)
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

// Addr is the server's host:port.
func (s *SSHServer) Addr() string { return s.listener.Addr().String() }

// URL is the ssh:// URL of the repository called name.
func (s *SSHServer) URL(name string) string { return "ssh://git@" + s.Addr() + "/" + name }

// HostKey is the server's public host key.
func (s *SSHServer) HostKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// KnownHosts is a known_hosts line for this server ("[127.0.0.1]:port").
func (s *SSHServer) KnownHosts() []byte {
	return []byte(knownhosts.Line([]string{s.Addr()}, s.HostKey()) + "\n")
}

// Logins counts successful public-key authentications.
func (s *SSHServer) Logins() int64 { return s.logins.Load() }

func (s *SSHServer) close() {
	s.cancel()
	_ = s.listener.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *SSHServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.listener.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
			}()
			s.handleConn(c)
		}()
	}
}

func (s *SSHServer) handleConn(c net.Conn) {
	sc, chans, reqs, err := ssh.NewServerConn(c, s.config)
	if err != nil {
		return
	}
	defer func() { _ = sc.Close() }()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handleSession(ch, creqs)
		}()
	}
}

func (s *SSHServer) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer func() { _ = ch.Close() }()
	for req := range reqs {
		switch req.Type {
		case "env":
			_ = req.Reply(true, nil)
		case "exec":
			var payload struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
				_ = req.Reply(false, nil)
				return
			}
			cmd, err := s.command(payload.Command)
			if err != nil {
				_ = req.Reply(false, nil)
				_, _ = fmt.Fprintf(ch.Stderr(), "gittest: %v\n", err)
				s.exit(ch, 128)
				return
			}
			_ = req.Reply(true, nil)
			s.exit(ch, s.run(cmd, ch))
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

// command maps "git-upload-pack '/repo.git'" to a git command under root.
func (s *SSHServer) command(line string) (*exec.Cmd, error) {
	verb, arg, ok := strings.Cut(line, " ")
	if !ok {
		return nil, fmt.Errorf("unsupported command %q", line)
	}
	var sub string
	switch verb {
	case "git-upload-pack":
		sub = "upload-pack"
	case "git-receive-pack":
		sub = "receive-pack"
	default:
		return nil, fmt.Errorf("unsupported command %q", verb)
	}
	arg = strings.TrimSpace(arg)
	if len(arg) >= 2 && arg[0] == '\'' && arg[len(arg)-1] == '\'' {
		arg = arg[1 : len(arg)-1]
	}
	rel := strings.TrimPrefix(path.Clean("/"+arg), "/")
	if rel == "" || strings.ContainsAny(rel, "'\\\x00") {
		return nil, fmt.Errorf("bad repository path %q", arg)
	}
	dir := filepath.Join(s.root, filepath.FromSlash(rel))
	cmd := exec.CommandContext(s.ctx, s.gitBin, sub, dir) //nolint:gosec // test server: fixed binary, path confined to root
	cmd.Env = append([]string{"HOME=" + s.root, "PATH=/usr/bin:/bin"}, gitConfigEnv(map[string]string{"safe.directory": "*"})...)
	return cmd, nil
}

func (s *SSHServer) run(cmd *exec.Cmd, ch ssh.Channel) uint32 {
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 128
	}
	if err := cmd.Start(); err != nil {
		return 128
	}
	go func() {
		_, _ = io.Copy(stdin, ch)
		_ = stdin.Close()
	}()
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return uint32(ee.ExitCode()) //nolint:gosec // exit codes are 0..255
		}
		return 128
	}
	return 0
}

func (s *SSHServer) exit(ch ssh.Channel, code uint32) {
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{code}))
}
