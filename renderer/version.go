package main

import (
	"runtime"
	"runtime/debug"
)

// versions reports the library versions linked in, read from the build info so
// they can never disagree with go.mod.
func versions() map[string]string {
	out := map[string]string{"go": runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	names := map[string]string{
		"helm.sh/helm/v4":             "helm",
		"sigs.k8s.io/kustomize/api":   "kustomize/api",
		"sigs.k8s.io/kustomize/kyaml": "kustomize/kyaml",
		"k8s.io/apimachinery":         "k8s.io/apimachinery",
	}
	for _, dep := range info.Deps {
		if key, ok := names[dep.Path]; ok {
			out[key] = dep.Version
		}
	}
	return out
}
