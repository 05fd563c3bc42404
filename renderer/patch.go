package main

import (
	"fmt"
	"regexp"
	"strings"

	"sigs.k8s.io/kustomize/api/hasher"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/kio"
)

// patchFile is one file of strategic-merge patches, applied in order.
type patchFile struct {
	File    string `json:"file"`
	Content string `json:"content"`
}

// patched is the answer to a patch request: the objects that remain, in their
// input order, each as YAML, and the index in the input each one came from.
type patched struct {
	manifests string
	sources   []int
}

// renderPatch applies strategic-merge patches to objects the way `kustomize build`
// applies a kustomization's `patches: [{path: ...}]` entries: each patch document is
// handed to kustomize's own Resource.ApplySmPatch (the call its PatchTransformer
// makes), so merge keys come from kustomize's built-in Kubernetes schema, objects of
// kinds it has no schema for (custom resources) have their lists replaced, and
// `$patch: delete|replace` and `$setElementOrder` directives behave as there.
//
// Only the choice of target differs, on purpose: a patch matches an object by API
// group, kind and name (the version does not count), and by namespace only when the
// patch sets one, an object without namespace being in `namespace` (the bundle's
// default). A patch that matches nothing, or several objects, is an error naming its
// file and line. The patch's apiVersion is set to its target's before merging, as
// kustomize does for targeted patches, so a patch never changes an object's version.
//
// Objects keep the style of their scalars (a plain `${values.replicas}` stays plain):
// they are written from kustomize's YAML nodes, not through JSON as `kustomize build`
// prints them, because Flotilla's variables read a plain scalar as typed.
func renderPatch(resources string, namespace string, files []patchFile) (*patched, error) {
	rf := resource.NewFactory(&hasher.Hasher{})
	nodes, err := kio.FromBytes([]byte(resources))
	if err != nil {
		return nil, &renderError{Message: fmt.Sprintf("resources: %v", err)}
	}
	starts, err := documentLines(resources)
	if err != nil || len(starts) != len(nodes) {
		starts = nil
	}
	objects := make([]*resource.Resource, len(nodes))
	for i, n := range nodes {
		// One document at a time so that indexes stay those of the input: the
		// factory would expand a FooList or skip an empty document.
		res, err := rf.FromBytes([]byte(n.MustString()))
		if err != nil {
			// No file: the line is one of `resources`.
			re := &renderError{Message: fmt.Sprintf("object %d of the resources: %v", i, err)}
			if starts != nil {
				re.Line = starts[i]
			}
			return nil, re
		}
		objects[i] = res
	}
	for _, f := range files {
		lines, err := documentLines(f.Content)
		if err != nil {
			return nil, &renderError{Message: fmt.Sprintf("%s: %v", f.File, err), File: f.File}
		}
		patches, err := rf.SliceFromBytes([]byte(f.Content))
		if err != nil {
			return nil, &renderError{Message: fmt.Sprintf("%s: %v", f.File, err), File: f.File}
		}
		if len(patches) != len(lines) {
			return nil, &renderError{
				Message: fmt.Sprintf("%s: kind: List is not supported in patches; write each patch as its own document", f.File),
				File:    f.File,
			}
		}
		for k, p := range patches {
			line := lines[k]
			target, err := findTarget(objects, p, namespace)
			if err != nil {
				return nil, &renderError{Message: err.Error(), File: f.File, Line: line}
			}
			what := describe(target.GetGvk().Group, target.GetKind(), target.GetNamespace(), target.GetName())
			p.SetGvk(target.GetGvk())
			if err := target.ApplySmPatch(p); err != nil {
				// kyaml appends the offending node's YAML on further lines; the
				// first line says what is wrong.
				msg, _, _ := strings.Cut(err.Error(), "\n")
				msg = strings.TrimSuffix(msg, ": node contents:")
				return nil, &renderError{Message: fmt.Sprintf("patch of %s: %s", what, msg), File: f.File, Line: line}
			}
		}
	}
	var out strings.Builder
	result := &patched{sources: []int{}}
	for i, res := range objects {
		if res.IsNilOrEmpty() {
			continue
		}
		res.RemoveBuildAnnotations()
		text, err := res.RNode.String()
		if err != nil {
			return nil, err
		}
		if len(result.sources) > 0 {
			out.WriteString("---\n")
		}
		out.WriteString(text)
		result.sources = append(result.sources, i)
	}
	result.manifests = out.String()
	return result, nil
}

// findTarget is the one object a patch names: same API group, kind and name, and
// the patch's namespace if it sets one. Objects deleted by an earlier patch are gone.
func findTarget(objects []*resource.Resource, p *resource.Resource, namespace string) (*resource.Resource, error) {
	group, kind, name, ns := p.GetGvk().Group, p.GetKind(), p.GetName(), p.GetNamespace()
	var found []*resource.Resource
	for _, o := range objects {
		if o.IsNilOrEmpty() || o.GetGvk().Group != group || o.GetKind() != kind || o.GetName() != name {
			continue
		}
		objNs := o.GetNamespace()
		if objNs == "" {
			objNs = namespace
		}
		if ns != "" && objNs != ns {
			continue
		}
		found = append(found, o)
	}
	what := describe(group, kind, ns, name)
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("patch target %s not found", what)
	case 1:
		return found[0], nil
	default:
		return nil, fmt.Errorf("patch target %s is ambiguous (several namespaces); set metadata.namespace in the patch", what)
	}
}

// describe shows an object as kubectl does: `Deployment.apps "web/frontend"`.
func describe(group, kind, namespace, name string) string {
	gk := kind
	if group != "" {
		gk = kind + "." + group
	}
	if namespace != "" {
		name = namespace + "/" + name
	}
	return fmt.Sprintf("%s %q", gk, name)
}

// documentSeparator is how kustomize's reader (kyaml's kio.ByteReader) splits a
// YAML stream into documents.
var documentSeparator = regexp.MustCompile(`\n---.*\n`)

// documentLines is the line (1-based) where each non-empty document of a YAML
// stream starts (the line of its first key), counted in the whole stream: kyaml
// decodes each document on its own, so its nodes' lines are relative to it.
func documentLines(content string) ([]int, error) {
	s := strings.ReplaceAll(content, "\r\n", "\n")
	starts := []int{0}
	for _, loc := range documentSeparator.FindAllStringIndex(s, -1) {
		starts = append(starts, loc[1])
	}
	var lines []int
	for i, start := range starts {
		end := len(s)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		nodes, err := kio.FromBytes([]byte(s[start:end]))
		if err != nil {
			return nil, err
		}
		for _, n := range nodes {
			if !n.IsNilOrEmpty() {
				lines = append(lines, strings.Count(s[:start], "\n")+n.YNode().Line)
			}
		}
	}
	return lines, nil
}
