package fluxapi

import (
	"context"
	"crypto/ed25519"
	"crypto/md5" // #nosec G501 -- the MD5 fingerprint fluxctl identity prints, not a security check
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxcd/pkg/apis/meta"

	"github.com/helmflux/helmflux/pkg/git"
)

// Keys of the identity Secret: those of a GitSync's SSH credentials
// Secret, so that a GitSync's secretRef can name it as it is.
const (
	IdentityKey = git.SecretKeyIdentity
	IdentityPub = git.SecretKeyIdentityPub
)

// Identity is the operator's own SSH deploy key, kept in a Secret: made
// when first asked for, replaced when regenerated. Its public half is
// what `fluxctl identity` prints, to add as a deploy key to a repository.
type Identity struct {
	// Client reads and writes the Secret.
	Client client.Client
	// Secret names it.
	Secret client.ObjectKey

	mu sync.Mutex
}

// publicKey returns the public half of the identity, making it first, or
// anew when regenerate is set.
func (id *Identity) publicKey(ctx context.Context, regenerate bool) (ssh.PublicKey, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	s := &corev1.Secret{}
	err := id.Client.Get(ctx, id.Secret, s)
	switch {
	case apierrors.IsNotFound(err):
		s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: id.Secret.Namespace, Name: id.Secret.Name,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "helmflux"}}}
		if err := fillKey(s); err != nil {
			return nil, err
		}
		if err := id.Client.Create(ctx, s); err != nil {
			return nil, fmt.Errorf("create the identity Secret %s: %w", id.Secret, err)
		}
	case err != nil:
		return nil, fmt.Errorf("read the identity Secret %s: %w", id.Secret, err)
	case regenerate || len(s.Data[IdentityKey]) == 0:
		if err := fillKey(s); err != nil {
			return nil, err
		}
		if err := id.Client.Update(ctx, s); err != nil {
			return nil, fmt.Errorf("replace the key in the identity Secret %s: %w", id.Secret, err)
		}
	}
	signer, err := ssh.ParsePrivateKey(s.Data[IdentityKey])
	if err != nil {
		return nil, fmt.Errorf("the identity Secret %s holds no valid private key (regenerate it)", id.Secret)
	}
	return signer.PublicKey(), nil
}

// fillKey writes a new ed25519 key pair into s.
func fillKey(s *corev1.Secret) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, "helmflux")
	if err != nil {
		return err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[IdentityKey] = pem.EncodeToMemory(block)
	s.Data[IdentityPub] = ssh.MarshalAuthorizedKey(sshPub)
	return nil
}

// gitRepoConfig answers POST /v9/git-repo-config: the first GitSync's
// repository, its state and the operator's deploy key (regenerated when
// the body is true).
func (s *Server) gitRepoConfig(w http.ResponseWriter, r *http.Request) error {
	var regenerate bool
	if err := json.NewDecoder(r.Body).Decode(&regenerate); err != nil {
		return badRequest("the body must be true or false (regenerate the key): %v", err)
	}
	pub, err := s.Identity.publicKey(r.Context(), regenerate)
	if err != nil {
		return serverError(err)
	}
	cfg := GitConfig{PublicSSHKey: publicKeyOf(pub), Status: GitUnconfigured}
	list, err := s.Writer.gitSyncs(r.Context())
	if err != nil {
		return serverError(err)
	}
	if len(list) > 0 {
		gs := list[0]
		cfg.Remote = GitRemote{URL: displayURL(gs.Spec.URL), Path: strings.Join(gs.Spec.Paths, ",")}
		if ref := gs.Spec.Ref; ref != nil {
			cfg.Remote.Branch = ref.Branch
		}
		cfg.Status = GitNew
		if gs.Status.LastFetchedRevision != "" {
			cfg.Status = GitCloned
		}
		ready := apimeta.FindStatusCondition(gs.Status.Conditions, meta.ReadyCondition)
		switch {
		case ready != nil && ready.Status == metav1.ConditionTrue:
			cfg.Status = GitReady
		case ready != nil && ready.Status == metav1.ConditionFalse && gs.Status.LastFetchedRevision == "":
			cfg.Status, cfg.Error = GitUnreachable, ready.Message
		case ready != nil && ready.Status == metav1.ConditionFalse:
			cfg.Error = ready.Message
		}
	}
	writeJSON(w, http.StatusOK, cfg)
	return nil
}

