package supervise

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Spec describes a component to supervise.
type Spec struct {
	Name string
	// DependsOn must be ready before this one starts; restarting one of
	// them restarts this one too.
	DependsOn []string
	// After orders the start only: this one starts once those are up (or
	// have failed), but restarting one of them leaves it running.
	After   []string
	Service Service
	// Ready gates the start of the components after this one; nil means
	// ready once it has run for settleTime without exiting.
	Ready        Probe
	ReadyTimeout time.Duration // default 30 s
	// Live is polled while the component runs: DegradedAfter failures in
	// a row show it degraded (a single miss on a loaded machine is only
	// logged), LiveFailures in a row restart it. A DegradedError (see
	// Degraded) shows it degraded at once and never restarts it.
	Live          Probe
	LiveInterval  time.Duration // default 5 s
	DegradedAfter int           // default 2
	LiveFailures  int           // default 3
	Backoff       Backoff
	Ports         []int
}

// ErrUnknownComponent is returned for a name the supervisor does not have.
var ErrUnknownComponent = errors.New("unknown component")

type component struct {
	spec   Spec
	status ComponentStatus

	cancel context.CancelFunc // stops the runner
	done   chan struct{}      // closed when the runner returns
}

// Supervisor runs a fixed set of components. Its methods are safe for
// concurrent use.
type Supervisor struct {
	logs   *Logs
	order  []*component // dependency order
	byName map[string]*component
	now    func() time.Time

	opMu sync.Mutex // serialises Start, Stop, Restart

	mu   sync.Mutex
	seq  uint64
	subs map[chan Snapshot]struct{}
}

// New checks the specs (unique names, known dependencies, no cycles) and
// orders them so every component comes after what it depends on.
func New(specs []Spec, logs *Logs) (*Supervisor, error) {
	if logs == nil {
		logs = NewLogs(0)
	}
	s := &Supervisor{logs: logs, byName: map[string]*component{}, now: time.Now, subs: map[chan Snapshot]struct{}{}}
	for _, sp := range specs {
		if sp.Name == "" || sp.Service == nil {
			return nil, errors.New("supervise: a spec needs a name and a service")
		}
		if _, dup := s.byName[sp.Name]; dup {
			return nil, fmt.Errorf("supervise: two components named %q", sp.Name)
		}
		sp.Backoff = sp.Backoff.withDefaults()
		if sp.ReadyTimeout <= 0 {
			sp.ReadyTimeout = 30 * time.Second
		}
		if sp.LiveInterval <= 0 {
			sp.LiveInterval = 5 * time.Second
		}
		if sp.LiveFailures <= 0 {
			sp.LiveFailures = 3
		}
		if sp.DegradedAfter <= 0 {
			// It shows degraded at least once before a restart.
			sp.DegradedAfter = max(1, min(2, sp.LiveFailures-1))
		}
		c := &component{spec: sp, status: ComponentStatus{Name: sp.Name, State: StateStopped, Ports: sp.Ports}}
		s.byName[sp.Name] = c
	}
	visiting, placed := map[string]bool{}, map[string]bool{}
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		if placed[name] {
			return nil
		}
		if visiting[name] {
			return fmt.Errorf("supervise: dependency cycle %s", strings.Join(append(path, name), " → "))
		}
		c, ok := s.byName[name]
		if !ok {
			return fmt.Errorf("supervise: %s depends on %w %q", path[len(path)-1], ErrUnknownComponent, name)
		}
		visiting[name] = true
		for _, d := range c.spec.startsAfter() {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		placed[name] = true
		s.order = append(s.order, c)
		return nil
	}
	for _, sp := range specs {
		if err := visit(sp.Name, nil); err != nil {
			return nil, err
		}
	}
	for _, c := range s.order {
		c.status.Since = s.now()
	}
	return s, nil
}

// Logs is the supervisor's log multiplexer.
func (s *Supervisor) Logs() *Logs { return s.logs }

// Names lists the components in start order.
func (s *Supervisor) Names() []string {
	out := make([]string, len(s.order))
	for i, c := range s.order {
		out[i] = c.spec.Name
	}
	return out
}

// snapshotLocked copies the state; s.mu is held.
func (s *Supervisor) snapshotLocked() Snapshot {
	snap := Snapshot{Seq: s.seq, Time: s.now(), Components: make([]ComponentStatus, len(s.order))}
	for i, c := range s.order {
		st := c.status
		if p, ok := c.spec.Service.(pider); ok {
			st.PID = p.PID()
		}
		st.Ports = slices.Clone(st.Ports)
		st.LastLines = slices.Clone(st.LastLines)
		snap.Components[i] = st
	}
	return snap
}

// Status is the current snapshot.
func (s *Supervisor) Status() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked()
}

