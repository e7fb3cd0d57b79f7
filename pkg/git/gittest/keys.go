package gittest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"golang.org/x/crypto/ssh"
)

func armorPublic(t testing.TB, e *openpgp.Entity) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatalf("armor: %v", err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatalf("serialize public key: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("armor: %v", err)
	}
	return buf.String() + "\n"
}

// SSHKey is an SSH client key pair generated for a test.
type SSHKey struct {
	// PrivatePEM is the OpenSSH private key, encrypted if a passphrase was
	// given: what a Secret's "identity" holds.
	PrivatePEM []byte
	// Public is the public half, for SSHServer's authorized keys.
	Public ssh.PublicKey
}

// NewSSHKey generates an ed25519 client key, encrypted with passphrase unless
// it is empty.
func NewSSHKey(t testing.TB, passphrase string) *SSHKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate ssh key: %v", err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "gittest")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "gittest", []byte(passphrase))
	}
	if err != nil {
		t.Fatalf("marshal ssh key: %v", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatalf("ssh public key: %v", err)
	}
	return &SSHKey{PrivatePEM: pem.EncodeToMemory(block), Public: sshPub}
}

// PrivateArmored returns the armored private key, encrypted with passphrase
// unless it is empty: what a writeBack.signingKey Secret's git.asc holds.
// k itself stays unencrypted, so it can still sign.
func (k *OpenPGPKey) PrivateArmored(t testing.TB, passphrase string) []byte {
	t.Helper()
	var plain bytes.Buffer
	if err := k.Entity.SerializePrivate(&plain, nil); err != nil {
		t.Fatalf("serialize private key: %v", err)
	}
	if passphrase == "" {
		return armorPrivate(t, plain.Bytes())
	}
	// Encrypt a copy, read back from the serialised key.
	ring, err := openpgp.ReadKeyRing(bytes.NewReader(plain.Bytes()))
	if err != nil || len(ring) != 1 {
		t.Fatalf("read back private key: %d keys, %v", len(ring), err)
	}
	if err := ring[0].EncryptPrivateKeys([]byte(passphrase), nil); err != nil {
		t.Fatalf("encrypt private key: %v", err)
	}
	var enc bytes.Buffer
	if err := ring[0].SerializePrivateWithoutSigning(&enc, nil); err != nil {
		t.Fatalf("serialize encrypted private key: %v", err)
	}
	return armorPrivate(t, enc.Bytes())
}

func armorPrivate(t testing.TB, key []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatalf("armor: %v", err)
	}
	if _, err := w.Write(key); err != nil {
		t.Fatalf("armor: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("armor: %v", err)
	}
	return append(buf.Bytes(), '\n')
}
