// Command flotilla-renderer renders Helm charts and kustomizations with the real
// Helm and kustomize libraries, in memory, as a long-lived worker: one JSON request
// per line on stdin, one JSON answer per line on stdout, until stdin closes. Paying
// process start once matters because the hub renders many bundles per push.
//
// The protocol is described in docs/renderer.md.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
)

// request is one line on stdin; which fields matter depends on Kind.
type request struct {
	ID    string            `json:"id"`
	Kind  string            `json:"kind"`
	Files map[string]string `json:"files"` // path -> base64 content

	// helm
	ReleaseName string         `json:"releaseName"`
	Namespace   string         `json:"namespace"`
	Values      map[string]any `json:"values"`
	KubeVersion string         `json:"kubeVersion"`
	APIVersions []string       `json:"apiVersions"`
	SkipCRDs    bool           `json:"skipCRDs"`
	IsUpgrade   bool           `json:"isUpgrade"`

	// Archive is a packaged chart (.tgz), base64, instead of Files.
	Archive string `json:"archive"`

	// kustomize
	Dir string `json:"dir"`

	// patch (Namespace above is the default namespace of objects without one)
	Resources string      `json:"resources"`
	Patches   []patchFile `json:"patches"`

	// resolve
	Index   string    `json:"index"`
	Tags    *[]string `json:"tags"`
	Chart   string    `json:"chart"`
	Version string    `json:"version"`
}

// answer is one line on stdout, always carrying the request's id.
type answer struct {
	ID        string            `json:"id"`
	OK        bool              `json:"ok"`
	Manifests *string           `json:"manifests,omitempty"`
	Sources   *[]int            `json:"sources,omitempty"`
	Versions  map[string]string `json:"versions,omitempty"`
	Chart     *resolved         `json:"chart,omitempty"`
	Error     *renderError      `json:"error,omitempty"`
}

type renderError struct {
	Message string `json:"message"`
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
}

func (e *renderError) Error() string { return e.Message }

// maxLine bounds one request; a chart with its subcharts is far below this.
const maxLine = 256 << 20

func main() {
	// Helm and kustomize log through slog and the standard logger; stdout is the
	// protocol, so anything they say goes to stderr.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	// Only answers may reach the protocol stream: a library printing to os.Stdout
	// (fmt.Println in a code path we did not foresee) writes to stderr instead.
	protocol := os.Stdout
	os.Stdout = os.Stderr
	tuneGC()
	if err := serve(os.Stdin, protocol); err != nil {
		fmt.Fprintf(os.Stderr, "flotilla-renderer: %v\n", err)
		os.Exit(1)
	}
}

// A render allocates several times the worker's live heap (a kustomize build of the
// bench's overlay some 8 MB against a live heap of a few tens of MB), so at Go's
// default GOGC=100 the collector runs every few requests. Measured with
// `npm run bench:render` (CPU per variant in the worker, peak RSS): GOGC=100 helm
// 3.3 ms / 48 MB, kustomize 15.7 ms / 62 MB; 200: 2.9 ms, 13.8 ms / 79 MB; 400:
// 2.5–2.9 ms, 10.2–11.2 ms / 104–115 MB; 800: no faster, 153 MB. So 400, with a soft
// limit past which the collector works harder instead of letting a big chart grow the
// heap fivefold. GOGC and GOMEMLIMIT in the environment win.
const (
	gcPercent   = 400
	memoryLimit = 512 << 20
)

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}

func serve(in io.Reader, out io.Writer) error {
	reader := bufio.NewReaderSize(in, 1<<20)
	writer := bufio.NewWriter(out)
	enc := json.NewEncoder(writer)
	enc.SetEscapeHTML(false)
	for {
		line, err := readLine(reader)
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if len(line) == 0 {
			continue
		}
		if err := enc.Encode(handleLine(line)); err != nil {
			return err
		}
		if err := writer.Flush(); err != nil {
			return err
		}
	}
}

func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLine {
			return nil, fmt.Errorf("request longer than %d bytes", maxLine)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = line[:len(line)-1]
		}
		return line, err
	}
}

func handleLine(line []byte) answer {
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		// Without a parsable request there is no id to answer to but the empty one;
		// the client treats that as a protocol error.
		return failure("", fmt.Errorf("invalid request: %w", err))
	}
	return handle(&req)
}

// handle renders one request. A panic inside Helm or kustomize (a template
// function on unexpected input, say) becomes that request's error answer, so one
// bad chart never takes the worker down with the requests queued behind it.
func handle(req *request) (ans answer) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(os.Stderr, "flotilla-renderer: panic in request %q: %v\n%s", req.ID, p, debug.Stack())
			ans = failure(req.ID, fmt.Errorf("renderer panic: %v", p))
		}
	}()
	switch req.Kind {
	case "version":
		return answer{ID: req.ID, OK: true, Versions: versions()}
	case "helm":
		chrt, err := requestChart(req)
		if err != nil {
			return failure(req.ID, err)
		}
		out, err := renderHelm(req, chrt)
		if err != nil {
			return failure(req.ID, err)
		}
		return success(req.ID, out)
	case "resolve":
		picked, err := resolveChart(req)
		if err != nil {
			return failure(req.ID, err)
		}
		return answer{ID: req.ID, OK: true, Chart: picked}
	case "kustomize":
		files, err := decodeFiles(req.Files)
		if err != nil {
			return failure(req.ID, err)
		}
		out, err := renderKustomize(req.Dir, files)
		if err != nil {
			return failure(req.ID, err)
		}
		return success(req.ID, out)
	case "patch":
		out, err := renderPatch(req.Resources, req.Namespace, req.Patches)
		if err != nil {
			return failure(req.ID, err)
		}
		ans := success(req.ID, out.manifests)
		ans.Sources = &out.sources
		return ans
	case "panic":
		// Lets the tests prove that a panic stays inside one request.
		panic("panic requested")
	default:
		return failure(req.ID, fmt.Errorf("unknown request kind %q", req.Kind))
	}
}

func success(id, manifests string) answer {
	return answer{ID: id, OK: true, Manifests: &manifests}
}

func failure(id string, err error) answer {
	var re *renderError
	if !errors.As(err, &re) {
		re = &renderError{Message: err.Error()}
	}
	return answer{ID: id, OK: false, Error: re}
}
