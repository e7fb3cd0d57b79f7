package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/helmflux/helmflux/api/fluxd"
)

func (a *app) gitConfig(ctx context.Context, regenerate bool) (fluxd.GitConfig, error) {
	var gc fluxd.GitConfig
	err := a.post(ctx, "/v9/git-repo-config", regenerate, &gc)
	return gc, err
}

func (a *app) syncCmd() *cobra.Command {
	var output string
	var cause causeFlags
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Fetch the repository now and wait until its head is applied; print the revision",
		Example: `  helmflux sync
  rev=$(helmflux sync 2>/dev/null)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx := cmd.Context()
			gc, err := a.gitConfig(ctx, false)
			if err != nil {
				return err
			}
			if gc.Status != fluxd.GitReady {
				msg := fmt.Sprintf("the repository %s is %s", gc.Remote.URL, gc.Status)
				if gc.Error != "" {
					msg += ": " + gc.Error
				}
				return withCode(exitFailed, errors.New(msg+" (the GitSync's status says more: kubectl describe gitsync)"))
			}
			fmt.Fprintf(a.errOut, "Synchronizing with %s\n", gc.Remote.URL)
			res, err := a.runJob(ctx, fluxd.UpdateSync, cause.cause(), struct{}{})
			if err != nil {
				return err
			}
			if res.Revision == "" {
				return withCode(exitFailed, errors.New("the sync job named no revision"))
			}
			fmt.Fprintf(a.errOut, "Revision of %s to apply is %s\n", gc.Remote.Branch, shortHash(res.Revision))
			fmt.Fprintf(a.errOut, "Waiting for %s to be applied ...\n", shortHash(res.Revision))
			if err := a.awaitApplied(ctx, res.Revision); err != nil {
				return err
			}
			fmt.Fprintln(a.errOut, "Done.")
			if output == "json" {
				return writeJSON(a.out, map[string]string{"url": gc.Remote.URL, "branch": gc.Remote.Branch, "revision": res.Revision})
			}
			_, err = fmt.Fprintln(a.out, res.Revision)
			return err
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func (a *app) identityCmd() *cobra.Command {
	var regenerate, fingerprint, visual bool
	var output string
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Print the operator's SSH public key, the deploy key to give the git host write access with",
		Example: `  helmflux identity
  helmflux identity -l -v
  helmflux identity --regenerate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			gc, err := a.gitConfig(cmd.Context(), regenerate)
			if err != nil {
				return err
			}
			key := gc.PublicSSHKey
			if key.Key == "" {
				return withCode(exitFailed, errors.New("the operator has no SSH identity: run it with --git-identity-secret"))
			}
			if output == "json" {
				return writeJSON(a.out, key)
			}
			if !fingerprint && !visual {
				_, err = fmt.Fprintln(a.out, strings.TrimSpace(key.Key))
				return err
			}
			fp, ok := key.Fingerprints["md5"]
			if !ok {
				return withCode(exitFailed, errors.New("the operator sent no md5 fingerprint"))
			}
			_, err = io.WriteString(a.out, fingerprintText(fp, visual))
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&regenerate, "regenerate", "r", false, "make a new key (the old one stops working: give the git host the new one)")
	f.BoolVarP(&fingerprint, "fingerprint", "l", false, "print the key's MD5 fingerprint instead")
	f.BoolVarP(&visual, "visual", "v", false, "print the fingerprint's picture too (implies -l, as in fluxctl)")
	outputFlag(cmd, &output)
	return cmd
}

// fingerprintText is what identity -l prints: the fingerprint, and with
// visual its picture, as ssh-keygen -lv shows them, every line ended once.
func fingerprintText(fp fluxd.Fingerprint, visual bool) string {
	text := strings.TrimSpace(fp.Hash) + "\n"
	if art := strings.TrimRight(fp.Randomart, "\n"); visual && art != "" {
		text += art + "\n"
	}
	return text
}

// saved is what save keeps of an object: what a person would write.
type saved struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   savedMeta      `json:"metadata"`
	Spec       map[string]any `json:"spec,omitempty"`
	Data       map[string]any `json:"data,omitempty"`
	BinaryData map[string]any `json:"binaryData,omitempty"`
}

type savedMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// kindAbbrev names files as fluxctl save did: <name>-<abbrev>.yaml.
var kindAbbrev = map[string]string{
	"Deployment": "dep", "DaemonSet": "ds", "StatefulSet": "sts", "Service": "svc", "ConfigMap": "cm",
	"CronJob": "cj", "Job": "job", "Namespace": "ns", "ServiceAccount": "sa", "Ingress": "ing",
	"HelmRelease": "hr", "PersistentVolumeClaim": "pvc", "Role": "role", "RoleBinding": "rb",
	"ClusterRole": "cr", "ClusterRoleBinding": "crb",
}

func (a *app) saveCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "save",
		Short: "Print the cluster's objects of the synced repositories as YAML, or write them to files",
		Long: `save prints the objects the operator applied from git as YAML documents, cut
to apiVersion, kind, metadata (name, namespace, labels, annotations) and
spec or data: no status, no metadata the cluster set, never a Secret. The
spec is the cluster's, so it holds the defaults the API server filled in.
With --out, each goes to <dir>/<namespace>/<name>-<kind>.yaml.`,
		Example: `  helmflux save > cluster.yaml
  helmflux save --out ./backup`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var b64 string
			if err := a.get(cmd.Context(), "/v6/export", nil, &b64); err != nil {
				return err
			}
			raw, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				return fmt.Errorf("the export does not decode: %w", err)
			}
			return a.save(raw, dir)
		},
	}
	cmd.Flags().StringVarP(&dir, "out", "o", "-", "a directory to write one file per object to; - prints to standard output")
	return cmd
}

func (a *app) save(raw []byte, dir string) error {
	for _, doc := range bytes.Split(raw, []byte("\n---")) {
		if len(bytes.TrimSpace(doc)) == 0 || strings.TrimSpace(string(doc)) == "---" {
			continue
		}
		var obj saved
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return fmt.Errorf("a document of the export does not parse: %w", err)
		}
		if obj.Kind == "" || obj.Kind == "Secret" {
			continue
		}
		out, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		if dir == "-" {
			if _, err := fmt.Fprintf(a.out, "---\n%s", out); err != nil {
				return err
			}
			continue
		}
		if err := a.saveFile(dir, obj, out); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) saveFile(dir string, obj saved, out []byte) error {
	abbrev := kindAbbrev[obj.Kind]
	if abbrev == "" {
		abbrev = strings.ToLower(obj.Kind)
	}
	for _, part := range []string{obj.Metadata.Namespace, obj.Metadata.Name} {
		if strings.ContainsAny(part, `/\`) || part == ".." {
			return fmt.Errorf("the export names an object %q that is no file name", part)
		}
	}
	sub := filepath.Join(dir, obj.Metadata.Namespace)
	if err := os.MkdirAll(sub, 0o750); err != nil {
		return err
	}
	path := filepath.Join(sub, obj.Metadata.Name+"-"+abbrev+".yaml")
	fmt.Fprintf(a.out, "Saving %s '%s' to %s\n", obj.Kind, obj.Metadata.Name, path)
	return writeFile(path, out)
}

func writeFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640) // #nosec G302 G304 -- the user's --out directory; manifests without Secrets, readable by the group as git checkouts are
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, bytes.NewReader(data)); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