// Subscribe returns the current snapshot and a channel of the snapshots
// after it, taken under the same lock so no change falls between the two.
// A subscriber that falls 64 snapshots behind loses the oldest; each
// snapshot is complete, so the latest is always right. cancel ends it.
func (s *Supervisor) Subscribe() (Snapshot, <-chan Snapshot, func()) {
	ch := make(chan Snapshot, 64)
	s.mu.Lock()
	snap := s.snapshotLocked()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	var once sync.Once
	return snap, ch, func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.subs, ch)
			s.mu.Unlock()
			close(ch)
		})
	}
}

// update changes a component's status and publishes the new snapshot.
func (s *Supervisor) update(c *component, f func(st *ComponentStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := c.status.State
	f(&c.status)
	if c.status.State != before {
		c.status.Since = s.now()
	}
	s.seq++
	snap := s.snapshotLocked()
	for ch := range s.subs {
		for {
			select {
			case ch <- snap:
			default:
				select { // full: drop the oldest, try again
				case <-ch:
				default:
				}
				continue
			}
			break
		}
	}
}

func (s *Supervisor) setState(c *component, st State, detail string) {
	s.update(c, func(cs *ComponentStatus) { cs.State, cs.Detail = st, detail })
}

func (s *Supervisor) note(c *component, format string, args ...any) {
	s.logs.Append(Line{Component: c.spec.Name, Stream: "supervisor", Text: fmt.Sprintf(format, args...)})
}

// StartError says which component kept the stack from starting.
type StartError struct {
	Component string
	Err       error
}

func (e *StartError) Error() string { return e.Component + ": " + e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// Start starts every component in dependency order, each only once the
// one before is ready. If one fails to become ready, everything started is
// stopped again (in reverse) and the error names the component.
func (s *Supervisor) Start(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.startSet(ctx, s.order); err != nil {
		s.stopAll(s.order)
		return err
	}
	return nil
}

// startSet starts the components of set (in dependency order) level by
// level: those whose dependencies in the set are all up start together,
// each behind its own readiness gate, so independent siblings (the agents)
// do not wait for one another. It stops at the first level with a failure.
func (s *Supervisor) startSet(ctx context.Context, set []*component) error {
	for _, cs := range levelsOf(set) {
		errs := make([]error, len(cs))
		var wg sync.WaitGroup
		for i, c := range cs {
			wg.Go(func() { errs[i] = s.startOne(ctx, c) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				return &StartError{Component: cs[i].spec.Name, Err: err}
			}
		}
	}
	return nil
}

// Stop stops every component in reverse dependency order.
func (s *Supervisor) Stop() {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.stopAll(s.order)
}

// stopAll stops cs in reverse dependency order, level by level: what
// nothing left running depends on stops together.
func (s *Supervisor) stopAll(cs []*component) {
	levels := levelsOf(cs)
	for i := len(levels) - 1; i >= 0; i-- {
		var wg sync.WaitGroup
		for _, c := range levels[i] {
			wg.Go(func() { s.stopOne(c) })
		}
		wg.Wait()
	}
}

// levelsOf groups set (in dependency order) by depth: level 0 depends on
// nothing in the set, level n on something at level n-1.
func levelsOf(set []*component) [][]*component {
	level := map[*component]int{}
	in := map[string]*component{}
	for _, c := range set {
		in[c.spec.Name] = c
	}
	var levels [][]*component
	for _, c := range set {
		l := 0
		for _, d := range c.spec.startsAfter() {
			if dc, ok := in[d]; ok {
				l = max(l, level[dc]+1)
			}
		}
		level[c] = l
		for len(levels) <= l {
			levels = append(levels, nil)
		}
		levels[l] = append(levels[l], c)
	}
	return levels
}

// Restart restarts one component and the components that depend on it,
// directly or not: those stop first (reverse order), then all start again
// in dependency order behind their readiness gates.
func (s *Supervisor) Restart(ctx context.Context, name string) error {
	return s.RestartWith(ctx, name, nil)
}

// RestartWith is Restart with between run while the component and its
// dependents are stopped (to change what they will start from).
func (s *Supervisor) RestartWith(ctx context.Context, name string, between func() error) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	target, ok := s.byName[name]
	if !ok {
		return fmt.Errorf("%w %q (one of: %s)", ErrUnknownComponent, name, strings.Join(s.Names(), ", "))
	}
	affected := map[string]bool{name: true}
	var set []*component
	for _, c := range s.order {
		if c == target {
			set = append(set, c)
			continue
		}
		for _, d := range c.spec.DependsOn {
			if affected[d] {
				affected[c.spec.Name] = true
				set = append(set, c)
				break
			}
		}
	}
	s.stopAll(set)
	if between != nil {
		if err := between(); err != nil {
			return err
		}
	}
	return s.startSet(ctx, set)
}

// startOne launches c's runner and waits for it to be ready.
func (s *Supervisor) startOne(ctx context.Context, c *component) error {
	s.mu.Lock()
	running := c.done != nil
	s.mu.Unlock()
	if running {
		return nil
	}
	for _, d := range c.spec.DependsOn {
		if st := s.byName[d].statusState(s); st != StateHealthy && st != StateDegraded {
			return fmt.Errorf("depends on %s, which is %s", d, st)
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	first := make(chan error, 1)
	s.mu.Lock()
	c.cancel, c.done = cancel, done
	s.mu.Unlock()
	s.update(c, func(st *ComponentStatus) { st.Crashes, st.LastError, st.LastLines = 0, "", nil })
	go func() {
		defer close(done)
		s.run(runCtx, c, first)
	}()
	select {
	case err := <-first:
		if err != nil {
			s.stopOne(c)
			s.update(c, func(st *ComponentStatus) { st.State, st.LastError = StateFailed, err.Error() })
		}
		return err
	case <-ctx.Done():
		s.stopOne(c)
		return ctx.Err()
	}
}

func (c *component) statusState(s *Supervisor) State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.status.State
}

// stopOne stops c's runner and waits for it.
func (s *Supervisor) stopOne(c *component) {
	s.mu.Lock()
	cancel, done := c.cancel, c.done
	s.mu.Unlock()
	if done == nil {
		return
	}
	if st := c.statusState(s); st != StateFailed {
		s.setState(c, StateStopping, "")
	}
	cancel()
	<-done
	s.mu.Lock()
	c.cancel, c.done = nil, nil
	s.mu.Unlock()
	if st := c.statusState(s); st != StateFailed {
		s.setState(c, StateStopped, "")
	}
}

// run is a component's life: start, readiness, liveness, and restarts
// with backoff until ctx ends or it fails for good. first receives the
// outcome of the first start (nil once ready).
func (s *Supervisor) run(ctx context.Context, c *component, first chan<- error) {
	b := c.spec.Backoff
	crashes := 0
	for attempt := 0; ; attempt++ {
		start := s.now()
		s.setState(c, StateStarting, "")
		runCtx, cancel := context.WithCancel(ctx)
		runCtx = context.WithValue(runCtx, reporterKey{}, func(msg string) {
			s.note(c, "%s", msg)
			s.update(c, func(st *ComponentStatus) { st.Detail = msg })
		})
		exited := make(chan error, 1)
		go func() { exited <- c.spec.Service.Serve(runCtx) }()

		err := s.waitReady(runCtx, c, exited, start)
		ready := err == nil
		if ready {
			s.setState(c, StateHealthy, "")
			if attempt == 0 {
				first <- nil
			}
			err = s.watch(runCtx, c, exited)
		}
		cancel()
		if !errors.Is(err, errExited) {
			if e := <-exited; e != nil {
				s.note(c, "stopped: %v", e)
			}
		}
		if attempt == 0 && !ready {
			// The first start failed: Start reports it; no restarts.
			first <- err
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.note(c, "exited unexpectedly: %v", err)
		if IsPermanent(err) {
			s.fail(c, err, "will not be restarted")
			return
		}
		if s.now().Sub(start) >= b.StableAfter {
			crashes = 0
		}
		crashes++
		var waiting *WaitingError
		if errors.As(err, &waiting) {
			crashes = min(crashes, b.MaxCrashes) // the backoff's, never the end
		}
		if crashes > b.MaxCrashes {
			s.fail(c, err, fmt.Sprintf("crashed %d times in a row", crashes))
			return
		}
		delay := b.Delay(crashes)
		s.update(c, func(st *ComponentStatus) {
			st.State, st.Restarts, st.Crashes, st.LastError = StateRestarting, st.Restarts+1, crashes, err.Error()
			st.Detail = fmt.Sprintf("restart %d in %s", crashes, delay.Round(time.Millisecond))
		})
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

func (s *Supervisor) fail(c *component, err error, why string) {
	var last []string
	for _, l := range s.logs.Tail(c.spec.Name, 10) {
		last = append(last, l.Text)
	}
	s.note(c, "failed: %s: %v", why, err)
	s.update(c, func(st *ComponentStatus) {
		st.State, st.LastError, st.Detail, st.LastLines = StateFailed, err.Error(), why, last
	})
}

// errExited marks a Serve that returned on its own.
var errExited = errors.New("exited")

type exitError struct{ err error }

func (e *exitError) Error() string {
	if e.err == nil {
		return "exited"
	}
	return e.err.Error()
}
func (e *exitError) Is(target error) bool { return target == errExited }
func (e *exitError) Unwrap() error        { return e.err }

func exitErr(err error) error {
	if err == nil {
		err = errors.New("exited without an error")
	}
	return &exitError{err: err}
}

// lastOutput is the last lines a component wrote itself (not the
// supervisor's) since its start, for an error that says why it failed:
// "" when none.
func (s *Supervisor) lastOutput(name string, since time.Time) string {
	var own []string
	for _, l := range s.logs.Tail(name, 200) {
		if l.Stream != "supervisor" && strings.TrimSpace(l.Text) != "" && !l.Time.Before(since) {
			own = append(own, strings.TrimSpace(l.Text))
		}
	}
	if len(own) == 0 {
		return ""
	}
	own = own[max(0, len(own)-3):]
	return " — its last output: " + strings.Join(own, " ⏎ ")
}

// waitReady polls the readiness probe until it passes, the service exits,
// or the timeout. A slow probe never hides an exit: each check races it.
func (s *Supervisor) waitReady(ctx context.Context, c *component, exited <-chan error, started time.Time) error {
	probe := c.spec.Ready
	if probe == nil {
		probe = settled(time.Now())
	}
	deadline := time.NewTimer(c.spec.ReadyTimeout)
	defer deadline.Stop()
	last := errors.New("the probe did not answer")
	began := time.Now()
	for {
		pctx, cancel := context.WithCancel(ctx)
		res := make(chan error, 1)
		checked := time.Now()
		go func() { res <- probe.Check(pctx) }()
		var wait <-chan time.Time
		select {
		case err := <-exited:
			cancel()
			return fmt.Errorf("exited before it was ready: %w%s", exitErr(err), s.lastOutput(c.spec.Name, started))
		case <-ctx.Done():
			cancel()
			return ctx.Err()
		case <-deadline.C:
			cancel()
			return fmt.Errorf("not ready after %s: %w", c.spec.ReadyTimeout, last)
		case err := <-res:
			cancel()
			if err == nil {
				return nil
			}
			last = err
			wait = time.After(readyPollDelay(time.Since(checked), time.Since(began)))
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited before it was ready: %w%s", exitErr(err), s.lastOutput(c.spec.Name, started))
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("not ready after %s: %w", c.spec.ReadyTimeout, last)
		case <-wait:
		}
	}
}

// readyPollDelay is the pause before the next readiness check: 50 ms at
// first, so a fast component is seen ready at once, but never shorter than
// the last check took (a probe through a slow VM forward must not keep it
// busy) nor than a twentieth of the wait so far (a VM that takes minutes
// to boot is asked about 20 times a minute, not 1200), and at most 1 s.
func readyPollDelay(took, waited time.Duration) time.Duration {
	return min(max(50*time.Millisecond, took, waited/20), time.Second)
}

// settleTime is how long a component without a readiness probe must run
// before it counts as ready, so one that dies at once fails its start.
const settleTime = 100 * time.Millisecond

func settled(start time.Time) Probe {
	return ProbeFunc(func(context.Context) error {
		if time.Since(start) < settleTime {
			return errors.New("settling")
		}
		return nil
	})
}

// watch waits for an exit or a liveness failure.
func (s *Supervisor) watch(ctx context.Context, c *component, exited <-chan error) error {
	var tick <-chan time.Time
	if c.spec.Live != nil {
		t := time.NewTicker(c.spec.LiveInterval)
		defer t.Stop()
		tick = t.C
	}
	fails := 0
	for {
		select {
		case err := <-exited:
			if ctx.Err() != nil {
				return exitErr(nil)
			}
			return exitErr(err)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
			err := c.spec.Live.Check(ctx)
			switch {
			case err == nil && fails > 0:
				if fails >= c.spec.DegradedAfter {
					s.setState(c, StateHealthy, "")
				}
				s.note(c, "liveness probe passed again after %d failure(s)", fails)
				fails = 0
			case err != nil && ctx.Err() == nil:
				var degraded *DegradedError
				if errors.As(err, &degraded) {
					// Not the component's fault: shown, never restarted.
					if fails == 0 {
						s.note(c, "degraded: %v", err)
					}
					fails = max(fails+1, c.spec.DegradedAfter)
					s.setState(c, StateDegraded, err.Error())
					continue
				}
				fails++
				msg := fmt.Sprintf("liveness failed %d/%d: %v", fails, c.spec.LiveFailures, err)
				if fails >= c.spec.LiveFailures {
					return fmt.Errorf("liveness probe failed %d times: %w", fails, err)
				}
				if fails < c.spec.DegradedAfter {
					s.note(c, "%s (degraded from %d in a row)", msg, c.spec.DegradedAfter)
					continue
				}
				s.setState(c, StateDegraded, msg)
			}
		}
	}
}

// startsAfter is what the component starts after: what it depends on,
// and what it is only ordered after.
func (sp Spec) startsAfter() []string {
	return append(slices.Clone(sp.DependsOn), sp.After...)
}
