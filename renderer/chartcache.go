package main

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/chart/common"
	v2 "helm.sh/helm/v4/pkg/chart/v2"
)

// Loading a chart (the tar round trip into Helm's loader, parsing Chart.yaml, values
// and the schema of the chart and every subchart) was about a third of a render's
// CPU on the bench corpus, and the hub renders one chart with many sets of values.
// So loaded charts are kept by the hash of their files, and each render gets a copy of
// the parts Helm changes while it renders (ProcessDependencies sets Dependency.Enabled,
// drops disabled subcharts and replaces Values with the imported ones); templates,
// files and the schema are only read and stay shared.
// At most this many charts, of at most this many bytes of files in all, oldest out first.
const (
	chartCacheEntries = 16
	chartCacheBytes   = 64 << 20
)

type chartCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]cachedChart
	order   [][sha256.Size]byte // oldest first
	bytes   int
}

type cachedChart struct {
	chart *v2.Chart
	bytes int
}

var charts = &chartCache{entries: map[[sha256.Size]byte]cachedChart{}}

// load returns a chart for one render: a copy of the cached one when the same files
// were loaded before, otherwise a freshly loaded chart (a copy of which is cached).
func (c *chartCache) load(files map[string][]byte) (chart.Charter, error) {
	key := filesHash(files)
	c.mu.Lock()
	cached, ok := c.entries[key]
	c.mu.Unlock()
	if ok {
		return cloneChart(cached.chart), nil
	}
	loaded, err := loadChart(files)
	if err != nil {
		return nil, err
	}
	// Only Helm's v2 chart type is copied field by field; other kinds load every time.
	if v2c, ok := loaded.(*v2.Chart); ok {
		c.put(key, cachedChart{chart: cloneChart(v2c), bytes: filesSize(files)})
	}
	return loaded, nil
}

func (c *chartCache) put(key [sha256.Size]byte, entry cachedChart) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok || entry.bytes > chartCacheBytes {
		return
	}
	for len(c.order) > 0 && (len(c.order) >= chartCacheEntries || c.bytes+entry.bytes > chartCacheBytes) {
		c.bytes -= c.entries[c.order[0]].bytes
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
	c.entries[key] = entry
	c.order = append(c.order, key)
	c.bytes += entry.bytes
}

func filesSize(files map[string][]byte) int {
	n := 0
	for name, data := range files {
		n += len(name) + len(data)
	}
	return n
}

// filesHash covers every path and content, each with its length, so that no two
// different trees share a key.
func filesHash(files map[string][]byte) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, name := range sortedNames(files) {
		binary.BigEndian.PutUint64(n[:], uint64(len(name)))
		h.Write(n[:])
		h.Write([]byte(name))
		binary.BigEndian.PutUint64(n[:], uint64(len(files[name])))
		h.Write(n[:])
		h.Write(files[name])
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}

// cloneChart copies what a render may change: the chart value itself, its metadata
// and dependency entries, its values, and its subcharts, recursively.
func cloneChart(c *v2.Chart) *v2.Chart {
	out := *c
	if c.Metadata != nil {
		md := *c.Metadata
		md.Dependencies = make([]*v2.Dependency, len(c.Metadata.Dependencies))
		for i, d := range c.Metadata.Dependencies {
			if d == nil {
				continue
			}
			dc := *d
			dc.Tags = append([]string(nil), d.Tags...)
			dc.ImportValues, _ = cloneValue(d.ImportValues).([]any)
			md.Dependencies[i] = &dc
		}
		if c.Metadata.Dependencies == nil {
			md.Dependencies = nil
		}
		out.Metadata = &md
	}
	out.Values, _ = cloneValue(c.Values).(map[string]any)
	if c.Values == nil {
		out.Values = nil
	}
	out.Templates = append([]*common.File(nil), c.Templates...)
	out.Files = append([]*common.File(nil), c.Files...)
	out.Raw = append([]*common.File(nil), c.Raw...)
	deps := make([]*v2.Chart, 0, len(c.Dependencies()))
	for _, d := range c.Dependencies() {
		deps = append(deps, cloneChart(d))
	}
	// Also points each copied subchart's parent at the copy.
	out.SetDependencies(deps...)
	return &out
}

// cloneValue deep-copies what YAML and JSON decode to: maps, slices and scalars.
func cloneValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		if t == nil {
			return t
		}
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = cloneValue(e)
		}
		return m
	case common.Values:
		return common.Values(cloneValue(map[string]any(t)).(map[string]any))
	case []any:
		if t == nil {
			return t
		}
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = cloneValue(e)
		}
		return s
	default:
		return v
	}
}
