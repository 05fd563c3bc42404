package main

import (
	"fmt"
	"path"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// mountPoint is where the request's files sit in the in-memory file system. Not
// "/": there, "../.." past the top is clamped back into the tree and could reach a
// file the kustomization has no business with. Under a mount point, anything above
// the given files is simply absent.
const mountPoint = "/bundle"

// renderKustomize does what `kustomize build DIR` does (kustomize/v5
// commands/build), with the options that command defaults to: root-only load
// restrictions, no plugins, no exec functions, no Helm inflation, and the reorder
// left unspecified (legacy order unless the kustomization's sortOptions say
// otherwise).
func renderKustomize(dir string, files map[string][]byte) (string, error) {
	fSys := filesys.MakeFsInMemory()
	for _, name := range sortedNames(files) {
		if err := fSys.WriteFile(path.Join(mountPoint, name), files[name]); err != nil {
			return "", err
		}
	}
	clean := path.Clean(strings.TrimPrefix(dir, "/"))
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", &renderError{Message: fmt.Sprintf("kustomization dir %q is outside the given files", dir)}
	}
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionUnspecified
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.PluginConfig = types.DisabledPluginConfig()
	opts.PluginConfig.HelmConfig.Enabled = false
	k := krusty.MakeKustomizer(opts)
	m, err := k.Run(fSys, path.Join(mountPoint, clean))
	if err != nil {
		return "", &renderError{Message: strings.ReplaceAll(err.Error(), mountPoint+"/", "")}
	}
	out, err := m.AsYaml()
	if err != nil {
		return "", err
	}
	return string(out), nil
}
