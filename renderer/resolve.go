package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

// resolved is the chart version a `resolve` request picked.
type resolved struct {
	Name    string   `json:"name,omitempty"`
	Version string   `json:"version"`
	URLs    []string `json:"urls,omitempty"`
	Digest  string   `json:"digest,omitempty"`
	// Tag is the OCI tag to pull: the version with `+` written as `_`.
	Tag string `json:"tag,omitempty"`
}

// resolveChart picks a chart version the way Helm does: from a repository index
// (helm pull --repo URL CHART --version C) or from an OCI repository's tags
// (helm pull oci://... --version C).
func resolveChart(req *request) (*resolved, error) {
	switch {
	case req.Index != "" && req.Tags != nil:
		return nil, errors.New("resolve takes either index or tags, not both")
	case req.Index != "":
		return resolveFromIndex(req.Index, req.Chart, req.Version)
	case req.Tags != nil:
		return resolveFromTags(*req.Tags, req.Version)
	default:
		return nil, errors.New("resolve needs index (index.yaml text) or tags (an OCI repository's tags)")
	}
}

func resolveFromIndex(text, name, version string) (*resolved, error) {
	if name == "" {
		return nil, errors.New("resolve needs the chart name")
	}
	if version != "" {
		if _, err := semver.NewConstraint(version); err != nil {
			return nil, fmt.Errorf("invalid version constraint %q: %w", version, err)
		}
	}
	index, err := loadIndex([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("invalid repository index: %w", err)
	}
	cv, err := index.Get(name, version)
	if err != nil {
		switch {
		case errors.Is(err, repo.ErrNoChartName):
			return nil, fmt.Errorf("chart %q is not in the repository index", name)
		case errors.Is(err, repo.ErrNoChartVersion):
			return nil, fmt.Errorf("chart %q has no versions in the repository index", name)
		}
		available := make([]string, 0, len(index.Entries[name]))
		for _, v := range index.Entries[name] {
			available = append(available, v.Version)
		}
		return nil, fmt.Errorf("no version of chart %q matches %s (available: %s)", name, describeConstraint(version), strings.Join(available, ", "))
	}
	return &resolved{Name: cv.Name, Version: cv.Version, URLs: cv.URLs, Digest: cv.Digest}, nil
}

// loadIndex does what Helm's unexported repo loadIndex does with index.yaml bytes
// (Helm v4 only exports LoadIndexFile, which reads a file, and the worker writes
// none): strict YAML or JSON, invalid entries dropped, entries sorted newest first.
func loadIndex(data []byte) (*repo.IndexFile, error) {
	i := &repo.IndexFile{}
	if len(data) == 0 {
		return nil, repo.ErrEmptyIndexYaml
	}
	var err error
	if json.Valid(data) {
		err = json.Unmarshal(data, i)
	} else {
		err = yaml.UnmarshalStrict(data, i)
	}
	if err != nil {
		return nil, err
	}
	for name, cvs := range i.Entries {
		for idx, v := range slices.Backward(cvs) {
			if v == nil {
				cvs = append(cvs[:idx], cvs[idx+1:]...)
				continue
			}
			if v.Metadata == nil {
				v.Metadata = &chartv2.Metadata{}
			}
			if v.APIVersion == "" {
				v.APIVersion = chartv2.APIVersionV1
			}
			if err := v.Validate(); skippable(err) != nil {
				cvs = append(cvs[:idx], cvs[idx+1:]...)
			}
		}
		i.Entries[name] = cvs
	}
	i.SortEntries()
	if i.APIVersion == "" {
		return nil, repo.ErrNoAPIVersion
	}
	return i, nil
}

// skippable mirrors Helm's ignoreSkippableChartValidationError: an index written by
// a repository that strips dependency aliases still loads.
func skippable(err error) error {
	var verr chartv2.ValidationError
	if errors.As(err, &verr) && strings.HasPrefix(verr.Error(), "validation: more than one dependency with name or alias") {
		return nil
	}
	return err
}

// resolveFromTags is Helm's registry client's choice (Client.ValidateReference and
// Client.Tags): a version that parses as semver is taken as the tag as it is,
// without listing; otherwise the strict-semver tags (`_` read as `+`), newest
// first, are matched against the constraint, an empty one meaning the newest
// stable version.
func resolveFromTags(tags []string, version string) (*resolved, error) {
	if _, err := semver.NewVersion(version); err == nil {
		return &resolved{Version: version, Tag: strings.ReplaceAll(version, "+", "_")}, nil
	}
	var versions []*semver.Version
	for _, tag := range tags {
		if v, err := semver.StrictNewVersion(strings.ReplaceAll(tag, "_", "+")); err == nil {
			versions = append(versions, v)
		}
	}
	if len(versions) == 0 {
		return nil, errors.New("the repository has no tags that are chart versions")
	}
	slices.SortFunc(versions, func(a, b *semver.Version) int { return b.Compare(a) })
	sorted := make([]string, len(versions))
	for i, v := range versions {
		sorted[i] = v.String()
	}
	picked, err := registry.GetTagMatchingVersionOrConstraint(sorted, version)
	if err != nil {
		if strings.HasPrefix(err.Error(), "could not locate a version") {
			return nil, fmt.Errorf("no version matches %s (available: %s)", describeConstraint(version), strings.Join(sorted, ", "))
		}
		return nil, fmt.Errorf("invalid version constraint %q: %w", version, err)
	}
	return &resolved{Version: picked, Tag: strings.ReplaceAll(picked, "+", "_")}, nil
}

func describeConstraint(version string) string {
	if version == "" {
		return "no constraint (the newest stable version; there is none)"
	}
	return fmt.Sprintf("the constraint %q", version)
}
