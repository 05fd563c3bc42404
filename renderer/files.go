package main

import (
	"encoding/base64"
	"fmt"
	"path"
	"sort"
	"strings"
)

// decodeFiles turns the request's base64 contents into bytes keyed by a clean,
// slash-separated, relative path. Paths that climb out of the tree are refused
// here, before any library sees them.
func decodeFiles(in map[string]string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(in))
	for name, b64 := range in {
		clean := path.Clean(strings.TrimPrefix(name, "/"))
		if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
			return nil, &renderError{Message: fmt.Sprintf("file path %q is outside the given tree", name), File: name}
		}
		data, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, &renderError{Message: fmt.Sprintf("file %q: invalid base64: %v", name, err), File: name}
		}
		out[clean] = data
	}
	return out, nil
}

// sortedNames gives a stable order, so loading is deterministic.
func sortedNames(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
