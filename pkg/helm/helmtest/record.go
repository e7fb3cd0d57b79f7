package helmtest

import (
	"fmt"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ForgeRecord rewrites the newest storage record (Secret) of a release in
// place, with Helm's own Secrets driver, as anyone who may write Secrets in
// the release's namespace could: edit changes the decoded manifest. The
// record keeps its revision, status and labels.
func ForgeRecord(cfg *rest.Config, namespace, name string, edit func(manifest string) string) error {
	return editNewest(cfg, namespace, name, func(r *release.Release) { r.Manifest = edit(r.Manifest) })
}

// ForgeHook adds a hook to the newest storage record of a release, as
// ForgeRecord forges its manifest: manifest is one document, event a Helm
// hook event ("pre-delete", "pre-rollback", "test", ...). restore puts the
// record's hooks back as they were.
func ForgeHook(cfg *rest.Config, namespace, name, event, manifest string) (restore func() error, err error) {
	var original []*release.Hook
	err = editNewest(cfg, namespace, name, func(r *release.Release) {
		original = r.Hooks
		r.Hooks = append(append([]*release.Hook{}, r.Hooks...), &release.Hook{
			Name: "forged-" + event, Kind: "Forged", Path: "app/templates/forged-hook.yaml", Manifest: manifest,
			Events: []release.HookEvent{release.HookEvent(event)},
		})
	})
	if err != nil {
		return nil, err
	}
	return func() error {
		return editNewest(cfg, namespace, name, func(r *release.Release) { r.Hooks = original })
	}, nil
}

func editNewest(cfg *rest.Config, namespace, name string, edit func(*release.Release)) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	d := driver.NewSecrets(cs.CoreV1().Secrets(namespace))
	rels, err := d.Query(map[string]string{"name": name, "owner": "helm"})
	if err != nil {
		return fmt.Errorf("read the records of %s/%s: %w", namespace, name, err)
	}
	var newest *release.Release
	for _, r := range rels {
		if newest == nil || r.Version > newest.Version {
			newest = r
		}
	}
	edit(newest)
	key := fmt.Sprintf("sh.helm.release.v1.%s.v%d", name, newest.Version)
	if err := d.Update(key, newest); err != nil {
		return fmt.Errorf("write record %s: %w", key, err)
	}
	return nil
}
