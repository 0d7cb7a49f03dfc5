package kit

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/term"
)

// Progress writes the console progress of a run; its Check method is an
// Options.Progress. On a terminal it keeps one updating line (the count
// of checks run, the failures so far and the check that just ran) and
// writes only failed checks as full lines; otherwise it writes one plain
// line per check (Check.Line).
type Progress struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	width    int // of the terminal; 0 when unknown
	n        int
	failed   int
	shown    bool // a progress line is on the screen
}

// NewProgress returns the progress writer for w: the terminal form when w
// is a terminal.
func NewProgress(w io.Writer) *Progress {
	p := &Progress{w: w}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.terminal = true
		if width, _, err := term.GetSize(int(f.Fd())); err == nil {
			p.width = width
		}
	}
	return p
}

// NewTerminalProgress returns the terminal form for w, whatever w is, with
// lines cut to width columns (none when width is 0).
func NewTerminalProgress(w io.Writer, width int) *Progress {
	return &Progress{w: w, terminal: true, width: width}
}

// Check reports a check that completed.
func (p *Progress) Check(c Check) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if !p.terminal {
		fmt.Fprintln(p.w, c.Line())
		return
	}
	var b strings.Builder
	if p.shown {
		b.WriteString("\r\x1b[K")
	}
	if c.Status == Fail {
		p.failed++
		b.WriteString(c.Line())
		b.WriteString("\n")
	}
	line := fmt.Sprintf("[%4d] %s", p.n, c.Name())
	if p.failed > 0 {
		line = fmt.Sprintf("[%4d, %d failed] %s", p.n, p.failed, c.Name())
	}
	b.WriteString(p.cut(line))
	p.shown = true
	io.WriteString(p.w, b.String())
}

// Done clears the progress line; call it before writing the summary.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal && p.shown {
		io.WriteString(p.w, "\r\x1b[K")
		p.shown = false
	}
}

// cut shortens a line to the terminal's width, so that \r rewrites it.
func (p *Progress) cut(s string) string {
	if p.width <= 1 || utf8.RuneCountInString(s) < p.width {
		return s
	}
	r := []rune(s)
	return string(r[:p.width-2]) + "…"
}
