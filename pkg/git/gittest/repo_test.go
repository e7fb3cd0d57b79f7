package gittest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// TestOccurrencesFindsEveryPushedObject: a secret in a file, a file name or
// a commit message is found, also after the branch no longer reaches the
// commit (a force push does not unsend it), and nothing else is reported.
func TestOccurrencesFindsEveryPushedObject(t *testing.T) {
	const canary = "canary-Occur-71c3"
	repo := NewRepo(t, map[string]string{"a.txt": "clean\n"})
	clean := repo.Head()
	if got := repo.Occurrences(canary); len(got) != 0 {
		t.Fatalf("found in a clean repository: %v", got)
	}
	repo.CommitFiles("leaks "+canary, map[string]string{"b.txt": "password: " + canary + "\n", canary + ".txt": "x\n"})
	repo.ResetHard(clean)
	repo.Commit("force-pushed over the leak")
	got := strings.Join(repo.Occurrences(canary), "\n")
	for _, want := range []string{"commit message of", "blob", "tree entry name in"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q among the occurrences:\n%s", want, got)
		}
	}
}

func TestPrivateArmoredIsEncryptedWithThePassphrase(t *testing.T) {
	key := NewOpenPGPKey(t, "signer")
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(key.PrivateArmored(t, "pass-phrase")))
	if err != nil || len(ring) != 1 || ring[0].PrivateKey == nil {
		t.Fatalf("read back: %d keys, %v", len(ring), err)
	}
	if !ring[0].PrivateKey.Encrypted {
		t.Fatal("the key is not encrypted")
	}
	if err := ring[0].DecryptPrivateKeys([]byte("wrong")); err == nil {
		t.Fatal("a wrong passphrase decrypted the key")
	}
	if err := ring[0].DecryptPrivateKeys([]byte("pass-phrase")); err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	if key.Entity.PrivateKey.Encrypted {
		t.Fatal("the key the test signs with was encrypted too")
	}
	plain, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(key.PrivateArmored(t, "")))
	if err != nil || plain[0].PrivateKey.Encrypted {
		t.Fatalf("without a passphrase: %v", err)
	}
}
