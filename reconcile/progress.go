package reconcile

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// ProgressPrinter shows a run's progress: a bar redrawn in place on a
// terminal, otherwise a log line at most every Every.
type ProgressPrinter struct {
	W        io.Writer    // the terminal (Terminal true)
	Terminal bool         // draw a bar on W
	Logger   *slog.Logger // periodic lines when not on a terminal; nil discards
	Every    time.Duration
	Now      func() time.Time // default time.Now

	mu   sync.Mutex
	last time.Time
	drew bool
}

// Update is a Config.Progress.
func (p *ProgressPrinter) Update(pr Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	if p.Terminal {
		fmt.Fprintf(p.W, "\r%s", bar(pr))
		p.drew = true
		return
	}
	every := p.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	final := pr.Total >= 0 && pr.Done >= pr.Total
	if t := now(); final || pr.Done == 0 || t.Sub(p.last) >= every {
		p.last = t
		if p.Logger != nil {
			p.Logger.Info("reconcile progress", "phase", string(pr.Phase), "done", pr.Done, "total", pr.Total,
				"missing", pr.Missing, "extra", pr.Extra, "different", pr.Different)
		}
	}
}

// Clear erases the bar, so that a line written to the same terminal (a
// difference on stdout) does not land in the middle of it; the next Update
// draws it again.
func (p *ProgressPrinter) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Terminal && p.drew {
		fmt.Fprint(p.W, "\r\x1b[K")
		p.drew = false
	}
}

// Done ends the bar's line.
func (p *ProgressPrinter) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Terminal && p.drew {
		fmt.Fprintln(p.W)
		p.drew = false
	}
}

// bar renders "source  45% [#########           ] 90000/200000 missing 1 extra 0 different 2".
func bar(pr Progress) string {
	const width = 30
	total := pr.Total
	if total < pr.Done {
		total = pr.Done // unknown, or the org grew during the run
	}
	frac := 1.0
	if total > 0 {
		frac = float64(pr.Done) / float64(total)
	}
	n := int(frac * width)
	return fmt.Sprintf("%-6s %3d%% [%s%s] %d/%d  missing %d, extra %d, different %d ",
		pr.Phase, int(frac*100), strings.Repeat("#", n), strings.Repeat(" ", width-n), pr.Done, total,
		pr.Missing, pr.Extra, pr.Different)
}