// displayURL drops userinfo from a URL shown to people.
func displayURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 && scheme != "ssh" {
		rest = rest[at+1:]
	}
	return scheme + "://" + rest
}

// publicKeyOf is the key with its MD5 and SHA-256 fingerprints and their
// randomart, as `ssh-keygen -lv` shows them. Key and pictures end in a
// newline as fluxd's did (it sent ssh-keygen's output): fluxctl identity
// prints them as they come.
func publicKeyOf(pub ssh.PublicKey) PublicKey {
	raw := pub.Marshal()
	md := md5.Sum(raw) // #nosec G401 -- display fingerprint
	sha := sha256.Sum256(raw)
	bits := keyBits(pub)
	return PublicKey{
		Key: string(ssh.MarshalAuthorizedKey(pub)), // one line, ended by "\n"
		Fingerprints: map[string]Fingerprint{
			"md5":    {Hash: "MD5:" + colonHex(md[:]), Randomart: randomart(md[:], pub.Type(), bits, "MD5") + "\n"},
			"sha256": {Hash: "SHA256:" + base64.RawStdEncoding.EncodeToString(sha[:]), Randomart: randomart(sha[:], pub.Type(), bits, "SHA256") + "\n"},
		},
	}
}

func keyBits(pub ssh.PublicKey) int {
	if pub.Type() == ssh.KeyAlgoED25519 {
		return 256
	}
	return 0
}

func colonHex(b []byte) string {
	h := hex.EncodeToString(b)
	parts := make([]string, 0, len(b))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// randomart draws OpenSSH's "drunken bishop" picture of a fingerprint
// (written by hand after OpenSSH's description; no Go library has it): a
// bishop starts in the middle of a 17×9 board and makes four moves per
// byte, two bits each, lowest first; each square shows how often it was
// visited, S the start and E the end.
func randomart(digest []byte, keyType string, bits int, hashName string) string {
	const w, h = 17, 9
	const symbols = " .o+=*BOX@%&#/^"
	var field [w][h]int
	x, y := w/2, h/2
	for _, b := range digest {
		for range 4 {
			if b&1 != 0 {
				x++
			} else {
				x--
			}
			if b&2 != 0 {
				y++
			} else {
				y--
			}
			x, y = max(0, min(x, w-1)), max(0, min(y, h-1))
			if field[x][y] < len(symbols)-1 {
				field[x][y]++
			}
			b >>= 2
		}
	}
	name := strings.ToUpper(strings.TrimPrefix(keyType, "ssh-"))
	var sb strings.Builder
	sb.WriteString(frame(fmt.Sprintf("[%s %d]", name, bits), w) + "\n")
	for j := range h {
		sb.WriteString("|")
		for i := range w {
			switch {
			case i == w/2 && j == h/2:
				sb.WriteByte('S')
			case i == x && j == y:
				sb.WriteByte('E')
			default:
				sb.WriteByte(symbols[field[i][j]])
			}
		}
		sb.WriteString("|\n")
	}
	sb.WriteString(frame("["+hashName+"]", w))
	return sb.String()
}

// frame is a border line of width w with title in its middle.
func frame(title string, w int) string {
	if len(title) > w {
		title = title[:w]
	}
	left := (w - len(title)) / 2
	return "+" + strings.Repeat("-", left) + title + strings.Repeat("-", w-len(title)-left) + "+"
}
