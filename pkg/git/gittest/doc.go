// Package gittest provides real git remotes for tests: repositories built
// with go-git in t.TempDir() (optionally with OpenPGP-signed commits), a
// smart-HTTP server running `git http-backend` with optional basic or bearer
// auth, and an SSH server with public-key auth that runs git-upload-pack and
// git-receive-pack. The servers exec the real git binary so that pkg/git is
// tested against the implementation it meets in the wild, not against
// go-git talking to itself; they listen on loopback only.
//
// It exists so that pkg/git, the GitSync controller tests and the end-to-end
// suite share one set of fixtures. Import it from tests only.
package gittest
