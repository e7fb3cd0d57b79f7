package manifest

import "testing"

func TestIsRemote(t *testing.T) {
	tests := []struct {
		ref  string
		want bool
	}{
		{"https://example.com/x.yaml", true},
		{"http://127.0.0.1:8080/x", true},
		{"HTTP://EXAMPLE.COM/X", true},
		{"http:relative", true},
		{" https://example.com/x", true},
		{"git::../local", true},
		{"GIT::https://example.com/r", true},
		{"ssh://git@example.com/r", true},
		{"file:///etc", true},
		{"s3://bucket/x", true},
		{"git@github.com:org/repo", true},
		{"user-1@host:repo", true},
		{"github.com/org/repo//dir?ref=v1", true},
		{"GitHub.com:org/repo", true},
		{"", false},
		{"deployment.yaml", false},
		{"../base", false},
		{"./overlays/prod", false},
		{"dir/with:colon.yaml", false},
		{"key=value.txt", false},
		{"gitlab/config", false},
		{"1user@host.yaml", false},
		{"apiVersion: builtin\nkind: PatchTransformer\nmetadata:\n  annotations:\n    docs: https://example.com\n", false},
		{`{"apiVersion": "v1", "metadata": {"annotations": {"u": "https://x"}}}`, false},
	}
	for _, tt := range tests {
		if got := isRemote(tt.ref); got != tt.want {
			t.Errorf("isRemote(%q) = %v, want %v", tt.ref, got, tt.want)
		}
	}
}

func TestCheckKustomizeInput(t *testing.T) {
	tests := []struct {
		name, file, data string
		refused          bool
	}{
		{"local kustomization", "kustomization.yaml", "resources: [a.yaml, ../base]\npatches:\n- path: p.yaml\n", false},
		{"URL in an annotation is data", "kustomization.yaml", "commonAnnotations:\n  docs: https://example.com\nresources: [a.yaml]\n", false},
		{"inline patch mentioning a URL", "kustomization.yaml", "patches:\n- patch: |-\n    - op: add\n      path: /metadata/annotations/u\n      value: https://example.com\n", false},
		{"inline transformer with a URL in data", "kustomization.yaml", "transformers:\n- |\n  apiVersion: builtin\n  kind: AnnotationsTransformer\n  metadata:\n    name: a\n  annotations:\n    docs: https://example.com\n  fieldSpecs: [{path: metadata/annotations, create: true}]\n", false},
		{"inline transformer with a remote path", "kustomization.yaml", "transformers:\n- |\n  apiVersion: builtin\n  kind: PatchTransformer\n  metadata:\n    name: p\n  path: https://example.com/p.yaml\n", true},
		{"Kustomization file name", "Kustomization", "resources: [https://example.com/x.yaml]\n", true},
		{"yml file name", "kustomization.yml", "resources: [github.com/org/repo]\n", true},
		{"malformed kustomization is left to kustomize", "kustomization.yaml", "resources: [\n", false},
		{"plain resource with a path field", "ingress.yaml", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nspec:\n  rules:\n  - http:\n      paths:\n      - path: https://not-a-plugin\n", false},
		{"builtin plugin after other documents", "t.yaml", "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: builtin\nkind: ReplacementTransformer\nmetadata:\n  name: r\nreplacements:\n- path: https://example.com/r.yaml\n", true},
		{"builtin plugin with local paths", "t.yaml", "apiVersion: builtin\nkind: PatchTransformer\nmetadata:\n  name: p\npath: patch.yaml\n", false},
		{"unparsable builtin plugin fails closed", "t.yaml", "apiVersion: builtin\nkind: [\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkKustomizeInput(tt.file, []byte(tt.data))
			if (err != nil) != tt.refused {
				t.Fatalf("checkKustomizeInput: %v, refused want %v", err, tt.refused)
			}
		})
	}
}
