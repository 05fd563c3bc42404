package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	"helm.sh/helm/v4/pkg/ignore"
	release "helm.sh/helm/v4/pkg/release/v1"
)

var utf8bom = []byte{0xEF, 0xBB, 0xBF}

// renderHelm does what `helm template NAME DIR --namespace NS --include-crds -f values.json`
// does (pkg/cmd/template.go and install.go's runInstall in Helm v4), minus the
// registry client, dependency downloads and the output directory: the chart comes
// from memory, dependencies must already sit in charts/.
func renderHelm(req *request, chrt chart.Charter) (string, error) {
	ac, err := chart.NewAccessor(chrt)
	if err != nil {
		return "", err
	}
	switch t := ac.MetadataAsMap()["Type"]; t {
	case nil, "", "application":
	default:
		return "", fmt.Errorf("%v charts are not installable", t)
	}
	if deps := ac.MetaDependencies(); len(deps) > 0 {
		if err := action.CheckDependencies(chrt, deps); err != nil {
			return "", fmt.Errorf("an error occurred while checking for chart dependencies (they must be in charts/): %w", err)
		}
	}

	client := action.NewInstall(action.NewConfiguration())
	client.DryRunStrategy = action.DryRunClient
	client.ReleaseName = req.ReleaseName
	if client.ReleaseName == "" {
		client.ReleaseName = "release-name"
	}
	client.Replace = true
	client.Namespace = req.Namespace
	if client.Namespace == "" {
		client.Namespace = "default"
	}
	client.IncludeCRDs = !req.SkipCRDs
	client.IsUpgrade = req.IsUpgrade
	client.APIVersions = common.VersionSet(req.APIVersions)
	if req.KubeVersion != "" {
		kv, err := common.ParseKubeVersion(req.KubeVersion)
		if err != nil {
			return "", fmt.Errorf("invalid kube version '%s': %w", req.KubeVersion, err)
		}
		client.KubeVersion = kv
	}
	vals := req.Values
	if vals == nil {
		vals = map[string]any{}
	}

	ri, err := client.RunWithContext(context.Background(), chrt, vals)
	if err != nil {
		return "", templateError(err)
	}
	rel, ok := ri.(*release.Release)
	if !ok {
		return "", fmt.Errorf("unsupported release type %T", ri)
	}
	var out bytes.Buffer
	fmt.Fprintln(&out, strings.TrimSpace(rel.Manifest))
	for _, h := range rel.Hooks {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	return out.String(), nil
}

// requestChart loads the request's chart: a packaged chart (archive) as
// `helm template NAME chart.tgz` loads it, or the files of a chart directory.
func requestChart(req *request) (chart.Charter, error) {
	if req.Archive != "" {
		if len(req.Files) > 0 {
			return nil, errors.New("a helm request takes either files or archive, not both")
		}
		data, err := base64.StdEncoding.DecodeString(req.Archive)
		if err != nil {
			return nil, fmt.Errorf("archive: invalid base64: %w", err)
		}
		chrt, err := loader.LoadArchive(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
		return chrt, nil
	}
	files, err := decodeFiles(req.Files)
	if err != nil {
		return nil, err
	}
	// Loaded once per distinct set of files; each render gets its own copy (chartcache.go).
	return charts.load(files)
}

// loadChart mirrors Helm's directory loader over in-memory files: .helmignore
// (with Helm's defaults) is honoured, a UTF-8 BOM is dropped, and the chart API
// version picks the v2 or v3 loader, as loader.Load does for a directory.
func loadChart(files map[string][]byte) (chart.Charter, error) {
	if _, ok := files["Chart.yaml"]; !ok {
		return nil, &renderError{Message: "unable to detect chart: no Chart.yaml at the root of the files", File: "Chart.yaml"}
	}
	rules := ignore.Empty()
	if data, ok := files[ignore.HelmIgnore]; ok {
		r, err := ignore.Parse(bytes.NewReader(data))
		if err != nil {
			return nil, &renderError{Message: err.Error(), File: ignore.HelmIgnore}
		}
		rules = r
	}
	rules.AddDefaults()

	var buffered []*archive.BufferedFile
	for _, name := range sortedNames(files) {
		if ignored(rules, name) {
			continue
		}
		buffered = append(buffered, &archive.BufferedFile{
			Name: name,
			Data: bytes.TrimPrefix(files[name], utf8bom),
		})
	}
	return loadFiles(buffered)
}

// loadFiles hands the files to Helm's archive loader, the one public entry that
// picks the v2 or v3 chart loader from Chart.yaml. It reads a gzipped tar whose
// entries sit under one top directory, so that is what we give it.
func loadFiles(files []*archive.BufferedFile) (chart.Charter, error) {
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		hdr := &tar.Header{Name: "chart/" + f.Name, Mode: 0o644, Size: int64(len(f.Data)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return loader.LoadArchive(&buf)
}

// ignored applies .helmignore as the directory walk does: a directory rule skips
// everything below it.
func ignored(rules *ignore.Rules, name string) bool {
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		if rules.Ignore(strings.Join(parts[:i], "/"), fakeInfo{name: parts[i-1], dir: true}) {
			return true
		}
	}
	return rules.Ignore(name, fakeInfo{name: path.Base(name)})
}

type fakeInfo struct {
	name string
	dir  bool
}

func (f fakeInfo) Name() string { return f.name }
func (f fakeInfo) Size() int64  { return 0 }
func (f fakeInfo) Mode() fs.FileMode {
	if f.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.dir }
func (f fakeInfo) Sys() any           { return nil }

var _ os.FileInfo = fakeInfo{}

// Template errors name the template as "<chart>/templates/<file>:<line>[:<col>]",
// in both parse errors ("parse error at (chart/templates/x.yaml:3): ...") and
// execution errors ("template: chart/templates/x.yaml:5:12: executing ...").
var templateLocation = regexp.MustCompile(`([A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*/templates/[^\s:()]+):(\d+)`)

// YAML parse errors of a rendered manifest name the template as "# Source: ..."
// would, without a line: "YAML parse error on chart/templates/x.yaml: ...".
var yamlLocation = regexp.MustCompile(`YAML parse error on ([^\s:]+)`)

func templateError(err error) error {
	msg := err.Error()
	if m := templateLocation.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[2])
		return &renderError{Message: msg, File: m[1], Line: line}
	}
	if m := yamlLocation.FindStringSubmatch(msg); m != nil {
		return &renderError{Message: msg, File: m[1]}
	}
	return err
}
